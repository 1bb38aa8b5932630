package trace

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestSetEndpoint switches a Tracer between collectors: no collector makes
// no spans; each endpoint gets the spans made while it is current; ""
// falls back to the environment's; a replaced exporter is shut down.
func TestSetEndpoint(t *testing.T) {
	// Spans exported, by endpoint, counted at export (a shut-down
	// in-memory exporter forgets its spans).
	collectors := map[string]int{}
	dial := func(_ context.Context, ep string) (sdktrace.SpanExporter, error) {
		return countingExporter{ep: ep, n: collectors, SpanExporter: tracetest.NewNoopExporter()}, nil
	}
	for _, tc := range []struct {
		name, env string
		steps     []string // endpoints set in turn; a span is made after each
		want      map[string]int
	}{
		{"no collector anywhere", "", []string{""}, map[string]int{}},
		{"mesh collector from none, then another, then none", "", []string{"http://a:4317", "http://b:4317", ""}, map[string]int{"http://a:4317": 1, "http://b:4317": 1}},
		{"environment, then mesh, then environment again", "http://env:4317", []string{"", "http://a:4317", ""}, map[string]int{envMarker: 2, "http://a:4317": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clear(collectors)
			sw := &switchExporter{envEndpoint: tc.env, dial: dial}
			tr := New(sdktrace.NewTracerProvider(sdktrace.WithSyncer(sw), sdktrace.WithSampler(sdktrace.AlwaysSample())), Workload{Service: "a", Namespace: "default"})
			tr.sw = sw
			made := 0
			for _, ep := range tc.steps {
				if err := tr.SetEndpoint(context.Background(), ep); err != nil {
					t.Fatal(err)
				}
				if s := tr.Start(httptest.NewRequest("GET", "http://a/x", nil), "client", "a.default", time.Now()); s != nil {
					s.End(Outcome{Status: 200})
					made++
				}
			}
			total := 0
			for ep, n := range tc.want {
				if got := collectors[ep]; got != n {
					t.Errorf("%s got %d spans, want %d", ep, got, n)
				}
				total += n
			}
			if made != total {
				t.Errorf("%d spans made, want %d (none while no collector is set)", made, total)
			}
		})
	}
}

type countingExporter struct {
	sdktrace.SpanExporter
	ep string
	n  map[string]int
}

func (c countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	c.n[c.ep] += len(spans)
	return nil
}
