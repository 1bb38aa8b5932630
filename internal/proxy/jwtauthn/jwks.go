package jwtauthn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Limits of the JWKS cache.
const (
	// MaxJWKSBytes bounds a fetched or read key set document.
	MaxJWKSBytes = 256 << 10
	// MaxJWKSKeys bounds the keys of one key set.
	MaxJWKSKeys = 64
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

// JWKSCache holds the key sets of jwksUri rules (https:// or file://),
// fetched when first used and refreshed by Run. It is safe for concurrent
// use; readers on the request path take no lock.
type JWKSCache struct {
	opts CacheOptions

	mu      sync.Mutex
	entries map[string]*jwksEntry
}

type jwksEntry struct {
	uri     string
	current atomic.Pointer[keySet]
	fetch   sync.Mutex // one fetch at a time per entry
}

type keySet struct {
	keys    jose.JSONWebKeySet
	fetched time.Time
}

// NewJWKSCache returns an empty cache.
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
	return &JWKSCache{opts: opts, entries: map[string]*jwksEntry{}}
}

// entry returns the entry of uri, creating it (without fetching) if new.
func (c *JWKSCache) entry(uri string) (*jwksEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[uri]
	if !ok {
		e = &jwksEntry{uri: uri}
		c.entries[uri] = e
	}
	return e, !ok
}

// Retain drops the entries whose URI is not in uris (called after a config
// push so removed rules stop being refreshed) and fetches those not fetched
// yet, synchronously (each bounded by the fetch timeout).
func (c *JWKSCache) Retain(ctx context.Context, uris []string) {
	keep := make(map[string]bool, len(uris))
	var fresh []*jwksEntry
	for _, u := range uris {
		keep[u] = true
		if e, _ := c.entry(u); e.current.Load() == nil {
			fresh = append(fresh, e)
		}
	}
	c.mu.Lock()
	for u := range c.entries {
		if !keep[u] {
			delete(c.entries, u)
		}
	}
	c.mu.Unlock()
	for _, e := range fresh {
		if err := c.refresh(ctx, e); err != nil {
			c.opts.Logger.Warn("jwks fetch failed; tokens of this issuer are refused until it succeeds", "uri", e.uri, "err", err)
		}
	}
}

// Run refreshes every entry each Refresh interval until ctx is done.
func (c *JWKSCache) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.RefreshAll(ctx)
		}
	}
}

// RefreshAll fetches every entry now; a failure keeps the last good set
// (until MaxStale) and is logged.
func (c *JWKSCache) RefreshAll(ctx context.Context) {
	c.mu.Lock()
	es := make([]*jwksEntry, 0, len(c.entries))
	for _, e := range c.entries {
		es = append(es, e)
	}
	c.mu.Unlock()
	for _, e := range es {
		if err := c.refresh(ctx, e); err != nil {
			c.opts.Logger.Warn("jwks refresh failed; keeping the last good key set until it is stale", "uri", e.uri, "err", err, "max_stale", c.opts.MaxStale)
		}
	}
}

func (c *JWKSCache) refresh(ctx context.Context, e *jwksEntry) error {
	e.fetch.Lock()
	defer e.fetch.Unlock()
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	set, err := c.load(ctx, e.uri)
	if err != nil {
		return err
	}
	e.current.Store(&keySet{keys: set, fetched: c.opts.Now()})
	return nil
}

// keys returns the current key set of e, or errNoKeys when it was never
// fetched or is older than MaxStale. It takes no lock.
func (c *JWKSCache) keys(e *jwksEntry) (*jose.JSONWebKeySet, error) {
	ks := e.current.Load()
	if ks == nil || c.opts.Now().Sub(ks.fetched) > c.opts.MaxStale {
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
	return ParseJWKS(b)
}

// ParseJWKS decodes a JSON Web Key Set and keeps its usable public signing
// keys; it fails when none is left or the set is too large.
func ParseJWKS(b []byte) (jose.JSONWebKeySet, error) {
	var raw jose.JSONWebKeySet
	if err := json.Unmarshal(b, &raw); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("jwks: %w", err)
	}
	if len(raw.Keys) > MaxJWKSKeys {
		return jose.JSONWebKeySet{}, fmt.Errorf("jwks: %d keys, at most %d", len(raw.Keys), MaxJWKSKeys)
	}
	var out jose.JSONWebKeySet
	for _, k := range raw.Keys {
		if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		out.Keys = append(out.Keys, k)
	}
	if len(out.Keys) == 0 {
		return jose.JSONWebKeySet{}, errors.New("jwks: no public signing key")
	}
	return out, nil
}
