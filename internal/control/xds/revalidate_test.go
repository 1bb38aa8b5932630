package xds

import (
	"crypto/x509"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/xdsmeta"
)

// TestRevalidateEndsRevokedStreams: once a stream's credential is revoked,
// Revalidate ends that stream with PermissionDenied and its workload
// leaves the registry, while a stream whose credential still holds keeps
// being served.
func TestRevalidateEndsRevokedStreams(t *testing.T) {
	var revoked atomic.Bool
	scope := func(leaf *x509.Certificate) (Scope, error) {
		if revoked.Load() && leaf.URIs[0].String() == sa("payments") {
			return Scope{}, errors.New("join token revoked")
		}
		return Scope{}, nil
	}
	// An interval longer than the test: only the explicit calls run.
	ts := startServer(t, Options{Scope: scope, RevalidateInterval: time.Hour})
	pay, got := openDelta(t, ts.dial(new(ts.ca.issue(sa("payments"))), ""),
		node(t, "payments-1", xdsmeta.Workload{Service: "payments", Namespace: "default", ServiceAccount: "payments", Address: "127.0.0.1:7002"}))
	wantAdmitted(t, got)
	bill, got := openDelta(t, ts.dial(new(ts.ca.issue(sa("billing"))), ""),
		node(t, "billing-1", xdsmeta.Workload{Service: "billing", Namespace: "default", ServiceAccount: "billing", Address: "127.0.0.1:7003"}))
	wantAdmitted(t, got)
	registered := func(id string) bool {
		for _, w := range ts.reg.List() {
			if w.ID == id {
				return true
			}
		}
		return false
	}
	if !registered("payments-1") || !registered("billing-1") {
		t.Fatalf("registry holds %v, want payments-1 and billing-1", ts.reg.List())
	}

	if n := ts.srv.Revalidate(); n != 0 {
		t.Fatalf("Revalidate before any revocation ended %d streams", n)
	}
	revoked.Store(true)
	if n := ts.srv.Revalidate(); n != 1 {
		t.Fatalf("Revalidate after revoking payments ended %d streams, want 1", n)
	}
	// The revoked stream ends with the reason...
	if err := streamEnd(t, pay); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "join token revoked") {
		t.Errorf("revoked stream ended with %v, want PermissionDenied naming the revocation", err)
	}
	if n := ts.refusals(reasonRevoked); n != 1 {
		t.Errorf("refusals{reason=revoked} = %v, want 1", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for registered("payments-1") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if registered("payments-1") {
		t.Error("payments-1 is still registered after its stream was ended")
	}
	// ...and the other stream is still served: a request on it is
	// answered (ACK of the first response produces no error).
	if !registered("billing-1") {
		t.Error("billing-1 left the registry; its credential was not revoked")
	}
	if err := bill.Context().Err(); err != nil {
		t.Errorf("billing stream ended: %v", err)
	}
}

// TestRevalidateEndsStreamsLeavingTheirService: a stream whose credential
// still holds but whose Scope.Service no longer accepts the service it
// joined (on Kubernetes: its pods left the Service) is ended too, and
// only that one.
func TestRevalidateEndsStreamsLeavingTheirService(t *testing.T) {
	var left atomic.Bool
	scope := func(*x509.Certificate) (Scope, error) {
		return Scope{Service: func(name string) error {
			if left.Load() && name == "payments" {
				return errors.New("no pod is a member of payments any more")
			}
			return nil
		}}, nil
	}
	ts := startServer(t, Options{Scope: scope, RevalidateInterval: time.Hour})
	pay, got := openDelta(t, ts.dial(new(ts.ca.issue(sa("payments"))), ""),
		node(t, "payments-1", xdsmeta.Workload{Service: "payments", Namespace: "default", ServiceAccount: "payments", Address: "127.0.0.1:7002"}))
	wantAdmitted(t, got)
	bill, got := openDelta(t, ts.dial(new(ts.ca.issue(sa("billing"))), ""),
		node(t, "billing-1", xdsmeta.Workload{Service: "billing", Namespace: "default", ServiceAccount: "billing", Address: "127.0.0.1:7003"}))
	wantAdmitted(t, got)
	if n := ts.srv.Revalidate(); n != 0 {
		t.Fatalf("Revalidate while every member holds ended %d streams", n)
	}
	left.Store(true)
	if n := ts.srv.Revalidate(); n != 1 {
		t.Fatalf("Revalidate after payments' pods left ended %d streams, want 1", n)
	}
	if err := streamEnd(t, pay); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `service "payments": no pod is a member`) {
		t.Errorf("stream ended with %v, want PermissionDenied naming the service", err)
	}
	if err := bill.Context().Err(); err != nil {
		t.Errorf("billing stream ended: %v", err)
	}
}

// streamEnd returns the error that ends stream, failing the test if it is
// still open after 5s.
func streamEnd(t *testing.T, stream interface {
	Recv() (*discoveryv3.DeltaDiscoveryResponse, error)
}) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				errc <- err
				return
			}
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after 5s")
		return nil
	}
}
