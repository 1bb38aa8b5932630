package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"weft.dev/weft/internal/buildinfo"
	"weft.dev/weft/internal/control/stats"
	"weft.dev/weft/internal/control/xds"
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
func newStats(opts StatsOptions, x *xds.Server, log *slog.Logger) (*statsService, error) {
	if opts.Prometheus != "" {
		p, err := stats.NewPrometheus(opts.Prometheus)
		if err != nil {
			return nil, err
		}
		log.Info("golden metrics from prometheus", "url", p.URL)
		return &statsService{api: stats.NewHandler(p, "prometheus", nil), run: func(context.Context) error { return nil }}, nil
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
	return &statsService{api: stats.NewHandler(store, "embedded", store), run: c.Run}, nil
}

// versionHandler serves the control plane's build.
func versionHandler() http.Handler {
	return jsonHandler(func() any { return buildinfo.Get() })
}
