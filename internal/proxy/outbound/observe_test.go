package outbound

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"weft.dev/weft/internal/proxy/accesslog"
	"weft.dev/weft/internal/proxy/observe"
	"weft.dev/weft/internal/proxy/tap"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// syncBuffer is a bytes.Buffer safe for the logger's goroutine.
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

// observedMesh is a mesh whose orders service logs every request, with a
// tap hub on the outbound.
func observedMesh(t testing.TB, w io.Writer) *testMesh {
	m := newMesh(t)
	s := svc("orders", &weftv1.Route{Name: "default/r/0",
		Matches:  []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Value: "/"}}},
		Backends: []*weftv1.Backend{backend("orders", 1)}})
	s.AccessLog = weftv1.AccessLogMode_ACCESS_LOG_ON
	m.addService(s)
	m.addWorkload(t, "orders", startApp(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Request-Id", r.Header.Get("X-Request-Id"))
		w.Write([]byte("ok"))
	})))
	m.commit(t)
	m.accessLog = accesslog.New(w, 0, m.metrics)
	m.tap = tap.NewHub(m.metrics)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.accessLog.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	m.startOutbound(t, nil)
	return m
}

// TestObserved checks one request's access log line and tap event from
// the outbound: the request ID reaches the app, the route is named and
// noted as the first decision.
func TestObserved(t *testing.T) {
	var buf syncBuffer
	m := observedMesh(t, &buf)
	sub := m.tap.Subscribe(tap.Filter{})
	defer m.tap.Unsubscribe(sub)
	code, _, h := m.get(t, "http://orders/x?q=1")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	id := h.Get("X-Seen-Request-Id")
	if len(id) != 32 {
		t.Fatalf("app saw request ID %q, want a generated one", id)
	}
	var e observe.Event
	select {
	case e = <-sub.Events():
	case <-time.After(5 * time.Second):
		t.Fatal("no tap event")
	}
	if e.RequestID != id || e.Route != "default/r/0" || e.Path != "/x" || e.Status != 200 || e.Side != "client" ||
		e.Destination != "orders.default" || e.Endpoint == "" || e.ResponseBytes != 2 || len(e.Decisions) == 0 || e.Decisions[0].Stage != "route" {
		t.Errorf("tap event %+v", e)
	}
	var line map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(buf.String(), "\n") {
		time.Sleep(5 * time.Millisecond)
	}
	if err := json.Unmarshal([]byte(buf.String()), &line); err != nil {
		t.Fatalf("access log %q: %v", buf.String(), err)
	}
	if line["request_id"] != id || line["route"] != "default/r/0" || line["status"] != 200.0 {
		t.Errorf("access log line %v", line)
	}
}

// BenchmarkProxyRoundTripObserved is BenchmarkProxyRoundTrip with the
// destination's access log on and a tap subscriber: the cost of observing
// every request.
func BenchmarkProxyRoundTripObserved(b *testing.B) {
	m := observedMesh(b, io.Discard)
	sub := m.tap.Subscribe(tap.Filter{})
	defer m.tap.Unsubscribe(sub)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-sub.Events():
			case <-stop:
				return
			}
		}
	}()
	req, _ := http.NewRequest("GET", "http://orders/bench", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := m.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
}
