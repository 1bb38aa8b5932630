#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a fixed number of inputs each
# (default 20000x, about 0.5-6 s per target here), on top of its seed corpus
# (testdata/fuzz/<Target>/). A crash fails the run and go test writes the
# failing input under that testdata directory.
#
# The default budget is a count, not a duration: Go 1.26's fuzz coordinator
# can report a spurious "context deadline exceeded" when a -fuzztime duration
# expires while a worker is mid-input (golang/go#75804, fixed in Go 1.27).
# A count has no deadline to race.
#
#   test/fuzz.sh          # every target, 20000 inputs each
#   test/fuzz.sh 200000x  # longer
#   test/fuzz.sh 30s      # by time (subject to the race above)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-20000x}"
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
echo "fuzz: $n targets ran, $fuzztime each"
