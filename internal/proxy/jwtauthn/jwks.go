package jwtauthn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Limits of the JWKS cache.
const (
	// MaxJWKSBytes bounds a fetched or read key set document.
	MaxJWKSBytes = weftv1.MaxJWKSBytes
	// DefaultRefresh is how often a jwksUri is fetched again.
	DefaultRefresh = 10 * time.Minute
	// DefaultMaxStale is how long the last good key set of a jwksUri keeps
	// verifying tokens while every refresh fails; after it, tokens are
	// refused (fail closed).
	DefaultMaxStale = time.Hour
	// DefaultFetchTimeout bounds one fetch.
	DefaultFetchTimeout = 5 * time.Second
)

// errNoKeys reports a key set that is not (or no longer) available.
var errNoKeys = errors.New("jwks unavailable")

// CacheOptions configure a JWKSCache. Zero values take the defaults.
type CacheOptions struct {
	// Client fetches https key sets. Its transport must verify TLS (the
	// default client does, against the system roots).
	Client *http.Client
	// Refresh is the refetch interval (DefaultRefresh).
	Refresh time.Duration
	// MaxStale bounds how long a key set is used after its last good fetch
	// (DefaultMaxStale).
	MaxStale time.Duration
	// Timeout bounds one fetch (DefaultFetchTimeout).
	Timeout time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger receives fetch failures (slog.Default()).
	Logger *slog.Logger
}

// JWKSCache holds the key sets of jwksUri rules (https:// or file://). An
// entry is created when Use sees a verifier that needs it (or, failing
// that, the first time a token needs it); Run fetches it then, refreshes
// every entry each Refresh interval and drops the entries the verifier last
// given to Use no longer needs. Until an entry's first fetch succeeds, and
// once its last good fetch is older than MaxStale, tokens that need it are
// refused (fail closed). It is safe for concurrent use; the request path
// takes a read lock and never waits for a fetch.
type JWKSCache struct {
	opts  CacheOptions
	wake  chan struct{}
	inUse atomic.Pointer[Verifier] // see Use

	mu      sync.RWMutex
	entries map[string]*jwksEntry
}

// MaxJWKSEntries bounds the key set URIs one cache holds.
const MaxJWKSEntries = 64

// minRetry spaces the fetches of a key set that was never fetched.
const minRetry = 2 * time.Second

type jwksEntry struct {
	uri     string
	current atomic.Pointer[keySet]
	tried   atomic.Int64 // unix nanoseconds of the last fetch attempt
	fetch   sync.Mutex   // one fetch at a time per entry
}

type keySet struct {
	keys    jose.JSONWebKeySet
	fetched time.Time
}

// NewJWKSCache returns an empty cache; call Run to fetch.
func NewJWKSCache(opts CacheOptions) *JWKSCache {
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultRefresh
	}
	if opts.MaxStale <= 0 {
		opts.MaxStale = DefaultMaxStale
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultFetchTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &JWKSCache{opts: opts, wake: make(chan struct{}, 1), entries: map[string]*jwksEntry{}}
}

// Run fetches new entries as tokens ask for them and refreshes every entry
// each Refresh interval, until ctx is done.
func (c *JWKSCache) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
			c.fetchMissing(ctx)
		case <-t.C:
			c.RefreshAll(ctx)
		}
	}
}

// snapshot lists the entries.
func (c *JWKSCache) snapshot() []*jwksEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	es := make([]*jwksEntry, 0, len(c.entries))
	for _, e := range c.entries {
		es = append(es, e)
	}
	return es
}

// fetchMissing fetches the entries never fetched successfully, each at most
// once per minRetry.
func (c *JWKSCache) fetchMissing(ctx context.Context) {
	now := c.opts.Now()
	for _, e := range c.snapshot() {
		if e.current.Load() != nil || now.Sub(time.Unix(0, e.tried.Load())) < minRetry {
			continue
		}
		if err := c.refresh(ctx, e); err != nil {
			c.opts.Logger.Warn("jwks fetch failed; tokens of this issuer are refused until it succeeds", "uri", e.uri, "err", err)
		}
	}
}

// Use tells the cache which verifier is current, so that the key sets it
// needs are fetched before its first token arrives and the ones it no
// longer needs are dropped at the next refresh. It costs one atomic load
// when v is the verifier of the previous call; nil c or v does nothing.
func (c *JWKSCache) Use(v *Verifier) {
	if c == nil || v == nil || c.inUse.Load() == v {
		return
	}
	c.inUse.Store(v)
	c.mu.Lock()
	for _, u := range v.uris {
		if c.entries[u] == nil && len(c.entries) < MaxJWKSEntries {
			c.entries[u] = &jwksEntry{uri: u}
		}
	}
	c.mu.Unlock()
	c.poke()
}

// poke wakes Run to fetch new entries, without blocking.
func (c *JWKSCache) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// RefreshAll drops the entries the current verifier (see Use) does not
// need and fetches the others now; a failure keeps the last good set
// (until MaxStale) and is logged.
func (c *JWKSCache) RefreshAll(ctx context.Context) {
	if v := c.inUse.Load(); v != nil {
		c.mu.Lock()
		for u := range c.entries {
			if !slices.Contains(v.uris, u) {
				delete(c.entries, u)
			}
		}
		c.mu.Unlock()
	}
	for _, e := range c.snapshot() {
		if err := c.refresh(ctx, e); err != nil {
			c.opts.Logger.Warn("jwks refresh failed; keeping the last good key set until it is stale", "uri", e.uri, "err", err, "max_stale", c.opts.MaxStale)
		}
	}
}

func (c *JWKSCache) refresh(ctx context.Context, e *jwksEntry) error {
	e.fetch.Lock()
	defer e.fetch.Unlock()
	e.tried.Store(c.opts.Now().UnixNano())
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	set, err := c.load(ctx, e.uri)
	if err != nil {
		return err
	}
	e.current.Store(&keySet{keys: set, fetched: c.opts.Now()})
	return nil
}

// keys returns the current key set of uri, or errNoKeys when it was never
// fetched or is older than MaxStale. A new uri gets an entry (up to
// MaxJWKSEntries) that Run fetches.
func (c *JWKSCache) keys(uri string, now time.Time) (*jose.JSONWebKeySet, error) {
	c.mu.RLock()
	e := c.entries[uri]
	c.mu.RUnlock()
	if e == nil {
		c.mu.Lock()
		if e = c.entries[uri]; e == nil && len(c.entries) < MaxJWKSEntries {
			e = &jwksEntry{uri: uri}
			c.entries[uri] = e
		}
		c.mu.Unlock()
		if e == nil {
			return nil, errNoKeys
		}
	}
	ks := e.current.Load()
	if ks == nil {
		c.poke()
		return nil, errNoKeys
	}
	if now.Sub(ks.fetched) > c.opts.MaxStale {
		return nil, errNoKeys
	}
	return &ks.keys, nil
}

// load reads the key set at uri: https:// through the client, file:// from
// disk, bounded to MaxJWKSBytes either way.
func (c *JWKSCache) load(ctx context.Context, uri string) (jose.JSONWebKeySet, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("jwks uri %q: %w", uri, err)
	}
	var r io.ReadCloser
	switch u.Scheme {
	case "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
		if err != nil {
			return jose.JSONWebKeySet{}, fmt.Errorf("jwks %s: %w", uri, err)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := c.opts.Client.Do(req)
		if err != nil {
			return jose.JSONWebKeySet{}, fmt.Errorf("jwks fetch: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return jose.JSONWebKeySet{}, fmt.Errorf("jwks fetch %s: status %d", uri, resp.StatusCode)
		}
		r = resp.Body
	case "file":
		f, err := os.Open(u.Path)
		if err != nil {
			return jose.JSONWebKeySet{}, fmt.Errorf("jwks file: %w", err)
		}
		r = f
	default:
		return jose.JSONWebKeySet{}, fmt.Errorf("jwks uri %q: scheme must be https or file", uri)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, MaxJWKSBytes+1))
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("jwks %s: read: %w", uri, err)
	}
	if len(b) > MaxJWKSBytes {
		return jose.JSONWebKeySet{}, fmt.Errorf("jwks %s: larger than %d bytes", uri, MaxJWKSBytes)
	}
	return weftv1.ParseJWKS(b)
}
