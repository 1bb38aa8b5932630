package trace

import (
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func newTestTracer(t *testing.T, sampler sdktrace.Sampler) (*Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sampler))
	t.Cleanup(func() { tp.Shutdown(t.Context()) })
	return New(tp, Workload{Service: "web", Namespace: "default", Identity: "spiffe://cluster.local/ns/default/sa/web"}), exp
}

// TestPropagation checks each hop continues the trace the request carries
// (W3C or B3), or starts one, and rewrites the headers to name its span.
func TestPropagation(t *testing.T) {
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct {
		name        string
		header      http.Header
		wantTraceID string // "" means a new one
		wantParent  string
		wantB3      bool
	}{
		{"none", http.Header{}, "", "", false},
		{"w3c", http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}, "Tracestate": {"vendor=x"}}, traceID, "00f067aa0ba902b7", false},
		{"b3 multi", http.Header{"X-B3-Traceid": {traceID}, "X-B3-Spanid": {"00f067aa0ba902b7"}, "X-B3-Sampled": {"1"}}, traceID, "00f067aa0ba902b7", true},
		{"b3 single", http.Header{"B3": {traceID + "-00f067aa0ba902b7-1"}}, traceID, "00f067aa0ba902b7", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, exp := newTestTracer(t, sdktrace.ParentBased(sdktrace.AlwaysSample()))
			r, _ := http.NewRequest("GET", "http://orders/x", nil)
			r.Header = tt.header
			s := tr.Start(r, "client", "orders.default", time.Now())
			s.End(Outcome{Status: 503, Route: "default/r/0", Failed: true})
			spans := exp.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			sp := spans[0]
			if tt.wantTraceID != "" && sp.SpanContext.TraceID().String() != tt.wantTraceID {
				t.Errorf("trace ID %s, want %s", sp.SpanContext.TraceID(), tt.wantTraceID)
			}
			if got := sp.Parent.SpanID().String(); tt.wantParent != "" && got != tt.wantParent {
				t.Errorf("parent %s, want %s", got, tt.wantParent)
			}
			if tt.wantParent == "" && sp.Parent.IsValid() {
				t.Errorf("a new trace has parent %s", sp.Parent.SpanID())
			}
			// The outgoing header names the new span.
			tp := r.Header.Get("Traceparent")
			if !strings.Contains(tp, sp.SpanContext.SpanID().String()) || !strings.Contains(tp, sp.SpanContext.TraceID().String()) {
				t.Errorf("traceparent %q does not name span %s", tp, sp.SpanContext.SpanID())
			}
			if tt.wantB3 != (r.Header.Get("X-B3-Spanid") == sp.SpanContext.SpanID().String()) {
				t.Errorf("B3 headers %v, want B3 rewritten: %v", r.Header, tt.wantB3)
			}
			attrs := map[string]string{}
			for _, a := range sp.Attributes {
				attrs[string(a.Key)] = a.Value.Emit()
			}
			for k, v := range map[string]string{"weft.side": "client", "weft.destination_service": "orders.default", "weft.route": "default/r/0",
				"weft.source_service": "web.default", "http.response.status_code": "503", "url.path": "/x"} {
				if attrs[k] != v {
					t.Errorf("attribute %s = %q, want %q", k, attrs[k], v)
				}
			}
		})
	}
}

// TestUnsampled checks a request that is not sampled records nothing but
// still passes a (not sampled) context on.
func TestUnsampled(t *testing.T) {
	tr, exp := newTestTracer(t, sdktrace.ParentBased(sdktrace.NeverSample()))
	r, _ := http.NewRequest("GET", "http://orders/x", nil)
	tr.Start(r, "server", "orders.default", time.Now()).End(Outcome{Status: 200})
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans exported, want 0", n)
	}
	if tp := r.Header.Get("Traceparent"); !strings.HasSuffix(tp, "-00") {
		t.Errorf("traceparent %q, want an unsampled one", tp)
	}
}

func TestNilTracer(t *testing.T) {
	var tr *Tracer
	r, _ := http.NewRequest("GET", "http://orders/x", nil)
	tr.Start(r, "client", "orders.default", time.Now()).End(Outcome{})
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Error(err)
	}
	if len(r.Header) != 0 {
		t.Errorf("nil tracer set headers %v", r.Header)
	}
}

// TestRatioSampler checks the mesh's ratio decides new traces, and the
// default applies when the mesh sets none.
func TestRatioSampler(t *testing.T) {
	meshRatio, meshSet := 0.0, true
	s := ratioSampler{sampling(func() (float64, bool) { return meshRatio, meshSet }, 1)}
	count := func() int {
		n := 0
		for i := range 1000 {
			var p sdktrace.SamplingParameters
			p.ParentContext = t.Context()
			for j := range p.TraceID {
				p.TraceID[j] = byte(i * (j + 7) * 2654435761 >> 3)
			}
			if s.ShouldSample(p).Decision == sdktrace.RecordAndSample {
				n++
			}
		}
		return n
	}
	for _, tt := range []struct {
		ratio    float64
		set      bool
		min, max int
	}{
		{0, true, 0, 0},
		{1, true, 1000, 1000},
		{0.5, true, 350, 650},
		{0, false, 1000, 1000}, // unset: the default, 1
	} {
		meshRatio, meshSet = tt.ratio, tt.set
		if n := count(); n < tt.min || n > tt.max {
			t.Errorf("ratio %v (set %v): sampled %d of 1000, want %d-%d", tt.ratio, tt.set, n, tt.min, tt.max)
		}
	}
}
