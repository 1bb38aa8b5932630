package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/kube/crd"
	weftstore "weft.dev/weft/internal/control/store"
)

// syncBuffer collects a store's logs for assertions.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cluster is one real API server shared by the subtests of TestKube.
type cluster struct {
	cfg  *rest.Config
	kube kubernetes.Interface
	dyn  dynamic.Interface
}

func (c *cluster) namespace(t *testing.T, name string) {
	t.Helper()
	_, err := c.kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// open opens a store on the cluster, closed at the end of t; its logs go
// to the returned buffer (and t.Log on failure).
func (c *cluster) open(t *testing.T, opts Options) (*Store, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.SystemNamespace == "" {
		opts.SystemNamespace = "weft-system"
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = 2 * time.Second
	}
	s, err := Open(context.Background(), c.cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if t.Failed() {
			t.Logf("store logs:\n%s", logs)
		}
	})
	return s, logs
}

func decode(t *testing.T, y string) []api.Object {
	t.Helper()
	objs, err := api.Decode([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func (c *cluster) resource(kind, ns string) dynamic.ResourceInterface {
	info, _ := api.LookupKind(kind)
	r := c.dyn.Resource(gvrOf(info))
	if info.Namespaced {
		return r.Namespace(ns)
	}
	return r
}

func TestKube(t *testing.T) {
	cfg := startAPIServer(t)
	c := &cluster{cfg: cfg, kube: kubernetes.NewForConfigOrDie(cfg), dyn: dynamic.NewForConfigOrDie(cfg)}
	ctx := context.Background()

	t.Run("OpenWithoutCRDs", func(t *testing.T) {
		_, err := Open(ctx, cfg, Options{Logger: slog.New(slog.DiscardHandler)})
		if err == nil || !strings.Contains(err.Error(), "meshconfigs.weft.dev/v1alpha1") || !strings.Contains(err.Error(), "httproutes.gateway.networking.k8s.io/v1") || !strings.Contains(err.Error(), "weft install --kubernetes") {
			t.Fatalf("err = %v, want one naming the missing CRDs and how to install them", err)
		}
	})

	if err := crd.InstallAll(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	c.namespace(t, "weft-system")

	t.Run("ApplyGetListDelete", func(t *testing.T) { testApplyGetListDelete(t, c) })
	t.Run("ApplyRefusesStoresNothing", func(t *testing.T) { testApplyRefuses(t, c) })
	t.Run("ExternalWrite", func(t *testing.T) { testExternalWrite(t, c) })
	t.Run("InvalidExternalObject", func(t *testing.T) { testInvalidExternal(t, c) })
	t.Run("NamespaceScope", func(t *testing.T) { testNamespaceScope(t, c) })
	t.Run("Blobs", func(t *testing.T) { testBlobs(t, c) })
	t.Run("Shared", func(t *testing.T) { testShared(t, c) })
	t.Run("EndpointSlices", func(t *testing.T) { testEndpointSlices(t, c) })
}

func testApplyGetListDelete(t *testing.T, c *cluster) {
	c.namespace(t, "apply")
	s, _ := c.open(t, Options{})
	objs := decode(t, `
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: apply}
spec:
  selector: {app: orders}
  ports: [{name: http, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders, namespace: apply}
spec:
  parentRefs: [{group: "", kind: Service, name: orders, port: 8080}]
  rules: [{backendRefs: [{name: orders, port: 8080}]}]
---
apiVersion: weft.dev/v1alpha1
kind: DestinationPolicy
metadata: {name: orders, namespace: apply}
spec: {targetRef: {name: orders}, loadBalancer: RANDOM}
---
apiVersion: weft.dev/v1alpha1
kind: MeshConfig
metadata: {name: default}
spec: {defaults: {loadBalancer: LEAST_REQUEST}}
`)
	rev0 := s.Revision()
	changes, err := s.Apply(objs)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range changes {
		if ch.Action != weftstore.Created {
			t.Errorf("%s: %s, want created", ch.Key, ch.Action)
		}
	}
	if s.Revision() <= rev0 {
		t.Errorf("revision %d after apply, was %d", s.Revision(), rev0)
	}
	// Read your writes: Apply returned, so the informers have the objects.
	set, err := s.Set()
	if err != nil {
		t.Fatal(err)
	}
	if set.Revision != s.Revision() {
		t.Errorf("Set.Revision %d, Revision %d", set.Revision, s.Revision())
	}
	for _, o := range objs {
		got, err := s.Get(api.KeyOf(o))
		if err != nil {
			t.Fatalf("get %s: %v", api.KeyOf(o), err)
		}
		if rv, _ := strconv.ParseUint(got.GetResourceVersion(), 10, 64); rv == 0 || rv > set.Revision {
			t.Errorf("%s: resourceVersion %q, Set revision %d", api.KeyOf(o), got.GetResourceVersion(), set.Revision)
		}
	}
	if len(set.Services) != 1 || set.Services[0].Spec.ClusterIP == "" {
		t.Errorf("Set services %v, want orders with the cluster IP the API server allocated", set.Services)
	}
	if set.MeshConfig == nil || set.MeshConfig.Spec.Defaults.LoadBalancer != api.LBLeastRequest || set.MeshConfig.Spec.MTLS.Mode != api.MTLSStrict {
		t.Errorf("MeshConfig %+v, want it with weft's defaults", set.MeshConfig)
	}

	// Applying the same objects again changes nothing, though the API
	// server added defaults (cluster IP, ...) to what it stored.
	rev := s.Revision()
	changes, err = s.Apply(decode(t, mustMarshalAll(t, objs)))
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range changes {
		if ch.Action != weftstore.Unchanged {
			t.Errorf("re-apply %s: %s, want unchanged", ch.Key, ch.Action)
		}
	}
	if s.Revision() != rev {
		t.Errorf("re-apply moved the revision %d -> %d", rev, s.Revision())
	}

	dp := objs[2].DeepCopyObject().(*api.DestinationPolicy)
	dp.Spec.LoadBalancer = api.LBRoundRobin
	changes, err = s.Apply([]api.Object{dp})
	if err != nil || changes[0].Action != weftstore.Configured {
		t.Fatalf("change: %v %v", changes, err)
	}
	got, _ := s.Get(api.KeyOf(dp))
	if got.(*api.DestinationPolicy).Spec.LoadBalancer != api.LBRoundRobin {
		t.Errorf("Get after configure: %v", got)
	}
	list, err := s.List(api.KindDestinationPolicy, "apply")
	if err != nil || len(list) != 1 {
		t.Errorf("List: %v %v", list, err)
	}

	for _, o := range objs {
		if err := s.Delete(api.KeyOf(o)); err != nil {
			t.Fatalf("delete %s: %v", api.KeyOf(o), err)
		}
		if _, err := s.Get(api.KeyOf(o)); !errors.Is(err, weftstore.ErrNotFound) {
			t.Errorf("get after delete %s: %v", api.KeyOf(o), err)
		}
	}
	if err := s.Delete(api.KeyOf(objs[0])); !errors.Is(err, weftstore.ErrNotFound) {
		t.Errorf("delete missing: %v, want ErrNotFound", err)
	}
	if _, err := s.Get(api.Key{Kind: "Pod", Namespace: "apply", Name: "x"}); err == nil || !strings.Contains(err.Error(), `unknown kind "Pod"`) {
		t.Errorf("get unknown kind: %v", err)
	}
}

func mustMarshalAll(t *testing.T, objs []api.Object) string {
	t.Helper()
	var docs []string
	for _, o := range objs {
		b, err := api.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	return strings.Join(docs, "\n---\n")
}

func testApplyRefuses(t *testing.T, c *cluster) {
	c.namespace(t, "refuse")
	s, _ := c.open(t, Options{})
	good := decode(t, `
apiVersion: weft.dev/v1alpha1
kind: FaultInjection
metadata: {name: good, namespace: refuse}
spec: {abort: {httpStatus: 503}}
`)[0]
	invalid := good.DeepCopyObject().(*api.FaultInjection)
	invalid.Name = "bad"
	invalid.Spec.Abort.HTTPStatus = 200
	elsewhere := good.DeepCopyObject().(*api.FaultInjection)
	elsewhere.Namespace = "no-such-namespace"
	tests := []struct {
		name  string
		objs  []api.Object
		field string
	}{
		{"weft validation", []api.Object{good, invalid}, "spec.abort.httpStatus"},
		{"twice", []api.Object{good, good}, "appears more than once"},
		// weft accepts it; the API server refuses it (no such namespace) in
		// the dry run, before good is written.
		{"API server", []api.Object{good, elsewhere}, "no-such-namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rev := s.Revision()
			_, err := s.Apply(tt.objs)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("err = %v, want one naming %s", err, tt.field)
			}
			for _, o := range tt.objs {
				k := api.KeyOf(o)
				if _, err := c.resource(k.Kind, k.Namespace).Get(context.Background(), k.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("%s is in the API server after a refused apply (err %v)", k, err)
				}
			}
			if s.Revision() != rev {
				t.Errorf("revision moved %d -> %d", rev, s.Revision())
			}
		})
	}
	var inv *api.InvalidError
	if _, err := s.Apply([]api.Object{invalid}); !errors.As(err, &inv) {
		t.Errorf("invalid apply: %T %v, want *api.InvalidError", err, err)
	}
}

func testExternalWrite(t *testing.T, c *cluster) {
	c.namespace(t, "ext")
	s, _ := c.open(t, Options{})
	ch, cancel := s.Subscribe()
	defer cancel()
	route := map[string]any{
		"apiVersion": api.GatewayV1, "kind": api.KindHTTPRoute,
		"metadata": map[string]any{"name": "kubectl-made", "namespace": "ext"},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"group": "", "kind": "Service", "name": "orders", "port": int64(8080)}},
			"rules":      []any{map[string]any{"backendRefs": []any{map[string]any{"name": "orders-v2", "port": int64(8080)}}}},
		},
	}
	k := api.Key{Kind: api.KindHTTPRoute, Namespace: "ext", Name: "kubectl-made"}
	rev := s.Revision()
	start := time.Now()
	if _, err := c.resource(k.Kind, k.Namespace).Create(context.Background(), &unstructured.Unstructured{Object: route}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNotified(t, ch, time.Second)
	if _, err := s.Get(k); err != nil {
		t.Fatalf("after the notification: %v", err)
	}
	t.Logf("HTTPRoute created through the API: in the store's Set and Subscribe fired after %v", time.Since(start).Round(time.Microsecond))
	set, _ := s.Set()
	var made *gatewayv1.HTTPRoute
	for _, r := range set.HTTPRoutes {
		if r.Namespace == k.Namespace && r.Name == k.Name {
			made = r
		}
	}
	if made == nil || made.Spec.Rules[0].BackendRefs[0].Name != "orders-v2" || set.Revision <= rev {
		t.Fatalf("Set after external create: route %v (revision %d, was %d)", made, set.Revision, rev)
	}
	if err := c.resource(k.Kind, k.Namespace).Delete(context.Background(), k.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNotified(t, ch, time.Second)
	if _, err := s.Get(k); !errors.Is(err, weftstore.ErrNotFound) {
		t.Fatalf("after external delete: %v", err)
	}
	if s.Revision() <= set.Revision {
		t.Errorf("delete did not move the revision past %d", set.Revision)
	}
}

func waitNotified(t *testing.T, ch <-chan struct{}, within time.Duration) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		t.Fatalf("no notification within %v", within)
	}
}

func testInvalidExternal(t *testing.T, c *cluster) {
	c.namespace(t, "inv")
	s, logs := c.open(t, Options{})
	ch, cancel := s.Subscribe()
	defer cancel()
	// The CRD schema takes any string as a duration; weft does not.
	dp := map[string]any{
		"apiVersion": api.WeftV1Alpha1, "kind": api.KindDestinationPolicy,
		"metadata": map[string]any{"name": "typo", "namespace": "inv"},
		"spec":     map[string]any{"targetRef": map[string]any{"name": "orders"}, "retry": map[string]any{"perTryTimeout": "soon"}},
	}
	k := api.Key{Kind: api.KindDestinationPolicy, Namespace: "inv", Name: "typo"}
	res := c.resource(k.Kind, k.Namespace)
	created, err := res.Create(context.Background(), &unstructured.Unstructured{Object: dp}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.Rejected()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	rej := s.Rejected()
	if len(rej) != 1 || rej[0].Key != k || !strings.Contains(rej[0].Err.Error(), "spec.retry.perTryTimeout") {
		t.Fatalf("Rejected() = %v, want %s naming spec.retry.perTryTimeout", rej, k)
	}
	if _, err := s.Get(k); !errors.Is(err, weftstore.ErrNotFound) {
		t.Errorf("invalid object served: %v", err)
	}
	// The rejection wakes the subscribers (the status writer reports it).
	waitNotified(t, ch, time.Second)
	if l := logs.String(); !strings.Contains(l, "not valid weft configuration") || !strings.Contains(l, "DestinationPolicy/inv/typo") || !strings.Contains(l, "perTryTimeout") {
		t.Errorf("no log naming the object and the field:\n%s", l)
	}
	// Fixed through the API, it is served.
	unstructured.SetNestedField(created.Object, "250ms", "spec", "retry", "perTryTimeout")
	if _, err := res.Update(context.Background(), created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNotified(t, ch, time.Second)
	got, err := s.Get(k)
	if err != nil || got.(*api.DestinationPolicy).Spec.Retry.PerTryTimeout != "250ms" || len(s.Rejected()) != 0 {
		t.Fatalf("after the fix: %v %v, rejected %v", got, err, s.Rejected())
	}
	// Broken again: the broken version is not served, the last good one is
	// not kept either (every replica serves the same thing).
	cur, _ := res.Get(context.Background(), k.Name, metav1.GetOptions{})
	unstructured.SetNestedField(cur.Object, "later", "spec", "retry", "perTryTimeout")
	if _, err := res.Update(context.Background(), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNotified(t, ch, time.Second)
	if _, err := s.Get(k); !errors.Is(err, weftstore.ErrNotFound) {
		t.Errorf("broken update still served: %v", err)
	}
	if err := s.Delete(k); err != nil {
		t.Errorf("deleting an invalid object: %v", err)
	}
	if len(s.Rejected()) != 0 {
		t.Errorf("rejected after delete: %v", s.Rejected())
	}
}

func testNamespaceScope(t *testing.T, c *cluster) {
	c.namespace(t, "scoped")
	c.namespace(t, "other")
	s, _ := c.open(t, Options{Namespace: "scoped"})
	objs := decode(t, `
apiVersion: weft.dev/v1alpha1
kind: FaultInjection
metadata: {name: f, namespace: other}
spec: {abort: {httpStatus: 503}}
`)
	var inv *api.InvalidError
	_, err := s.Apply(objs)
	if !errors.As(err, &inv) || inv.Errors[0].Field != "metadata.namespace" || !strings.Contains(err.Error(), `"scoped"`) {
		t.Fatalf("apply outside the namespace: %v", err)
	}
	if err := s.Delete(api.KeyOf(objs[0])); !errors.As(err, &inv) {
		t.Errorf("delete outside the namespace: %v", err)
	}
	// Written around the store, it is not seen.
	u, _ := toUnstructured(objs[0])
	if _, err := c.resource(api.KindFaultInjection, "other").Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	objs[0].SetNamespace("scoped")
	if _, err := s.Apply(objs); err != nil {
		t.Fatal(err)
	}
	list, _ := s.List(api.KindFaultInjection, "")
	if len(list) != 1 || list[0].GetNamespace() != "scoped" {
		t.Errorf("List = %v, want scoped/f only", list)
	}
}

func testBlobs(t *testing.T, c *cluster) {
	s, _ := c.open(t, Options{})
	if v, err := s.GetBlob("missing"); v != nil || err != nil {
		t.Errorf("missing blob: %q %v", v, err)
	}
	rev := s.Revision()
	if err := s.PutBlob("ca/root", []byte("key material")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob("ca/next", []byte{}); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.GetBlob("ca/root"); string(v) != "key material" {
		t.Errorf("GetBlob = %q", v)
	}
	if v, _ := s.GetBlob("ca/next"); v == nil || len(v) != 0 {
		t.Errorf("empty blob read back as %#v, want empty and non-nil", v)
	}
	if err := s.UpdateBlobs(map[string][]byte{"reg/a": []byte("1"), "reg/b": []byte("2"), "ca/root": []byte("rotated")}, []string{"ca/next", "never-was"}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.BlobsWithPrefix("reg/")
	if len(got) != 2 || string(got["reg/a"]) != "1" || string(got["reg/b"]) != "2" {
		t.Errorf("BlobsWithPrefix = %v", got)
	}
	if v, _ := s.GetBlob("ca/next"); v != nil {
		t.Errorf("deleted blob = %q", v)
	}
	if v, _ := s.GetBlob("ca/root"); string(v) != "rotated" {
		t.Errorf("updated blob = %q", v)
	}
	if s.Revision() != rev {
		t.Errorf("blobs moved the revision %d -> %d", rev, s.Revision())
	}
	sec, err := c.kube.CoreV1().Secrets("weft-system").Get(context.Background(), blobName("ca/root"), metav1.GetOptions{})
	if err != nil || sec.Type != SecretTypeBlob || string(sec.Data["value"]) != "rotated" {
		t.Errorf("blob Secret: %v %v", sec, err)
	}
	// A second store (a restarted control plane) reads them back.
	s2, _ := c.open(t, Options{})
	if v, _ := s2.GetBlob("ca/root"); string(v) != "rotated" {
		t.Errorf("reopened: %q", v)
	}
}

func testShared(t *testing.T, c *cluster) {
	ctx := context.Background()
	a, _ := c.open(t, Options{ReplicaID: "replica-a"})
	b, _ := c.open(t, Options{ReplicaID: "replica-b"})
	if a.ReplicaID() != "replica-a" {
		t.Errorf("ReplicaID %q", a.ReplicaID())
	}

	// Racing to create one secret, both end up with the same value.
	var wg sync.WaitGroup
	vals := make([][]byte, 2)
	errs := make([]error, 2)
	for i, st := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals[i], errs[i] = st.CreateBlob("shared/ca", []byte(fmt.Sprintf("from-%d", i)))
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || !bytes.Equal(vals[0], vals[1]) {
		t.Fatalf("CreateBlob race: %q %v / %q %v", vals[0], errs[0], vals[1], errs[1])
	}
	if v, _ := a.CreateBlob("shared/ca", []byte("late")); !bytes.Equal(v, vals[0]) {
		t.Errorf("CreateBlob on an existing key = %q, want %q", v, vals[0])
	}

	type event struct {
		key string
		val []byte
	}
	events := make(chan event, 100)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := a.PutBlob("registry/x/existing", []byte("e")); err != nil {
		t.Fatal(err)
	}
	go b.WatchBlobs(wctx, "registry/", func(k string, v []byte) { events <- event{k, v} })
	next := func(within time.Duration) event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(within):
			t.Fatalf("no blob event within %v", within)
			return event{}
		}
	}
	if ev := next(time.Second); ev.key != "registry/x/existing" || string(ev.val) != "e" {
		t.Fatalf("first event %v, want the existing key", ev)
	}

	// A leased key of a replica that stops cleanly goes at once.
	a2, _ := c.open(t, Options{ReplicaID: "replica-a2"})
	if err := a2.PutLeased(ctx, "registry/a2/w1", []byte("w1")); err != nil {
		t.Fatal(err)
	}
	if ev := next(time.Second); ev.key != "registry/a2/w1" || string(ev.val) != "w1" {
		t.Fatalf("event %v, want the leased key", ev)
	}
	if err := a2.Close(); err != nil {
		t.Fatal(err)
	}
	if ev := next(time.Second); ev.key != "registry/a2/w1" || ev.val != nil {
		t.Fatalf("event %v, want the leased key's deletion", ev)
	}

	// A replica that dies without a word: its keys go once its Lease has
	// expired and another replica swept.
	a3, _ := c.open(t, Options{ReplicaID: "replica-a3"})
	if err := a3.PutLeased(ctx, "registry/a3/w1", []byte("w1")); err != nil {
		t.Fatal(err)
	}
	if ev := next(time.Second); ev.key != "registry/a3/w1" {
		t.Fatalf("event %v", ev)
	}
	died := time.Now()
	a3.cancel() // informers, renewal, sweeper stop; nothing is cleaned up
	a3.wg.Wait()
	ev := next(4 * a3.opts.LeaseTTL)
	if ev.key != "registry/a3/w1" || ev.val != nil {
		t.Fatalf("event %v, want the dead replica's key deleted", ev)
	}
	t.Logf("leased key of a dead replica deleted %v after it died (lease TTL %v)", time.Since(died).Round(time.Millisecond), a3.opts.LeaseTTL)
	// The sweeper deletes the Lease right after the keys.
	var leaseErr error
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if _, leaseErr = c.kube.CoordinationV1().Leases("weft-system").Get(ctx, "weft-replica-"+replicaLabel("replica-a3"), metav1.GetOptions{}); apierrors.IsNotFound(leaseErr) {
			break
		}
	}
	if !apierrors.IsNotFound(leaseErr) {
		t.Errorf("dead replica's Lease still there 2s after its keys went: %v", leaseErr)
	}

	// A live replica's leased key stays past the TTL; DeleteLeased removes it.
	if err := a.PutLeased(ctx, "registry/a/w1", []byte("1")); err != nil {
		t.Fatal(err)
	}
	next(time.Second)
	time.Sleep(2 * a.opts.LeaseTTL)
	if v, _ := b.GetBlob("registry/a/w1"); string(v) != "1" {
		t.Fatalf("live replica's leased key = %q after 2 TTLs", v)
	}
	if err := a.DeleteLeased(ctx, "registry/a/w1"); err != nil {
		t.Fatal(err)
	}
	if ev := next(time.Second); ev.key != "registry/a/w1" || ev.val != nil {
		t.Fatalf("event %v, want deletion", ev)
	}
	stop()
}

func testEndpointSlices(t *testing.T, c *cluster) {
	c.namespace(t, "eps")
	s, _ := c.open(t, Options{})
	ctx := context.Background()
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "orders-abc", Namespace: "eps", Labels: map[string]string{discoveryv1.LabelServiceName: "orders"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.1.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "orders-1"}},
			{Addresses: []string{"10.1.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
	}
	if _, err := c.kube.DiscoveryV1().EndpointSlices("eps").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []Endpoint
	deadline := time.Now().Add(2 * time.Second)
	for len(got) < 2 && time.Now().Before(deadline) {
		got, _ = s.ServiceEndpoints("eps", "orders")
		time.Sleep(10 * time.Millisecond)
	}
	if len(got) != 2 || got[0].Address != "10.1.0.1" || got[0].Ready || !got[1].Ready || got[1].Pod != "orders-1" || got[1].Ports["http"] != 8080 {
		t.Fatalf("ServiceEndpoints = %+v", got)
	}
	if other, _ := s.ServiceEndpoints("default", "orders"); len(other) != 0 {
		t.Errorf("another namespace's service: %v", other)
	}

	// The pods without a sidecar xDS may use: the ready ones, at the port
	// of the Service port's name; the change is reported by service key.
	select {
	case <-s.EndpointChanges():
	case <-time.After(time.Second):
		t.Fatal("no endpoint change notified")
	}
	if keys := s.TakeEndpointChanges(); !slices.Equal(keys, []string{"orders.eps"}) {
		t.Errorf("changed services %v, want [orders.eps]", keys)
	}
	if keys := s.TakeEndpointChanges(); len(keys) != 0 {
		t.Errorf("changes taken twice: %v", keys)
	}
	plain := s.PlainEndpoints("eps", "orders", corev1.ServicePort{Name: "http", Port: 80})
	if len(plain) != 1 || plain[0].Address != "10.1.0.2:8080" || plain[0].Pod != "orders-1" {
		t.Errorf("PlainEndpoints = %+v, want the ready pod at 10.1.0.2:8080", plain)
	}
	if p := s.PlainEndpoints("eps", "orders", corev1.ServicePort{Name: "grpc", Port: 9000}); len(p) != 0 {
		t.Errorf("PlainEndpoints for a port the slice does not list = %+v", p)
	}
}
