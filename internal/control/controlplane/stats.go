package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"weft.dev/weft/internal/buildinfo"
	"weft.dev/weft/internal/control/stats"
	"weft.dev/weft/internal/control/xds"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// StatsOptions configure the aggregation of the proxies' golden metrics.
type StatsOptions struct {
	// Interval is how often the control plane scrapes every proxy (default
	// 10s, at most 10s); it is also the resolution of the history.
	Interval time.Duration
	// Prometheus, if set, is the base URL of a Prometheus that scrapes
	// the proxies; the control plane then asks it and scrapes nothing.
	Prometheus string
}

// statsService is the aggregation and its data API.
type statsService struct {
	api *stats.Handler
	run func(context.Context) error
}

// newStats builds the embedded aggregation (or the Prometheus client) for
// the proxies that x knows.
func newStats(opts StatsOptions, x *xds.Server, reg prometheus.Registerer, log *slog.Logger) (*statsService, error) {
	if opts.Prometheus != "" {
		p, err := stats.NewPrometheus(opts.Prometheus)
		if err != nil {
			return nil, err
		}
		log.Info("golden metrics from prometheus", "url", p.URL)
		api := stats.NewHandler(stats.HandlerOptions{Source: p, Name: "prometheus", History: p.History, ServedBy: servedBy(x)})
		return &statsService{api: api, run: func(context.Context) error { return nil }}, nil
	}
	if opts.Interval == 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.Interval < 0 || opts.Interval > 10*time.Second {
		return nil, fmt.Errorf("stats interval %s: want more than 0 and at most 10s", opts.Interval)
	}
	store := stats.NewStore(stats.StoreOptions{Interval: opts.Interval})
	c := stats.NewCollector(stats.CollectorOptions{
		Store:    store,
		Interval: opts.Interval,
		Logger:   log,
		Targets: func() []stats.Target {
			ps := x.Proxies()
			ts := make([]stats.Target, 0, len(ps))
			seen := map[string]bool{}
			for _, p := range ps {
				// A proxy that reconnects has two streams for a moment.
				if p.ID == "" || p.Admin == "" || seen[p.ID] {
					continue
				}
				seen[p.ID] = true
				ts = append(ts, stats.Target{ID: p.ID, Admin: p.Admin, Connected: p.Connected})
			}
			return ts
		},
	})
	for _, m := range c.Collectors() {
		if err := reg.Register(m); err != nil {
			return nil, fmt.Errorf("registering stats metrics: %w", err)
		}
	}
	api := stats.NewHandler(stats.HandlerOptions{Source: store, Name: "embedded", History: store.History, ServedBy: servedBy(x)})
	return &statsService{api: api, run: c.Run}, nil
}

// servedBy maps each service whose endpoints all belong to the workloads
// of one other service (a declared Service selecting a version, such as
// the demo's backend-v1) to that service: the workloads' proxies report
// the requests they answer under their own service.
func servedBy(x *xds.Server) func() map[string]string {
	return func() map[string]string {
		snap := x.Snapshot()
		out := map[string]string{}
		for _, key := range snap.Keys {
			s := snap.Services[key]
			name := weftv1.ResourceName(s.Name, s.Namespace)
			by := ""
			for i, w := range snap.Endpoints[key] {
				ws := weftv1.ResourceName(w.Service, w.Namespace)
				if i > 0 && ws != by {
					by = ""
					break
				}
				by = ws
			}
			if by != "" && by != name {
				out[name] = by
			}
		}
		return out
	}
}

// versionHandler serves the control plane's build.
func versionHandler() http.Handler {
	return jsonHandler(func() any { return buildinfo.Get() })
}
