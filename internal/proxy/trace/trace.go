// Package trace gives every request one span per proxy hop, exported over
// OTLP/gRPC with the OpenTelemetry SDK. The client side (outbound) and the
// server side (inbound) each continue the trace the request carries — W3C
// traceparent/tracestate, or B3 (single b3 header or X-B3-*) when that is
// what it carries — or start one, and pass their own span on in the
// traceparent (and B3, if the request came with B3) headers to the next
// hop and to the app, so an app that copies those headers onto its own
// calls gets one trace across the mesh.
//
// Tracing is on when the mesh names a collector (MeshConfig
// spec.tracing.otlpEndpoint, pushed in every Service resource: the proxy
// switches exporter when it changes, see endpoint.go) or, when it names
// none, when the sidecar's OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT is set (the standard OpenTelemetry
// environment variables of `weft run` configure that exporter);
// new traces are sampled at MeshConfig spec.tracing.sampling, else at
// OTEL_TRACES_SAMPLER_ARG, else at 0.01, parent-based (a request that
// carries a sampled trace stays sampled); OTEL_BSP_* tune the batching. Off, a
// request pays one nil check.
package trace

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// DefaultSampling is the share of new traces sampled when
// OTEL_TRACES_SAMPLER_ARG does not say.
const DefaultSampling = 0.01

// Workload names the proxy's workload in its spans.
type Workload struct {
	Service, Namespace, Version, Identity string
}

// Tracer starts the proxy's spans. A nil *Tracer traces nothing.
type Tracer struct {
	tp     *sdktrace.TracerProvider
	tracer oteltrace.Tracer
	w      Workload
	w3c    propagation.TraceContext
	b3     propagation.TextMapPropagator
	// sw, for a Tracer of FromEnv, is its switchable exporter: while it
	// has no collector, Start makes no span.
	sw *switchExporter
}

// FromEnv returns the proxy's Tracer: it exports to the environment's
// OTLP endpoint, if any, until SetEndpoint names the mesh's; with neither
// it makes no spans (Start returns nil). New traces are sampled at the
// ratio mesh reports (MeshConfig spec.tracing.sampling; mesh may be nil),
// else at OTEL_TRACES_SAMPLER_ARG, else at DefaultSampling — unless
// OTEL_TRACES_SAMPLER names a sampler, which then decides alone.
func FromEnv(ctx context.Context, w Workload, mesh func() (float64, bool)) (*Tracer, error) {
	sw := &switchExporter{envEndpoint: cmp.Or(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")), dial: dialOTLP}
	if err := sw.set(ctx, ""); err != nil {
		return nil, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(sw), sdktrace.WithResource(resource.NewSchemaless(
		semconv.ServiceName(w.Service+"."+w.Namespace),
		semconv.ServiceNamespace(w.Namespace),
		semconv.ServiceVersion(w.Version),
		attribute.String("weft.identity", w.Identity),
	))}
	if os.Getenv("OTEL_TRACES_SAMPLER") == "" {
		ratio := DefaultSampling
		if v := os.Getenv("OTEL_TRACES_SAMPLER_ARG"); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				return nil, fmt.Errorf("tracing: OTEL_TRACES_SAMPLER_ARG %q: want a ratio between 0 and 1", v)
			}
			ratio = f
		}
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(ratioSampler{sampling(mesh, ratio)})))
	}
	t := New(sdktrace.NewTracerProvider(opts...), w)
	t.sw = sw
	return t, nil
}

// SetEndpoint makes endpoint (MeshConfig spec.tracing.otlpEndpoint, an
// http:// or https:// URL; "" for the environment's, if any) the collector
// t exports to, replacing the exporter when it changed. Only for a Tracer
// of FromEnv.
func (t *Tracer) SetEndpoint(ctx context.Context, endpoint string) error {
	if t == nil || t.sw == nil {
		return nil
	}
	return t.sw.set(ctx, endpoint)
}

// New returns a Tracer over tp (tests pass one with an in-memory
// exporter).
func New(tp *sdktrace.TracerProvider, w Workload) *Tracer {
	return &Tracer{tp: tp, tracer: tp.Tracer("weft.dev/weft/internal/proxy"), w: w,
		b3: b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader | b3.B3SingleHeader))}
}

// Shutdown flushes the spans still buffered, within ctx.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// Span is one hop's span.
type Span struct {
	span  oteltrace.Span
	useB3 bool
}

// hasB3 reports whether h carries a B3 trace (and no W3C one).
func hasB3(h http.Header) bool {
	_, w3c := h["Traceparent"]
	_, single := h["B3"]
	_, multi := h["X-B3-Traceid"]
	return !w3c && (single || multi)
}

// Start starts the span of request r on side "client" (the caller's
// proxy; destination is the service it goes to) or "server" (the
// destination's proxy), as a child of the trace r carries, and rewrites
// r's trace headers to name the new span.
func (t *Tracer) Start(r *http.Request, side, destination string, start time.Time) *Span {
	if t == nil || t.sw != nil && !t.sw.on.Load() {
		return nil // tracing off costs the caller a nil check or an atomic load
	}
	return t.start(r, side, destination, start)
}

func (t *Tracer) start(r *http.Request, side, destination string, start time.Time) *Span {
	carrier := propagation.HeaderCarrier(r.Header)
	s := &Span{useB3: hasB3(r.Header)}
	ctx := r.Context()
	if s.useB3 {
		ctx = t.b3.Extract(ctx, carrier)
	} else {
		ctx = t.w3c.Extract(ctx, carrier)
	}
	kind := oteltrace.SpanKindServer
	if side == "client" {
		kind = oteltrace.SpanKindClient
	}
	ctx, s.span = t.tracer.Start(ctx, r.Method+" "+destination, oteltrace.WithSpanKind(kind), oteltrace.WithTimestamp(start))
	if !s.span.IsRecording() {
		// Not sampled: pass the (unsampled) context on all the same, so
		// the next hops agree.
		t.inject(ctx, r.Header, s.useB3)
		return s
	}
	src := t.w.Service + "." + t.w.Namespace
	if side == "server" {
		src = ""
	}
	s.span.SetAttributes(
		attribute.String("weft.side", side),
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.URL.Path),
		attribute.String("server.address", r.Host),
		attribute.String("weft.destination_service", destination),
		attribute.String("weft.workload_service", t.w.Service+"."+t.w.Namespace),
	)
	if src != "" {
		s.span.SetAttributes(attribute.String("weft.source_service", src), attribute.String("weft.source_identity", t.w.Identity))
	}
	t.inject(ctx, r.Header, s.useB3)
	return s
}

func (t *Tracer) inject(ctx context.Context, h http.Header, useB3 bool) {
	carrier := propagation.HeaderCarrier(h)
	t.w3c.Inject(ctx, carrier)
	if useB3 {
		t.b3.Inject(ctx, carrier)
	}
}

// Outcome is what a span records at its end.
type Outcome struct {
	Status         int
	GRPCStatus     string
	Route          string
	Endpoint       string
	SourceService  string // server side: the caller's
	SourceIdentity string
	Failed         bool
}

// End ends s with the request's outcome.
func (s *Span) End(o Outcome) {
	if s == nil {
		return
	}
	s.end(o)
}

func (s *Span) end(o Outcome) {
	if !s.span.IsRecording() {
		return
	}
	s.span.SetAttributes(attribute.Int("http.response.status_code", o.Status))
	if o.GRPCStatus != "" {
		s.span.SetAttributes(attribute.String("rpc.grpc.status_code", o.GRPCStatus))
	}
	if o.Route != "" {
		s.span.SetAttributes(attribute.String("weft.route", o.Route))
	}
	if o.Endpoint != "" {
		s.span.SetAttributes(attribute.String("weft.endpoint", o.Endpoint))
	}
	if o.SourceService != "" {
		s.span.SetAttributes(attribute.String("weft.source_service", o.SourceService), attribute.String("weft.source_identity", o.SourceIdentity))
	}
	if o.Failed {
		s.span.SetStatus(codes.Error, "status "+strconv.Itoa(o.Status))
	}
	s.span.End()
}
