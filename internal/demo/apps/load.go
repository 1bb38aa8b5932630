package apps

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// LoadConfig configures the load generator.
type LoadConfig struct {
	// URL is requested with GET, through the proxy named by HTTP_PROXY.
	URL string
	// RPS is the request rate per second; default 5.
	RPS float64
	// Report is how often a summary line is logged; default 10s.
	Report time.Duration
	// Timeout bounds each request; default 5s.
	Timeout time.Duration
	// MaxInFlight bounds concurrent requests; a tick finding them all busy
	// counts as an error. Default 64.
	MaxInFlight int
}

// RunLoad GETs cfg.URL at cfg.RPS until ctx ends, logging one summary line
// (ok and error counts, for the interval and in total) every cfg.Report. A
// 2xx answer counts as ok; anything else, or no answer, as an error.
func RunLoad(ctx context.Context, cfg LoadConfig, logger *slog.Logger) error {
	if cfg.URL == "" {
		return fmt.Errorf("load: no URL")
	}
	if cfg.RPS == 0 {
		cfg.RPS = 5
	}
	if cfg.RPS < 0 {
		return fmt.Errorf("load: rps %v: must be positive", cfg.RPS)
	}
	if cfg.Report <= 0 {
		cfg.Report = 10 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	if _, err := http.NewRequest(http.MethodGet, cfg.URL, nil); err != nil {
		return fmt.Errorf("load: url %q: %w", cfg.URL, err)
	}
	logger = logger.With("component", "load", "url", cfg.URL)

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}

	var (
		ok, failed         atomic.Int64
		totalOK, totalFail int64
		lastErr            atomic.Pointer[string]
		wg                 sync.WaitGroup
	)
	sem := make(chan struct{}, cfg.MaxInFlight)
	fail := func(msg string) {
		failed.Add(1)
		lastErr.Store(&msg)
	}
	one := func() {
		defer func() { <-sem; wg.Done() }()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				fail(err.Error())
			}
			return
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
			ok.Add(1)
		} else {
			fail("status " + resp.Status)
		}
	}

	interval := time.Duration(float64(time.Second) / cfg.RPS)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	report := time.NewTicker(cfg.Report)
	defer report.Stop()
	logger.Info("starting", "rps", cfg.RPS)
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			logger.Info("load stopped", "total_ok", totalOK+ok.Load(), "total_err", totalFail+failed.Load())
			return nil
		case <-tick.C:
			select {
			case sem <- struct{}{}:
				wg.Add(1)
				go one()
			default:
				fail(fmt.Sprintf("%d requests already in flight", cfg.MaxInFlight))
			}
		case <-report.C:
			o, f := ok.Swap(0), failed.Swap(0)
			totalOK += o
			totalFail += f
			attrs := []any{"ok", o, "err", f, "total_ok", totalOK, "total_err", totalFail}
			if e := lastErr.Swap(nil); e != nil && f > 0 {
				attrs = append(attrs, "last_err", *e)
			}
			logger.Info("load summary", attrs...)
		}
	}
}
