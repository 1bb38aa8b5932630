// Package storetest is the contract every store.Store back end meets: Run
// takes a function opening an empty store and checks Apply, Get, List,
// Delete, Set, Revision, Subscribe and the blobs against it. The bbolt
// store and the etcd store both run it.
package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/store"
)

// Objects are four objects of four kinds, two of them cluster-scoped or
// defaulted to namespace "default".
const Objects = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
---
apiVersion: weft.dev/v1alpha1
kind: MeshConfig
metadata: {name: default}
spec: {trustDomain: example.org}
---
apiVersion: weft.dev/v1alpha1
kind: DestinationPolicy
metadata: {name: web}
spec: {targetRef: {name: web}, loadBalancer: RANDOM}
`

// Decode decodes YAML documents or fails the test.
func Decode(t testing.TB, s string) []api.Object {
	t.Helper()
	objs, err := api.Decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// Service is a minimal valid Service named name in namespace default.
func Service(name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec: {selector: {app: x}}\n", name)
}

// Run runs the contract against stores open returns; each call must
// return a new, empty store, which Run closes.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"ApplyGetListDelete", applyGetListDelete},
		{"AllOrNothing", allOrNothing},
		{"Subscribe", subscribe},
		{"ConcurrentApply", concurrentApply},
		{"Blobs", blobs},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			defer func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			c.fn(t, s)
		})
	}
}

var (
	svcKey   = api.Key{Kind: "Service", Namespace: "shop", Name: "web"}
	routeKey = api.Key{Kind: "HTTPRoute", Namespace: "shop", Name: "web"}
)

func applyGetListDelete(t *testing.T, s store.Store) {
	rev0 := s.Revision()
	changes, err := s.Apply(Decode(t, Objects))
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Change{
		{Key: svcKey, Action: store.Created},
		{Key: routeKey, Action: store.Created},
		{Key: api.Key{Kind: "MeshConfig", Name: "default"}, Action: store.Created},
		{Key: api.Key{Kind: "DestinationPolicy", Namespace: "default", Name: "web"}, Action: store.Created},
	}
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Fatalf("first apply (-want +got):\n%s", diff)
	}
	rev1 := s.Revision()
	if rev1 <= rev0 {
		t.Errorf("Revision after a change = %d, was %d", rev1, rev0)
	}
	got, err := s.Get(svcKey)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetUID() == "" || got.GetCreationTimestamp().Time.IsZero() || got.GetGeneration() != 1 || got.GetResourceVersion() != fmt.Sprint(rev1) {
		t.Errorf("server metadata: uid=%q created=%v gen=%d rv=%q (revision %d)", got.GetUID(), got.GetCreationTimestamp(), got.GetGeneration(), got.GetResourceVersion(), rev1)
	}
	uid := got.GetUID()
	set, err := s.Set()
	if err != nil {
		t.Fatal(err)
	}
	if set.Revision != rev1 || len(set.Services) != 1 || len(set.HTTPRoutes) != 1 || set.MeshConfig == nil || len(set.DestinationPolicies) != 1 {
		t.Errorf("Set = revision %d (want %d), %d services, %d routes, mesh %v, %d policies", set.Revision, rev1, len(set.Services), len(set.HTTPRoutes), set.MeshConfig != nil, len(set.DestinationPolicies))
	}

	// Same content again, also as `get -o yaml` printed it (with server
	// metadata): unchanged, and the revision stays.
	changes, err = s.Apply(append(Decode(t, Objects)[1:], got))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Action != store.Unchanged {
			t.Errorf("%s: %s, want unchanged", c.Key, c.Action)
		}
	}
	if s.Revision() != rev1 {
		t.Errorf("Revision after a no-op = %d, want %d", s.Revision(), rev1)
	}

	// A real change: configured, generation 2, uid kept.
	changes, err = s.Apply(Decode(t, strings.Replace(Objects, "port: 80}]}", "port: 81}]}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if changes[0].Action != store.Configured || changes[1].Action != store.Unchanged {
		t.Errorf("changes = %v", changes)
	}
	rev2 := s.Revision()
	got, _ = s.Get(svcKey)
	if rev2 <= rev1 || got.GetUID() != uid || got.GetGeneration() != 2 || got.GetResourceVersion() != fmt.Sprint(rev2) {
		t.Errorf("after update: revision %d (was %d) uid=%q (want %q) gen=%d rv=%q", rev2, rev1, got.GetUID(), uid, got.GetGeneration(), got.GetResourceVersion())
	}

	for _, tt := range []struct {
		kind, ns string
		want     int
		wantErr  bool
	}{
		{"Service", "", 1, false},
		{"Service", "shop", 1, false},
		{"Service", "other", 0, false},
		{"Service", "sho", 0, false}, // a prefix of a namespace is not that namespace
		{"MeshConfig", "", 1, false},
		{"Pod", "", 0, true},
	} {
		list, err := s.List(tt.kind, tt.ns)
		if (err != nil) != tt.wantErr || len(list) != tt.want {
			t.Errorf("List(%s, %q) = %d, %v; want %d (error %v)", tt.kind, tt.ns, len(list), err, tt.want, tt.wantErr)
		}
	}
	if _, err := s.Get(api.Key{Kind: "Pod", Name: "x"}); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of an unknown kind = %v", err)
	}

	if err := s.Delete(routeKey); err != nil {
		t.Fatal(err)
	}
	rev3 := s.Revision()
	if rev3 <= rev2 {
		t.Errorf("Revision after Delete = %d, was %d", rev3, rev2)
	}
	if err := s.Delete(routeKey); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(routeKey); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get deleted = %v, want ErrNotFound", err)
	}
	if s.Revision() != rev3 {
		t.Errorf("Revision after a failed Delete = %d, want %d", s.Revision(), rev3)
	}
	// Re-creating a deleted object makes a new one.
	changes, err = s.Apply(Decode(t, Objects)[1:2])
	if err != nil || changes[0].Action != store.Created {
		t.Fatalf("re-create = %v, %v", changes, err)
	}
	if got, _ := s.Get(routeKey); got == nil || got.GetGeneration() != 1 {
		t.Errorf("re-created object = %v", got)
	}
}

func allOrNothing(t *testing.T, s store.Store) {
	objs := Decode(t, Objects)
	bad := Decode(t, Service("bad"))[0]
	bad.SetName("Not Valid")
	rev := s.Revision()
	if _, err := s.Apply(append(objs, bad)); err == nil || !strings.Contains(err.Error(), "metadata.name") {
		t.Fatalf("Apply with an invalid object = %v, want a metadata.name error", err)
	}
	if _, err := s.Apply(append(objs, objs[0])); err == nil || !strings.Contains(err.Error(), "more than once") {
		t.Fatalf("Apply with a duplicate = %v", err)
	}
	set, err := s.Set()
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Services)+len(set.HTTPRoutes) != 0 || set.MeshConfig != nil || s.Revision() != rev {
		t.Errorf("something was stored: %+v rev %d (was %d)", set, s.Revision(), rev)
	}
}

func subscribe(t *testing.T, s store.Store) {
	ch, cancel := s.Subscribe()
	defer cancel()
	ch2, cancel2 := s.Subscribe()
	cancel2()
	cancel2() // idempotent
	if _, err := s.Apply(Decode(t, Objects)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification after a change")
	}
	if _, err := s.Apply(Decode(t, Objects)); err != nil { // no change: no event
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("notified for an unchanged apply")
	case <-ch2:
		t.Fatal("cancelled subscription notified")
	case <-time.After(200 * time.Millisecond):
	}
	if err := s.Delete(routeKey); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification after a delete")
	}
}

func concurrentApply(t *testing.T, s store.Store) {
	rev := s.Revision()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := s.Apply(Decode(t, Service(fmt.Sprintf("svc-%d", i)))); err != nil {
				t.Error(err)
			}
			if _, err := s.Set(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if s.Revision() <= rev {
		t.Errorf("Revision = %d, was %d", s.Revision(), rev)
	}
	list, _ := s.List("Service", "default")
	if len(list) != 8 {
		t.Errorf("List = %d, want 8", len(list))
	}
	set, _ := s.Set()
	if set == nil || len(set.Services) != 8 || set.Revision != s.Revision() {
		t.Errorf("Set = %+v, want 8 services at revision %d", set, s.Revision())
	}
}

func blobs(t *testing.T, s store.Store) {
	rev := s.Revision()
	if b, err := s.GetBlob("missing"); err != nil || b != nil {
		t.Errorf("GetBlob(missing) = %q, %v; want nil, nil", b, err)
	}
	if err := s.PutBlob("ca/root.pem", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	if b, err := s.GetBlob("ca/root.pem"); err != nil || string(b) != "secret" {
		t.Errorf("GetBlob = %q, %v", b, err)
	}
	if err := s.UpdateBlobs(map[string][]byte{"r/a": []byte("1"), "r/b": []byte("2"), "s/c": []byte("3")}, nil); err != nil {
		t.Fatal(err)
	}
	// A key both put and deleted is deleted.
	if err := s.UpdateBlobs(map[string][]byte{"r/d": []byte("4"), "r/a": []byte("x")}, []string{"r/a", "r/a", "r/none"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.BlobsWithPrefix("r/")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]byte{"r/b": []byte("2"), "r/d": []byte("4")}, got); diff != "" {
		t.Errorf("BlobsWithPrefix (-want +got):\n%s", diff)
	}
	// Many keys in one update.
	put := map[string][]byte{}
	for i := range 300 {
		put[fmt.Sprintf("many/%03d", i)] = []byte("v")
	}
	if err := s.UpdateBlobs(put, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.BlobsWithPrefix("many/"); err != nil || len(got) != 300 {
		t.Errorf("BlobsWithPrefix(many/) = %d, %v; want 300", len(got), err)
	}
	if s.Revision() != rev {
		t.Errorf("blobs changed the Revision: %d, was %d", s.Revision(), rev)
	}
}
