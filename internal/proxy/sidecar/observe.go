package sidecar

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"weft.dev/weft/internal/proxy/accesslog"
	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/tap"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/proxy/trace"
	"weft.dev/weft/internal/proxy/xdsclient"
	"weft.dev/weft/internal/xdsmeta"
)

// observability is what the listeners share to be observed beyond
// request metrics: the access log writer and the tap hub.
type observability struct {
	log    *accesslog.Logger
	tap    *tap.Hub
	tracer *trace.Tracer
}

// newObservability registers the proxy health gauges and makes the access
// logger (writing to w, default os.Stdout), the tap hub and the tracer
// (package trace; exporting to the environment's OTLP endpoint, if any,
// until followTracing learns the mesh's).
func newObservability(ctx context.Context, reg prometheus.Registerer, m *telemetry.Metrics, src *identity.Source, xc *xdsclient.Client, wl xdsmeta.Workload, w io.Writer) (observability, error) {
	err := telemetry.RegisterHealth(reg, telemetry.HealthSource{
		ConfigVersion: func() string {
			if c := xc.Load(); c != nil {
				return c.Version
			}
			return ""
		},
		XDSConnected: func() bool { return xc.ConnState().Connected },
		CertExpiry:   func() time.Time { return src.Expiry() },
	})
	if err != nil {
		return observability{}, fmt.Errorf("health metrics: %w", err)
	}
	if w == nil {
		w = os.Stdout
	}
	own := wl.Service + "." + wl.Namespace
	meshSampling := func() (float64, bool) {
		if c := xc.Load(); c != nil {
			if s := c.Services[own]; s != nil && s.TraceSampling >= 0 {
				return s.TraceSampling, true
			}
		}
		return 0, false
	}
	tracer, err := trace.FromEnv(ctx, trace.Workload{Service: wl.Service, Namespace: wl.Namespace, Version: wl.Version, Identity: src.ID().String()}, meshSampling)
	if err != nil {
		return observability{}, err
	}
	return observability{log: accesslog.New(w, 0, m), tap: tap.NewHub(m), tracer: tracer}, nil
}

// followTracing points the tracer at the collector the mesh names
// (MeshConfig spec.tracing.otlpEndpoint, in the workload's Service
// resource; none: the environment's) and follows its changes until ctx
// ends.
func (o observability) followTracing(ctx context.Context, xc *xdsclient.Client, wl xdsmeta.Workload, log *slog.Logger) {
	own := wl.Service + "." + wl.Namespace
	for {
		updated := xc.Updated()
		endpoint := ""
		if c := xc.Load(); c != nil {
			if s := c.Services[own]; s != nil {
				endpoint = s.TraceEndpoint
			}
		}
		if err := o.tracer.SetEndpoint(ctx, endpoint); err != nil {
			log.Warn("tracing: keeping the previous collector", "error", err)
		}
		select {
		case <-updated:
		case <-ctx.Done():
			return
		}
	}
}

// flushTraces exports the spans still buffered, bounded in time.
func (o observability) flushTraces(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := o.tracer.Shutdown(ctx); err != nil {
		log.Warn("flushing traces", "error", err)
	}
}
