package stats

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Target is one proxy to scrape.
type Target struct {
	// ID is the proxy's xDS node ID.
	ID string
	// Admin is host:port of its admin listener, "" if it reported none.
	Admin string
	// Connected is when its xDS stream opened.
	Connected time.Time
}

// CollectorOptions configure a Collector.
type CollectorOptions struct {
	// Targets lists the proxies to scrape, called once per round.
	Targets func() []Target
	// Store receives each round's increase.
	Store *Store
	// Interval is the time between rounds (default: the Store's
	// interval).
	Interval time.Duration
	// MaxSeriesPerProxy caps the series read from one proxy (default 64);
	// a proxy exposing more has the rest dropped and counted.
	MaxSeriesPerProxy int
	// Client scrapes (default: a client with a 2 s timeout that ignores
	// HTTP proxies in the environment).
	Client *http.Client
	Logger *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// DefaultMaxSeriesPerProxy is the default cap on the series kept per proxy.
const DefaultMaxSeriesPerProxy = 64

// Collector scrapes every proxy's /metrics each interval and appends the
// increase of every series since the previous round to its Store. It keeps
// the last cumulative counts of each proxy (at most MaxSeriesPerProxy
// series, about 320 bytes each), so that a counter that goes down — the
// proxy restarted — counts from zero instead of going negative.
//
// A proxy's admin listener serves without authentication and listens on
// loopback, so the collector scrapes only loopback admin addresses: the xDS
// server reports an admin address only for proxies whose stream comes from
// this machine (see xds.ProxyStatus.Admin). Proxies on other machines are
// left to a Prometheus (--prometheus).
type Collector struct {
	opts  CollectorOptions
	start time.Time

	mu      sync.Mutex
	proxies map[string]*proxyState
	dropped uint64
	failed  uint64
}

type proxyState struct {
	admin string
	cum   map[Key]Counts
}

// NewCollector returns a collector; Run starts it.
func NewCollector(opts CollectorOptions) *Collector {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Interval <= 0 {
		opts.Interval = opts.Store.opts.Interval
	}
	if opts.MaxSeriesPerProxy <= 0 {
		opts.MaxSeriesPerProxy = DefaultMaxSeriesPerProxy
	}
	if opts.Client == nil {
		tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second}
		opts.Client = &http.Client{Transport: tr, Timeout: 2 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Collector{opts: opts, start: opts.Now(), proxies: map[string]*proxyState{}}
}

// Run scrapes every interval until ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.Round(ctx)
		}
	}
}

// scrapeConcurrency bounds the scrapes in flight in one round.
const scrapeConcurrency = 16

// Round scrapes every target once and appends the increase to the store.
func (c *Collector) Round(ctx context.Context) {
	targets := c.opts.Targets()
	type result struct {
		cum     map[Key]Counts
		started time.Time
	}
	results := make([]result, len(targets))
	sem := make(chan struct{}, scrapeConcurrency)
	var wg sync.WaitGroup
	for i, t := range targets {
		if !scrapable(t.Admin) {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sc, err := c.scrape(ctx, t.Admin)
			if err != nil {
				c.opts.Logger.Debug("scraping proxy metrics", "proxy", t.ID, "admin", t.Admin, "err", err)
				c.mu.Lock()
				c.failed++
				c.mu.Unlock()
				return
			}
			results[i] = result{cum: sc.Series, started: sc.Started}
		}()
	}
	wg.Wait()

	c.mu.Lock()
	inc := map[Key]Counts{}
	seen := map[string]bool{}
	for i, r := range results {
		t := targets[i]
		seen[t.ID] = true
		if r.cum == nil {
			continue // keep the previous counts of a proxy that failed once
		}
		prev := c.proxies[t.ID]
		if prev != nil && prev.admin != t.Admin {
			prev = nil // another process behind the same ID: start over
		}
		var prevCum map[Key]Counts
		if prev != nil {
			prevCum = prev.cum
		}
		r.cum = c.capLocked(r.cum, prevCum)
		if prev == nil {
			// A new proxy: its counts so far are new if it started after
			// the collector did, not if it ran before (the control plane
			// restarted and it reconnected).
			if newSince(c.start, r.started, t.Connected) {
				addAll(inc, r.cum, nil)
			}
		} else {
			addAll(inc, r.cum, prev.cum)
		}
		c.proxies[t.ID] = &proxyState{admin: t.Admin, cum: r.cum}
	}
	for id := range c.proxies {
		if !seen[id] {
			delete(c.proxies, id)
		}
	}
	c.mu.Unlock()
	c.opts.Store.Append(c.opts.Now(), inc)
}

// startSlack tolerates the coarse clock of process_start_time_seconds: a
// proxy cannot serve before it has its config from the control plane.
const startSlack = 2 * time.Second

// newSince reports whether a proxy first seen now, started at started
// (zero if unknown) and connected at connected, did all its traffic after
// the collector's start.
func newSince(start, started, connected time.Time) bool {
	if !started.IsZero() {
		return started.After(start.Add(-startSlack))
	}
	return connected.After(start)
}

// addAll adds to inc the increase of every series of cum since prev.
func addAll(inc, cum, prev map[Key]Counts) {
	for k, now := range cum {
		d, _ := now.sub(prev[k]) // a reset counts from zero
		if d.Requests == 0 && d.TCP == 0 {
			continue
		}
		acc := inc[k]
		acc.add(d)
		inc[k] = acc
	}
}

// capLocked keeps at most MaxSeriesPerProxy series of one proxy: those
// kept at its previous scrape first, so that the same ones stay (a series
// dropped once and kept later would count its whole past as new), then new
// ones in key order.
func (c *Collector) capLocked(cum, prev map[Key]Counts) map[Key]Counts {
	if len(cum) <= c.opts.MaxSeriesPerProxy {
		return cum
	}
	keys := slices.Collect(maps.Keys(cum))
	slices.SortFunc(keys, func(a, b Key) int {
		_, ka := prev[a]
		_, kb := prev[b]
		switch {
		case ka && !kb:
			return -1
		case kb && !ka:
			return 1
		}
		return cmp.Or(cmp.Compare(a.Side, b.Side), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Destination, b.Destination), cmp.Compare(a.Route, b.Route))
	})
	for _, k := range keys[c.opts.MaxSeriesPerProxy:] {
		delete(cum, k)
		c.dropped++
	}
	return cum
}

// Health reports the proxies tracked, the series dropped over the per-proxy
// cap and the scrapes that failed, since the start.
func (c *Collector) Health() (proxies int, droppedSeries, failedScrapes uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.proxies), c.dropped, c.failed
}

// scrapable reports whether admin is a loopback host:port.
func scrapable(admin string) bool {
	host, _, err := net.SplitHostPort(admin)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// maxScrape bounds the size of one proxy's /metrics.
const maxScrape = 8 << 20

func (c *Collector) scrape(ctx context.Context, admin string) (Scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return Scrape{}, err
	}
	resp, err := c.opts.Client.Do(req)
	if err != nil {
		return Scrape{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Scrape{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return Parse(io.LimitReader(resp.Body, maxScrape))
}
