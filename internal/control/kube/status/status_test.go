package status

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

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
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: orders, namespace: shop}
spec:
  targetRef: {kind: Service, name: orders}
  rules: [{from: [{namespaces: [shop]}]}]
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: payments, namespace: shop}
spec:
  targetRef: {kind: Service, name: payments}
  action: DENY
  rules: [{from: [{namespaces: [other]}]}]
`

// policyAccepted returns the status and reason of AuthorizationPolicy
// shop/name's Accepted condition ("" if none).
func policyAccepted(t *testing.T, dyn dynamic.Interface, name string) (status, reason string) {
	t.Helper()
	u, err := dyn.Resource(gvr(t, api.KindAuthorizationPolicy)).Namespace("shop").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if c := c.(map[string]any); c["type"] == "Accepted" {
			return c["status"].(string), c["reason"].(string)
		}
	}
	return "", ""
}

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

// fixture is an API server with weft's CRDs, namespaces weft-system and
// shop, and config applied through a Kubernetes store.
type fixture struct {
	cfg   *rest.Config
	dyn   *dynamic.DynamicClient
	st    *kubestore.Store
	fill  func([]api.Object) error
	quiet *slog.Logger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := testkube.StartAPIServer(t)
	cfg := srv.RESTConfig()
	if err := crd.InstallAll(context.Background(), cfg); err != nil {
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
	t.Cleanup(func() { st.Close() })
	objs, err := api.Decode([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(objs); err != nil {
		t.Fatal(err)
	}

	return &fixture{cfg: cfg, dyn: dyn, st: st, fill: apiserver.NewStatuses(st, apiserver.Options{}).Fill, quiet: quiet}
}

// start runs a Writer for replica id (fast election timings) on cfg.
func (f *fixture) start(t *testing.T, id string, cfg *rest.Config) (*Writer, context.CancelFunc, chan struct{}) {
	t.Helper()
	w, err := New(Options{Config: cfg, Namespace: "weft-system", Identity: id, Store: f.st, Fill: f.fill, Rejected: f.st.Rejected, Logger: f.quiet,
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 250 * time.Millisecond, Resync: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	return w, cancel, done
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(within); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, within)
		}
	}
}

// breakRoute changes the route's spec (generation 2) to a missing backend.
func (f *fixture) breakRoute(t *testing.T) {
	t.Helper()
	u, err := f.dyn.Resource(gvr(t, api.KindHTTPRoute)).Namespace("shop").Get(context.Background(), "orders", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedSlice(u.Object, []any{map[string]any{"backendRefs": []any{map[string]any{"name": "missing", "port": int64(8080)}}}}, "spec", "rules"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.dyn.Resource(gvr(t, api.KindHTTPRoute)).Namespace("shop").Update(context.Background(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestWriterElectsOneLeaderAndHandsOver(t *testing.T) {
	f := newFixture(t)
	a, stopA, doneA := f.start(t, "replica-a", f.cfg)
	b, stopB, doneB := f.start(t, "replica-b", f.cfg)

	waitFor(t, "route status Accepted=True", 10*time.Second, func() bool {
		acc, _, res := routeStatus(t, f.dyn, "orders")
		return acc == "True" && res == "True"
	})
	waitFor(t, "AuthorizationPolicy statuses", 5*time.Second, func() bool {
		okStatus, okReason := policyAccepted(t, f.dyn, "orders")
		noStatus, noReason := policyAccepted(t, f.dyn, "payments")
		return okStatus == "True" && okReason == "Accepted" && noStatus == "False" && noReason == "TargetNotFound"
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
	// One write per status (the route and the two policies), counted
	// after the API shows it; then resyncs of an unchanged status write
	// nothing, and the follower never writes.
	waitFor(t, "the leader counts its 3 writes", 2*time.Second, func() bool { return leader.Writes() == 3 })
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
	f.breakRoute(t)
	waitFor(t, "the new leader writes ResolvedRefs=False for generation 2", 10*time.Second, func() bool {
		acc, gen, res := routeStatus(t, f.dyn, "orders")
		return acc == "True" && gen == 2 && res == "False"
	})
	t.Logf("status of a change after the leader stopped written %v after it stopped", time.Since(stopped).Round(time.Millisecond))
	// The write is visible to the API before the writer counts it.
	waitFor(t, "the follower counts its write", 2*time.Second, func() bool { return follower.Writes() > 0 })
	if !follower.Leading() {
		t.Errorf("follower leading=%v writes=%d, want it leading and writing", follower.Leading(), follower.Writes())
	}
	if leader.Writes() != written {
		t.Errorf("stopped leader wrote %d more statuses", leader.Writes()-written)
	}
}

// TestWriterTakesOverFromACutOffLeader: the leader loses the API server
// without stopping (a crashed node, a partition) and so never releases the
// Lease. The other replica takes over once the Lease expires, and the cut
// off leader stops counting itself leader within its renew deadline.
func TestWriterTakesOverFromACutOffLeader(t *testing.T) {
	f := newFixture(t)
	link := newCuttableProxy(t, f.cfg.Host)
	viaLink := rest.CopyConfig(f.cfg)
	viaLink.Host = "https://" + link.addr()
	a, stopA, doneA := f.start(t, "replica-a", viaLink)
	defer func() { stopA(); <-doneA }()
	waitFor(t, "replica-a leading", 10*time.Second, a.Leading)
	waitFor(t, "route status Accepted=True", 10*time.Second, func() bool {
		acc, _, res := routeStatus(t, f.dyn, "orders")
		return acc == "True" && res == "True"
	})
	b, stopB, doneB := f.start(t, "replica-b", f.cfg)
	defer func() { stopB(); <-doneB }()
	time.Sleep(time.Second)
	if b.Leading() || b.Writes() != 0 {
		t.Fatalf("replica-b leading=%v writes=%d while replica-a holds the Lease", b.Leading(), b.Writes())
	}

	link.cut()
	cut := time.Now()
	f.breakRoute(t)
	waitFor(t, "replica-b writes ResolvedRefs=False for generation 2", 15*time.Second, func() bool {
		acc, gen, res := routeStatus(t, f.dyn, "orders")
		return acc == "True" && gen == 2 && res == "False"
	})
	t.Logf("status written by replica-b %v after replica-a was cut off (lease 3s)", time.Since(cut).Round(time.Millisecond))
	if !b.Leading() {
		t.Error("replica-b wrote but does not count itself leader")
	}
	waitFor(t, "cut-off replica-a steps down", 5*time.Second, func() bool { return !a.Leading() })
}

// cuttableProxy forwards TCP to a target until cut, which closes the
// listener and every connection at once: the client can neither renew
// nor release anything.
type cuttableProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{ln: ln}
	t.Cleanup(p.cut)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", u.Host)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *cuttableProxy) addr() string { return p.ln.Addr().String() }

func (p *cuttableProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
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
