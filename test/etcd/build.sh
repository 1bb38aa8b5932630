#!/usr/bin/env bash
# Builds the etcd server from tools/etcd (go.etcd.io/etcd/server/v3 at the
# release pinned there) into ${WEFT_KUBE_BIN_DIR:-$HOME/.cache/weft/kube-v1.37.2}/etcd.
# Idempotent: skips the build when the binary is there and was built from
# the same tools/etcd/go.sum. Prints the binary directory on stdout.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${WEFT_KUBE_BIN_DIR:-$HOME/.cache/weft/kube-v1.37.2}"
mkdir -p "$dir"
stamp="$(sha256sum "$root/tools/etcd/go.sum" "$root/tools/etcd/go.mod" "$root/tools/etcd/main.go" | sha256sum | cut -d' ' -f1)"
if [ -x "$dir/etcd" ] && [ "$(cat "$dir/etcd.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$dir"
  exit 0
fi
start=$(date +%s)
tmp="$(mktemp "$dir/etcd.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
(cd "$root/tools/etcd" && CGO_ENABLED=0 GOWORK=off go build -trimpath -o "$tmp" .)
chmod 0755 "$tmp"
mv -f "$tmp" "$dir/etcd"
echo "$stamp" > "$dir/etcd.stamp"
echo "test/etcd/build.sh: built $dir/etcd in $(( $(date +%s) - start ))s" >&2
echo "$dir"
