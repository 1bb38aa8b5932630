package crd

import (
	"os"
	"testing"

	"k8s.io/client-go/rest"
)

// startAPIServer starts a real kube-apiserver (internal/testkube) for t.
func startAPIServer(t *testing.T) *rest.Config {
	t.Helper()
	if os.Getenv("WEFT_REQUIRE_KUBE") == "1" {
		t.Fatal("internal/testkube is not merged into this branch yet")
	}
	t.Skip("internal/testkube is not merged into this branch yet")
	return nil
}
