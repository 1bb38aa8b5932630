package trace

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// switchExporter is the span exporter of a Tracer whose collector can
// change at run time (MeshConfig spec.tracing.otlpEndpoint): it hands the
// batches to the OTLP exporter of the current endpoint, or drops them
// while there is none. SetEndpoint swaps the exporter; the old one is shut
// down (flushing what it holds) in the background.
type switchExporter struct {
	// envEndpoint is the sidecar's own (OTEL_EXPORTER_OTLP_*), used when
	// the mesh sets none; "" for none.
	envEndpoint string
	dial        func(ctx context.Context, endpoint string) (sdktrace.SpanExporter, error)

	cur atomic.Pointer[sdktrace.SpanExporter]
	on  atomic.Bool // an exporter is set: Start makes spans

	mu       sync.Mutex
	endpoint string // what cur exports to; "" for none
	shut     bool
}

// dialOTLP returns an OTLP/gRPC exporter: to endpoint (an http:// URL is
// plaintext, https:// TLS) or, for "env", to where the environment says.
func dialOTLP(ctx context.Context, endpoint string) (sdktrace.SpanExporter, error) {
	if endpoint == envMarker {
		return otlptracegrpc.New(ctx)
	}
	return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
}

// envMarker names the environment's endpoint as the current one.
const envMarker = "env"

// set makes endpoint (the mesh's; "" falls back to the environment's) the
// collector spans go to; a no-op when it already is.
func (s *switchExporter) set(ctx context.Context, endpoint string) error {
	if endpoint == "" && s.envEndpoint != "" {
		endpoint = envMarker
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut || endpoint == s.endpoint {
		return nil
	}
	var next *sdktrace.SpanExporter
	if endpoint != "" {
		e, err := s.dial(ctx, endpoint)
		if err != nil {
			return fmt.Errorf("tracing: OTLP exporter for %s: %w", endpoint, err)
		}
		next = &e
	}
	s.endpoint = endpoint
	old := s.cur.Swap(next)
	s.on.Store(next != nil)
	if old != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			(*old).Shutdown(ctx)
		}()
	}
	return nil
}

// ExportSpans implements sdktrace.SpanExporter.
func (s *switchExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e := s.cur.Load(); e != nil {
		return (*e).ExportSpans(ctx, spans)
	}
	return nil
}

// Shutdown implements sdktrace.SpanExporter.
func (s *switchExporter) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shut = true
	s.mu.Unlock()
	s.on.Store(false)
	if e := s.cur.Swap(nil); e != nil {
		return (*e).Shutdown(ctx)
	}
	return nil
}
