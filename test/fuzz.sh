#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time each (default 5s),
# on top of its seed corpus (testdata/fuzz/<Target>/). A crash fails the run
# and go test writes the failing input under that testdata directory.
#
#   test/fuzz.sh          # every target, 5s each
#   test/fuzz.sh 30s      # longer
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-5s}"
targets=$(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' internal cmd bench test 2>/dev/null | sort || true)
n=0
for file in $targets; do
  dir="./$(dirname "$file")"
  for name in $(grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
    echo "fuzz: $dir $name ($fuzztime)"
    go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$dir"
    n=$((n + 1))
  done
done
echo "fuzz: $n targets ran for $fuzztime each"
