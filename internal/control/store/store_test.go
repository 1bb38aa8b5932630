package store

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"weft.dev/weft/internal/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const objects = `apiVersion: v1
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

func decode(t *testing.T, s string) []api.Object {
	t.Helper()
	objs, err := api.Decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func open(t *testing.T, path string) *Bolt {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestApplyGetListDelete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weft.db")
	s := open(t, path)
	defer s.Close()

	changes, err := s.Apply(decode(t, objects))
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{api.Key{Kind: "Service", Namespace: "shop", Name: "web"}, Created},
		{api.Key{Kind: "HTTPRoute", Namespace: "shop", Name: "web"}, Created},
		{api.Key{Kind: "MeshConfig", Name: "default"}, Created},
		{api.Key{Kind: "DestinationPolicy", Namespace: "default", Name: "web"}, Created},
	}
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Fatalf("first apply (-want +got):\n%s", diff)
	}
	if s.Revision() != 1 {
		t.Errorf("Revision = %d, want 1", s.Revision())
	}

	got, err := s.Get(api.Key{Kind: "Service", Namespace: "shop", Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetUID() == "" || got.GetCreationTimestamp().Time.IsZero() || got.GetGeneration() != 1 || got.GetResourceVersion() != "1" {
		t.Errorf("server metadata not set: uid=%q created=%v gen=%d rv=%q", got.GetUID(), got.GetCreationTimestamp(), got.GetGeneration(), got.GetResourceVersion())
	}
	uid := got.GetUID()

	// Same content again: unchanged, revision unchanged. Re-applying what
	// `get -o yaml` printed (with server metadata) is also unchanged.
	changes, err = s.Apply(append(decode(t, objects)[1:], got))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Action != Unchanged {
			t.Errorf("%s: %s, want unchanged", c.Key, c.Action)
		}
	}
	if s.Revision() != 1 {
		t.Errorf("Revision after no-op = %d, want 1", s.Revision())
	}

	// A real change: configured, generation 2, uid kept.
	changes, err = s.Apply(decode(t, strings.Replace(objects, "port: 80}]}", "port: 81}]}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if changes[0].Action != Configured || changes[1].Action != Unchanged {
		t.Errorf("changes = %v", changes)
	}
	got, _ = s.Get(api.Key{Kind: "Service", Namespace: "shop", Name: "web"})
	if got.GetUID() != uid || got.GetGeneration() != 2 || got.GetResourceVersion() != "2" {
		t.Errorf("after update: uid=%q (want %q) gen=%d rv=%q", got.GetUID(), uid, got.GetGeneration(), got.GetResourceVersion())
	}

	list, err := s.List("Service", "")
	if err != nil || len(list) != 1 {
		t.Fatalf("List all = %d, %v", len(list), err)
	}
	list, err = s.List("Service", "other")
	if err != nil || len(list) != 0 {
		t.Fatalf("List other = %d, %v", len(list), err)
	}
	list, err = s.List("Service", "sho") // a prefix of a namespace is not that namespace
	if err != nil || len(list) != 0 {
		t.Fatalf("List sho = %d, %v", len(list), err)
	}
	if _, err := s.List("Pod", ""); err == nil {
		t.Error("List of an unknown kind succeeded")
	}

	if err := s.Delete(api.Key{Kind: "HTTPRoute", Namespace: "shop", Name: "web"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(api.Key{Kind: "HTTPRoute", Namespace: "shop", Name: "web"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(api.Key{Kind: "HTTPRoute", Namespace: "shop", Name: "web"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get deleted = %v, want ErrNotFound", err)
	}
	if s.Revision() != 3 {
		t.Errorf("Revision = %d, want 3", s.Revision())
	}
}

func TestApplyAllOrNothing(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "weft.db"))
	defer s.Close()
	objs := decode(t, objects)
	bad := decode(t, "apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {selector: {app: bad}}\n")[0]
	bad.(interface{ SetName(string) }).SetName("Not Valid")
	if _, err := s.Apply(append(objs, bad)); err == nil || !strings.Contains(err.Error(), "metadata.name") {
		t.Fatalf("Apply with an invalid object = %v, want a metadata.name error", err)
	}
	if _, err := s.Apply(append(objs, objs[0])); err == nil {
		t.Fatal("Apply with a duplicate succeeded")
	}
	set, err := s.Set()
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Services)+len(set.HTTPRoutes) != 0 || set.MeshConfig != nil || s.Revision() != 0 {
		t.Errorf("something was stored: %+v rev %d", set, s.Revision())
	}
}

func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weft.db")
	s := open(t, path)
	if _, err := s.Apply(decode(t, objects)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob("ca/root.pem", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	before, err := s.Set()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	defer s.Close()
	if s.Revision() != 1 {
		t.Errorf("Revision after reopen = %d, want 1", s.Revision())
	}
	after, err := s.Set()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("Set after reopen (-before +after):\n%s", diff)
	}
	if after.MeshConfig == nil || after.MeshConfig.Spec.TrustDomain != "example.org" || len(after.DestinationPolicies) != 1 {
		t.Errorf("unexpected set: %+v", after)
	}
	b, err := s.GetBlob("ca/root.pem")
	if err != nil || string(b) != "secret" {
		t.Errorf("GetBlob = %q, %v", b, err)
	}
	b, err = s.GetBlob("missing")
	if err != nil || b != nil {
		t.Errorf("GetBlob(missing) = %q, %v; want nil, nil", b, err)
	}
	// The next change continues the revision sequence.
	if err := s.Delete(api.Key{Kind: "MeshConfig", Name: "default"}); err != nil {
		t.Fatal(err)
	}
	if s.Revision() != 2 {
		t.Errorf("Revision = %d, want 2", s.Revision())
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weft.db")
	s := open(t, path)
	defer s.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("second Open = %v, want a locked error", err)
	}
}

func TestSubscribe(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "weft.db"))
	defer s.Close()
	ch, cancel := s.Subscribe()
	ch2, cancel2 := s.Subscribe()
	cancel2()
	cancel2() // idempotent

	if _, err := s.Apply(decode(t, objects)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(decode(t, objects)); err != nil { // no change: no event
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("no notification after a change")
	}
	select {
	case <-ch:
		t.Fatal("notified for an unchanged apply")
	case <-ch2:
		t.Fatal("cancelled subscription notified")
	default:
	}
	cancel()
}

func TestConcurrentApply(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "weft.db"))
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc := strings.ReplaceAll("apiVersion: v1\nkind: Service\nmetadata: {name: svc-N}\nspec: {selector: {app: x}}\n", "N", string(rune('a'+i)))
			if _, err := s.Apply(decode(t, doc)); err != nil {
				t.Error(err)
			}
			if _, err := s.Set(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if s.Revision() != 8 {
		t.Errorf("Revision = %d, want 8", s.Revision())
	}
	list, _ := s.List("Service", "default")
	if len(list) != 8 {
		t.Errorf("List = %d, want 8", len(list))
	}
}

func TestBlobsWithPrefix(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "weft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.UpdateBlobs(map[string][]byte{"r/a": []byte("1"), "r/b": []byte("2"), "s/c": []byte("3")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateBlobs(nil, []string{"r/a"}); err != nil {
		t.Fatal(err)
	}
	got, err := st.BlobsWithPrefix("r/")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]byte{"r/b": []byte("2")}, got); diff != "" {
		t.Errorf("BlobsWithPrefix (-want +got):\n%s", diff)
	}
}
