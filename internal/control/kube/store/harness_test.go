package store

import (
	"testing"

	"k8s.io/client-go/rest"

	"weft.dev/weft/internal/testkube"
)

// startAPIServer starts a real etcd and kube-apiserver for t (skipped when
// the binaries are not built, failing with WEFT_REQUIRE_KUBE=1) and returns
// the admin config.
func startAPIServer(t *testing.T) *rest.Config {
	t.Helper()
	return testkube.StartAPIServer(t).RESTConfig()
}
