package trustbundle

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/testkube"
)

// TestPublish on a real API server: the bundle reaches every namespace
// but Kubernetes' own, a namespace created later, a ConfigMap edited by
// hand is put back, and a new bundle (a root rotation) replaces the old.
func TestPublish(t *testing.T) {
	srv := testkube.StartAPIServer(t)
	kube := srv.Clientset()
	srv.Namespace(t, "shop")
	var bundle atomic.Value
	bundle.Store([]byte("-----BEGIN CERTIFICATE-----\nroot-1\n-----END CERTIFICATE-----\n"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Publish(ctx, kube, func() []byte { return bundle.Load().([]byte) },
			Options{Interval: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	defer func() { cancel(); <-done }()

	has := func(ns, want string) func() bool {
		return func() bool {
			cm, err := kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "weft-ca-root", metav1.GetOptions{})
			return err == nil && cm.Data[Key] == want && cm.Labels[LabelManaged] == "true"
		}
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("%s: not within 5s", what)
			}
		}
	}
	root1 := string(bundle.Load().([]byte))
	waitFor("bundle in shop", has("shop", root1))
	waitFor("bundle in default", has("default", root1))
	if _, err := kube.CoreV1().ConfigMaps("kube-system").Get(context.Background(), "weft-ca-root", metav1.GetOptions{}); err == nil {
		t.Error("bundle published into kube-system")
	}

	start := time.Now()
	srv.Namespace(t, "late")
	waitFor("bundle in a namespace created later", has("late", root1))
	t.Logf("bundle in a new namespace after %v", time.Since(start).Round(time.Millisecond))

	cm, err := kube.CoreV1().ConfigMaps("shop").Get(context.Background(), "weft-ca-root", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data[Key] = "tampered"
	if _, err := kube.CoreV1().ConfigMaps("shop").Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("tampered bundle put back", has("shop", root1))

	root2 := root1 + "-----BEGIN CERTIFICATE-----\nroot-2\n-----END CERTIFICATE-----\n"
	bundle.Store([]byte(root2))
	waitFor("rotated bundle in shop", has("shop", root2))
	waitFor("rotated bundle in late", has("late", root2))
}
