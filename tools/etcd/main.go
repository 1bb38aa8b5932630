// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3 at
// the release pinned in go.mod, for weft's tests (internal/testetcd) and CI.
// test/etcd/build.sh builds it into the Kubernetes binaries cache.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
