//go:build tools

// Package tools pins k8s.io/kubernetes so that test/kube/build.sh can build
// cmd/kube-apiserver from this module. It is not part of weft.dev/weft.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
