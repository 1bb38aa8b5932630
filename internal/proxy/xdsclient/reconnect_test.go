package xdsclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/xdsapi/weftv1"
	"weft.dev/weft/internal/xdsmeta"
)

// TestBackoff: every wait lies in [d/2, d] for d doubling from Base and
// capped at Max, the waits are spread (jitter), and Reset starts over.
func TestBackoff(t *testing.T) {
	b := Backoff{Base: 200 * time.Millisecond, Max: 2 * time.Second}
	d := b.Base
	for step := range 12 {
		w := b.Next()
		if w < d/2 || w > d {
			t.Fatalf("step %d: wait %v outside [%v, %v]", step, w, d/2, d)
		}
		d = min(2*d, b.Max)
	}
	seen := map[time.Duration]bool{}
	for range 50 {
		w := b.Next()
		if w > b.Max || w < b.Max/2 {
			t.Fatalf("at the cap: wait %v outside [%v, %v]", w, b.Max/2, b.Max)
		}
		seen[w] = true
	}
	if len(seen) < 10 {
		t.Errorf("50 waits at the cap took only %d distinct values: no jitter", len(seen))
	}
	b.Reset()
	if w := b.Next(); w > b.Base {
		t.Errorf("after Reset: wait %v, want at most %v", w, b.Base)
	}
}

func TestCause(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`), "connection refused"},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"`),
			"TLS handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{fmt.Errorf("opening ADS stream: %w", status.Error(codes.PermissionDenied, "token revoked")), "rejected by the control plane: token revoked"},
		{status.Error(codes.Unauthenticated, "no client certificate"), "rejected by the control plane: no client certificate"},
		{io.EOF, "the control plane closed the stream"},
		{status.Error(codes.Unavailable, "error reading from server: EOF"), "the control plane closed the connection"},
		{fmt.Errorf("fetch: %w", context.DeadlineExceeded), "timed out"},
		{errors.New(strings.Repeat("x", 300)), strings.Repeat("x", 200) + "…"},
	}
	for _, tt := range tests {
		if got := Cause(tt.err); got != tt.want {
			t.Errorf("Cause(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// syncBuffer is a log sink safe for concurrent writes.
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

// TestReconnectStateAndLog: while nothing listens, attempts are counted
// with their cause and logged once, not once per attempt; when the control
// plane appears, the client connects within the capped backoff and reports
// it.
func TestReconnectStateAndLog(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, MaxDelay: 50 * time.Millisecond}, MinConnectTimeout: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var logs syncBuffer
	c, err := New(Options{
		Conn: conn, NodeID: "client-1",
		Workload:    xdsmeta.Workload{Service: "client", Namespace: "default", ServiceAccount: "client"},
		Logger:      slog.New(slog.NewTextHandler(&logs, nil)),
		BackoffBase: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "failed attempts", func() bool { return c.ConnState().FailedAttempts >= 5 })
	st := c.ConnState()
	if st.Connected || st.LastError != "connection refused" {
		t.Errorf("while the control plane is down: %+v, want not connected, last error connection refused", st)
	}
	if n := strings.Count(logs.String(), "cause=\"connection refused\""); n != 1 {
		t.Errorf("%d attempts logged %d lines with the cause, want 1 (rate-limited):\n%s", st.FailedAttempts, n, logs.String())
	}

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	f := &fakeADS{reqs: make(chan *discoveryv3.DeltaDiscoveryRequest, 100), resps: make(chan *discoveryv3.DeltaDiscoveryResponse, 100)}
	g := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, f)
	go g.Serve(ln)
	defer g.Stop()
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.ServiceType, Nonce: "1", SystemVersionInfo: "v1"}
	up := time.Now()
	waitFor(t, "connected", func() bool { return c.ConnState().Connected })
	if d := time.Since(up); d > time.Second {
		t.Errorf("connected %v after the control plane came up; the backoff caps at 40ms", d)
	}
	st = c.ConnState()
	if st.FailedAttempts != 0 || st.Since.Before(up) || st.LastError != "connection refused" {
		t.Errorf("after connecting: %+v, want 0 failed attempts, since after %v, the last error kept", st, up)
	}
	if !strings.Contains(logs.String(), "connected to the control plane again") {
		t.Errorf("no log line for the reconnection:\n%s", logs.String())
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
