package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// otlpReceiver is an in-test OTLP/gRPC trace collector.
type otlpReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	addr  string
	mu    sync.Mutex
	spans []receivedSpan
}

type receivedSpan struct {
	service string // resource service.name
	span    *tracepb.Span
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{addr: ln.Addr().String()}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, r)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return r
}

// Export implements the OTLP trace service.
func (r *otlpReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		svc := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				svc = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, receivedSpan{service: svc, span: s})
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (r *otlpReceiver) received() []receivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedSpan(nil), r.spans...)
}

func spanAttr(s *tracepb.Span, key string) string {
	for _, a := range s.GetAttributes() {
		if a.GetKey() == key {
			return a.GetValue().GetStringValue()
		}
	}
	return ""
}

// chainApp is an app that, for every request, calls next (if set) through
// its own workload's outbound proxy, passing the trace headers on as an
// instrumented app does, and answers with the next hop's status.
func startChainApp(t *testing.T, next string, self **workload) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if next == "" {
			w.Write([]byte("leaf\n"))
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", "http://"+next+r.URL.Path, nil)
		for _, h := range []string{"Traceparent", "Tracestate"} {
			if v := r.Header.Get(h); v != "" {
				req.Header.Set(h, v)
			}
		}
		resp, err := (*self).client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// TestTraceAcrossThreeServices sends one request client -> a -> b -> c with
// tracing on and checks the in-test OTLP receiver gets nothing at the
// sidecars' sampling 0, then, once the docs' MeshConfig sets sampling 1,
// one trace of six spans, one per proxy hop, each the child of the
// previous.
func TestTraceAcrossThreeServices(t *testing.T) {
	recv := startOTLPReceiver(t)
	env := []string{
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://" + recv.addr,
		"OTEL_EXPORTER_OTLP_TRACES_INSECURE=true",
		"OTEL_TRACES_SAMPLER_ARG=0", // sampled only once the MeshConfig says so
		"OTEL_BSP_SCHEDULE_DELAY=100",
	}
	c := startControl(t)
	var a, b, cw *workload
	cw = startWorkload(t, c, wlOpts{service: "c", appPort: startChainApp(t, "", &cw), cmd: []string{"sleep", "3600"}, env: env})
	b = startWorkload(t, c, wlOpts{service: "b", appPort: startChainApp(t, "c", &b), cmd: []string{"sleep", "3600"}, env: env})
	a = startWorkload(t, c, wlOpts{service: "a", appPort: startChainApp(t, "b", &a), cmd: []string{"sleep", "3600"}, env: env})
	client := startWorkload(t, c, wlOpts{service: "client", cmd: []string{"sleep", "3600"}, env: env})
	eventually(t, 15*time.Second, 100*time.Millisecond, "client -> a -> b -> c", func() error {
		return client.send("GET", "http://a/warm", "", 200)
	})
	if n := len(recv.received()); n != 0 {
		t.Fatalf("%d spans exported at sampling 0, want none", n)
	}
	c.apply(docYAML(t, "observability/tracing.md", docMarked("mesh-tracing")))
	// Sampling 1 arrives with the next push: send requests (one at a
	// time, each its own path) until one is traced.
	var trace []receivedSpan
	path := ""
	eventually(t, 15*time.Second, 50*time.Millisecond, "a request traced at sampling 1", func() error {
		path = "/traced-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		if err := client.send("GET", "http://a"+path, "", 200); err != nil {
			return err
		}
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			trace = nil
			for _, s := range recv.received() {
				if spanAttr(s.span, "url.path") == path {
					trace = append(trace, s)
				}
			}
			if len(trace) >= 6 {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		return fmt.Errorf("%d spans for %s", len(trace), path)
	})
	if len(trace) != 6 {
		t.Fatalf("%d spans for %s, want 6", len(trace), path)
	}
	// The hops in order: (service of the proxy, side).
	hops := []struct{ service, side, dest string }{
		{"client.default", "client", "a.default"},
		{"a.default", "server", "a.default"},
		{"a.default", "client", "b.default"},
		{"b.default", "server", "b.default"},
		{"b.default", "client", "c.default"},
		{"c.default", "server", "c.default"},
	}
	byHop := map[string]*tracepb.Span{}
	for _, s := range trace {
		byHop[s.service+"|"+spanAttr(s.span, "weft.side")] = s.span
	}
	var parent *tracepb.Span
	for i, h := range hops {
		s := byHop[h.service+"|"+h.side]
		if s == nil {
			t.Fatalf("no %s span from %s's proxy (have %v)", h.side, h.service, byHop)
		}
		if got := spanAttr(s, "weft.destination_service"); got != h.dest {
			t.Errorf("hop %d: destination %q, want %q", i, got, h.dest)
		}
		if string(s.GetTraceId()) != string(trace[0].span.GetTraceId()) {
			t.Errorf("hop %d: trace ID %x, want one trace %x", i, s.GetTraceId(), trace[0].span.GetTraceId())
		}
		wantKind := tracepb.Span_SPAN_KIND_CLIENT
		if h.side == "server" {
			wantKind = tracepb.Span_SPAN_KIND_SERVER
		}
		if s.GetKind() != wantKind {
			t.Errorf("hop %d: kind %v, want %v", i, s.GetKind(), wantKind)
		}
		if parent == nil {
			if len(s.GetParentSpanId()) != 0 {
				t.Errorf("hop 0 has a parent %x: want the root", s.GetParentSpanId())
			}
		} else if string(s.GetParentSpanId()) != string(parent.GetSpanId()) {
			t.Errorf("hop %d (%s %s): parent %x, want %x (hop %d)", i, h.service, h.side, s.GetParentSpanId(), parent.GetSpanId(), i-1)
		}
		parent = s
	}
}

// TestTraceMeshCollector: sidecars whose environment names no collector
// trace nothing until the docs' MeshConfig names one (the in-test OTLP
// receiver), then export there; when the MeshConfig names another, new
// spans go to that one only.
func TestTraceMeshCollector(t *testing.T) {
	first, second := startOTLPReceiver(t), startOTLPReceiver(t)
	env := []string{"OTEL_BSP_SCHEDULE_DELAY=100"}
	c := startControl(t)
	app := startObsApp(t)
	startWorkload(t, c, wlOpts{service: "a", appPort: app.port, cmd: []string{"sleep", "3600"}, env: env})
	client := startWorkload(t, c, wlOpts{service: "client", cmd: []string{"sleep", "3600"}, env: env})
	eventually(t, 15*time.Second, 100*time.Millisecond, "client -> a", func() error {
		return client.send("GET", "http://a/warm", "", 200)
	})
	doc := docYAML(t, "observability/tracing.md", docMarked("mesh-collector"))
	meshConfig := func(r *otlpReceiver) string {
		// The docs' collector address is the test's receiver; sampling 1
		// so that every request is traced.
		y := strings.Replace(doc, "http://otel-collector:4317", "http://"+r.addr, 1)
		if y == doc {
			t.Fatal("the docs' MeshConfig names no http://otel-collector:4317")
		}
		return strings.Replace(y, "sampling: 0.01", "sampling: 1.0", 1)
	}
	// traced sends requests until one's spans (both sides) reach r.
	traced := func(r *otlpReceiver) string {
		var path string
		eventually(t, 15*time.Second, 50*time.Millisecond, "a request traced to "+r.addr, func() error {
			path = "/traced-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			if err := client.send("GET", "http://a"+path, "", 200); err != nil {
				return err
			}
			deadline := time.Now().Add(time.Second)
			for time.Now().Before(deadline) {
				if n := spansFor(r, path); n == 2 {
					return nil
				}
				time.Sleep(50 * time.Millisecond)
			}
			return fmt.Errorf("%d spans for %s at %s", spansFor(r, path), path, r.addr)
		})
		return path
	}
	if n := len(first.received()) + len(second.received()); n != 0 {
		t.Fatalf("%d spans exported with no collector configured", n)
	}
	c.apply(meshConfig(first))
	p1 := traced(first)
	c.apply(meshConfig(second))
	p2 := traced(second)
	if n := spansFor(first, p2); n != 0 {
		t.Errorf("%d spans of %s at the first collector after the switch", n, p2)
	}
	if n := spansFor(second, p1); n != 0 {
		t.Errorf("%d spans of %s at the second collector", n, p1)
	}
}

// spansFor counts r's spans of requests for path.
func spansFor(r *otlpReceiver, path string) int {
	n := 0
	for _, s := range r.received() {
		if spanAttr(s.span, "url.path") == path {
			n++
		}
	}
	return n
}
