package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"weft.dev/weft/internal/proxy/observe"
	"weft.dev/weft/internal/proxy/telemetry"
)

func TestModeWants(t *testing.T) {
	tests := []struct {
		m          Mode
		ok, failed bool
		wantS      string
	}{
		{Off, false, false, "off"},
		{On, true, true, "on"},
		{Errors, false, true, "errors"},
	}
	for _, tt := range tests {
		if tt.m.Wants(false) != tt.ok || tt.m.Wants(true) != tt.failed || tt.m.String() != tt.wantS {
			t.Errorf("%v: Wants(ok) %v Wants(failed) %v", tt.m, tt.m.Wants(false), tt.m.Wants(true))
		}
	}
}

func TestLogLine(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, 4, nil)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l.Log(&observe.Event{Time: start, Side: "client", RequestID: "abc", Source: "web.default", Destination: "orders.default",
		Method: "GET", Authority: "orders", Path: "/x", Status: 503, GRPCStatus: "", Duration: observe.Millis(2 * time.Millisecond),
		RequestBytes: 0, ResponseBytes: 12, Route: "default/r/0", Endpoint: "127.0.0.1:1", TLS: true})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l.Run(ctx) // writes what is queued, then returns
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%q: %v", buf.String(), err)
	}
	want := map[string]any{"time": "2026-01-02T03:04:05Z", "msg": "access", "side": "client", "request_id": "abc", "source": "web.default",
		"destination": "orders.default", "method": "GET", "authority": "orders", "path": "/x", "status": 503.0,
		"duration_ms": 2.0, "response_bytes": 12.0, "route": "default/r/0", "endpoint": "127.0.0.1:1", "tls": true}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v (%T), want %v", k, got[k], got[k], v)
		}
	}
}

// TestDropWhenFull checks that a full buffer drops (and counts) lines
// instead of blocking.
func TestDropWhenFull(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	l := New(&buf, 2, m)
	done := make(chan struct{})
	go func() {
		for range 5 {
			l.Log(&observe.Event{Path: "/"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Log blocked on a full buffer")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l.Run(ctx)
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 2 {
		t.Errorf("%d lines written, want 2", n)
	}
	want := `
# HELP weft_proxy_access_log_lines_total Access log lines, by result: written, or dropped because the log writer's buffer was full (writes never block a request).
# TYPE weft_proxy_access_log_lines_total counter
weft_proxy_access_log_lines_total{result="dropped"} 3
weft_proxy_access_log_lines_total{result="written"} 2
`
	if err := testutil.GatherAndCompare(reg, bytes.NewBufferString(want), "weft_proxy_access_log_lines_total"); err != nil {
		t.Error(err)
	}
}
