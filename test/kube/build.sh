#!/usr/bin/env bash
# Builds kube-apiserver from k8s.io/kubernetes (pinned in tools/kube/go.mod) into
# ${WEFT_KUBE_BIN_DIR:-$HOME/.cache/weft/kube-v1.37.2} and prints that directory.
# Idempotent: skips the build when the binary exists and its stamp matches the
# hash of tools/kube/go.mod + go.sum + the version. Extra go flags come from GOFLAGS (e.g. -p=2).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${WEFT_KUBE_BIN_DIR:-$HOME/.cache/weft/kube-v1.37.2}
mkdir -p "$dir"
version=v1.37.2
want=$(cat "$root/tools/kube/go.mod" "$root/tools/kube/go.sum" <(echo "$version") | sha256sum | cut -d' ' -f1)
stamp="$dir/kube-apiserver.stamp"
if [[ -x "$dir/kube-apiserver" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
	echo "$dir"
	exit 0
fi
start=$(date +%s)
(
	cd "$root/tools/kube"
	# The tools module is separate from weft.dev/weft: never let a go.work pull it in.
	GOWORK=off CGO_ENABLED=0 go build -trimpath \
		-ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean" \
		-o "$dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
)
mv "$dir/kube-apiserver.tmp" "$dir/kube-apiserver"
echo "$want" > "$stamp"
echo "built kube-apiserver in $(( $(date +%s) - start ))s" >&2
echo "$dir"
