package status

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/apiserver"
	"weft.dev/weft/internal/control/kube/crd"
	kubestore "weft.dev/weft/internal/control/kube/store"
	"weft.dev/weft/internal/testkube"
)

const config = `
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  selector: {app: orders}
  ports: [{port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: orders, port: 8080}]
  rules:
  - backendRefs: [{name: orders, port: 8080}]
`

// routeStatus returns the HTTPRoute's first parent's Accepted condition
// and ResolvedRefs status, as stored in the cluster.
func routeStatus(t *testing.T, dyn dynamic.Interface, name string) (accepted string, gen int64, resolved string) {
	t.Helper()
	u, err := dyn.Resource(gvr(t, api.KindHTTPRoute)).Namespace("shop").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	parents, _, _ := unstructured.NestedSlice(u.Object, "status", "parents")
	if len(parents) == 0 {
		return "", 0, ""
	}
	conds, _, _ := unstructured.NestedSlice(parents[0].(map[string]any), "conditions")
	for _, c := range conds {
		c := c.(map[string]any)
		switch c["type"] {
		case "Accepted":
			accepted = c["status"].(string)
			g, _ := c["observedGeneration"].(int64)
			gen = g
		case "ResolvedRefs":
			resolved = c["status"].(string)
		}
	}
	return accepted, gen, resolved
}

func TestWriterElectsOneLeaderAndHandsOver(t *testing.T) {
	srv := testkube.StartAPIServer(t)
	cfg := srv.RESTConfig()
	ext, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	crds, err := crd.All()
	if err != nil {
		t.Fatal(err)
	}
	if err := crd.Install(context.Background(), ext, crds); err != nil {
		t.Fatal(err)
	}
	srv.Namespace(t, "weft-system")
	srv.Namespace(t, "shop")
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := kubestore.Open(context.Background(), cfg, kubestore.Options{SystemNamespace: "weft-system", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	objs, err := api.Decode([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(objs); err != nil {
		t.Fatal(err)
	}

	fill := apiserver.NewStatuses(st, apiserver.Options{}).Fill
	start := func(id string) (*Writer, context.CancelFunc, chan struct{}) {
		w, err := New(Options{Config: cfg, Namespace: "weft-system", Identity: id, Store: st, Fill: fill, Logger: quiet,
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 250 * time.Millisecond, Resync: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = w.Run(ctx) }()
		return w, cancel, done
	}
	a, stopA, doneA := start("replica-a")
	b, stopB, doneB := start("replica-b")
	defer func() { stopB(); <-doneB }()

	waitFor := func(what string, within time.Duration, ok func() bool) {
		t.Helper()
		for end := time.Now().Add(within); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("%s: not within %v", what, within)
			}
		}
	}
	waitFor("route status Accepted=True", 10*time.Second, func() bool {
		acc, _, res := routeStatus(t, dyn, "orders")
		return acc == "True" && res == "True"
	})
	leader, follower, stopLeader, doneLeader := a, b, stopA, doneA
	if b.Leading() {
		leader, follower, stopLeader, doneLeader = b, a, stopB, doneB
		defer func() { stopA(); <-doneA }()
	} else {
		defer func() { stopB(); <-doneB }()
	}
	if !leader.Leading() || follower.Leading() {
		t.Fatalf("leading: a=%v b=%v, want exactly one", a.Leading(), b.Leading())
	}
	// Resyncs of an unchanged status write nothing; the follower never writes.
	n := leader.Writes()
	time.Sleep(2500 * time.Millisecond)
	if leader.Writes() != n || follower.Writes() != 0 {
		t.Fatalf("writes while nothing changed: leader %d→%d, follower %d", n, leader.Writes(), follower.Writes())
	}

	// The leader stops: the other takes over and writes the status of a
	// change made after.
	stopLeader()
	<-doneLeader
	stopped := time.Now()
	written := leader.Writes()
	u, err := dyn.Resource(gvr(t, api.KindHTTPRoute)).Namespace("shop").Get(context.Background(), "orders", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A spec change (new backend weight) moves the generation.
	if err := unstructured.SetNestedSlice(u.Object, []any{map[string]any{"backendRefs": []any{map[string]any{"name": "missing", "port": int64(8080)}}}}, "spec", "rules"); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(gvr(t, api.KindHTTPRoute)).Namespace("shop").Update(context.Background(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the new leader writes ResolvedRefs=False for generation 2", 10*time.Second, func() bool {
		acc, gen, res := routeStatus(t, dyn, "orders")
		return acc == "True" && gen == 2 && res == "False"
	})
	t.Logf("status of a change after the leader stopped written %v after it stopped", time.Since(stopped).Round(time.Millisecond))
	if !follower.Leading() || follower.Writes() == 0 {
		t.Errorf("follower leading=%v writes=%d, want it leading and writing", follower.Leading(), follower.Writes())
	}
	if leader.Writes() != written {
		t.Errorf("stopped leader wrote %d more statuses", leader.Writes()-written)
	}
}

func TestNewRefusesIncompleteOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without options: no error")
	}
}

func gvr(t *testing.T, kind string) schema.GroupVersionResource {
	t.Helper()
	info, ok := api.LookupKind(kind)
	if !ok {
		t.Fatalf("no kind %s", kind)
	}
	gv, _ := schema.ParseGroupVersion(info.APIVersion)
	return gv.WithResource(info.Plural)
}
