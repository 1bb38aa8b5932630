package xds

import (
	"context"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/xdsapi/weftv1"
	"weft.dev/weft/internal/xdsmeta"
)

// TestVersionNamesStoreRevision: the system version of every response
// names the store revision of the configuration it was built from, and a
// proxy's status shows the revision of the last response it acknowledged
// (not of one it only received, nor of one it rejected).
func TestVersionNamesStoreRevision(t *testing.T) {
	cfg := &mutableConfig{set: &api.Set{Revision: 7}, changes: make(chan struct{}, 1)}
	ts := startServer(t, Options{Config: cfg, Debounce: time.Millisecond})
	conn := ts.dial(new(ts.ca.issue(sa("payments"))), "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node(t, "p-1", clientNode("payments")), TypeUrl: weftv1.ServiceType, ResourceNamesSubscribe: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	recv := func(wantRev uint64) *discoveryv3.DeltaDiscoveryResponse {
		t.Helper()
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		rev, ok := xdsmeta.ParseVersion(resp.GetSystemVersionInfo())
		if !ok || rev != wantRev {
			t.Fatalf("response version %q, want one naming revision %d", resp.GetSystemVersionInfo(), wantRev)
		}
		return resp
	}
	revision := func() uint64 {
		for _, p := range ts.srv.Proxies() {
			if p.ID == "p-1" {
				return p.Revision
			}
		}
		t.Fatal("p-1 not connected")
		return 0
	}
	waitRevision := func(want uint64) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); revision() != want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("proxy status shows revision %d, want %d", revision(), want)
			}
		}
	}
	first := recv(7)
	if got := revision(); got != 0 {
		t.Errorf("before the ACK the proxy's revision is %d, want 0", got)
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: weftv1.ServiceType, ResponseNonce: first.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	waitRevision(7)

	// A configuration change at revision 9 declares a new service.
	next := &api.Set{Revision: 9, Services: []*corev1.Service{{
		ObjectMeta: metav1.ObjectMeta{Name: "billing", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "billing"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}}}
	cfg.mu.Lock()
	cfg.set = next
	cfg.mu.Unlock()
	if _, err := ts.srv.applyConfig(); err != nil {
		t.Fatal(err)
	}
	if got := ts.srv.Revision(); got != 9 {
		t.Errorf("server revision %d, want 9", got)
	}
	second := recv(9)
	// A NACK leaves the proxy at the revision it had.
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: weftv1.ServiceType, ResponseNonce: second.GetNonce(), ErrorDetail: &statuspb.Status{Code: 3, Message: "bad"}}); err != nil {
		t.Fatal(err)
	}
	nacked := func() bool {
		for _, p := range ts.srv.Proxies() {
			if p.Nacked[weftv1.ServiceType] != "" {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(5 * time.Second); !nacked(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the NACK never showed in the proxy status")
		}
	}
	if got := revision(); got != 7 {
		t.Errorf("after a NACK of revision 9 the proxy shows %d, want 7", got)
	}

	// The next change (revision 10) is acknowledged.
	cfg.mu.Lock()
	cfg.set = &api.Set{Revision: 10}
	cfg.mu.Unlock()
	if _, err := ts.srv.applyConfig(); err != nil {
		t.Fatal(err)
	}
	third := recv(10)
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: weftv1.ServiceType, ResponseNonce: third.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	waitRevision(10)
	for _, p := range ts.srv.Proxies() {
		if v := p.Versions[weftv1.ServiceType]; v != third.GetSystemVersionInfo() {
			t.Errorf("proxy status version %q, want %q", v, third.GetSystemVersionInfo())
		}
	}
}

// TestRevisionsName: unknown and old cache versions are left alone.
func TestRevisionsName(t *testing.T) {
	r := newRevisions()
	r.setCurrent(3)
	r.next("t")
	if got := r.name("t", "1"); got != "r3-1" {
		t.Errorf("name = %q, want r3-1", got)
	}
	for _, v := range []string{"0", "2", "x", ""} {
		if got := r.name("t", v); got != v {
			t.Errorf("name(%q) = %q, want it unchanged", v, got)
		}
	}
	if got := r.name("other", "1"); got != "1" {
		t.Errorf("another type's version renamed: %q", got)
	}
	for range revisionWindow + 5 {
		r.next("t")
	}
	if got := r.name("t", "1"); got != "1" {
		t.Errorf("a version outside the window is still named: %q", got)
	}
}
