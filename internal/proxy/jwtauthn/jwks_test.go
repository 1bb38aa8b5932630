package jwtauthn

import (
	"context"
	"crypto"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// jwksServer serves a swappable JWKS document over TLS.
type jwksServer struct {
	*httptest.Server
	mu     sync.Mutex
	body   []byte
	status int
	hits   atomic.Int32
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.WriteHeader(s.status)
		w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// fakeClock is a settable clock.
type fakeClock struct{ t atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.t.Add(int64(d)) }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestJWKSCacheHTTPS(t *testing.T) {
	k1, k2 := newTestKeys(t), newTestKeys(t)
	srv := newJWKSServer(t, k1.jwks)
	clock := &fakeClock{}
	clock.t.Store(time.Now().UnixNano())
	cache := NewJWKSCache(CacheOptions{Client: srv.Client(), MaxStale: time.Hour, Now: clock.now, Logger: quietLogger()})
	uri := srv.URL + "/jwks.json"
	v, err := Compile([]Rule{{Policy: "p", Issuer: testIssuer, JWKSURI: uri}})
	if err != nil {
		t.Fatal(err)
	}
	claims := func() map[string]any {
		return map[string]any{"iss": testIssuer, "sub": "alice", "exp": clock.now().Add(time.Hour).Unix()}
	}
	check := func(tok, wantResult string) {
		t.Helper()
		_, err := v.Authenticate(http.Header{"Authorization": {"Bearer " + tok}}, clock.now(), cache)
		var ae *Error
		switch {
		case wantResult == "" && err != nil:
			t.Fatalf("unexpected error: %v", err)
		case wantResult != "" && (!errors.As(err, &ae) || ae.Result != wantResult):
			t.Fatalf("err = %v, want %s", err, wantResult)
		}
	}
	// Before the first fetch: fail closed, and Run is woken to fetch.
	check(sign(t, jose.RS256, k1.rsa, "rsa1", claims()), "jwks_unavailable")
	select {
	case <-cache.wake:
	default:
		t.Fatal("a missing key set did not wake the fetcher")
	}
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("request path fetched %d times, want 0", n)
	}
	cache.fetchMissing(context.Background())
	check(sign(t, jose.RS256, k1.rsa, "rsa1", claims()), "")
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("fetched %d times, want 1 (cached)", n)
	}
	check(sign(t, jose.RS256, k1.rsa, "rsa1", claims()), "")
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("fetched %d times after a cached verify, want 1", n)
	}

	// Key rotation at the issuer: the refresh picks up the new set.
	srv.set(http.StatusOK, k2.jwks)
	cache.RefreshAll(context.Background())
	check(sign(t, jose.ES256, k2.ec, "ec1", claims()), "")
	check(sign(t, jose.ES256, k1.ec, "ec1", claims()), "bad_signature")

	// The issuer fails: the last good set serves until MaxStale, then
	// tokens are refused.
	srv.set(http.StatusInternalServerError, nil)
	cache.RefreshAll(context.Background())
	check(sign(t, jose.ES256, k2.ec, "ec1", claims()), "")
	clock.advance(61 * time.Minute)
	check(sign(t, jose.ES256, k2.ec, "ec1", claims()), "jwks_unavailable")

	// A body over the bound is refused, not truncated and parsed.
	srv.set(http.StatusOK, append(append([]byte(`{"keys":[],"pad":"`), strings.Repeat("x", MaxJWKSBytes)...), `"}`...))
	cache.RefreshAll(context.Background())
	check(sign(t, jose.ES256, k2.ec, "ec1", claims()), "jwks_unavailable")

	// Recovery.
	srv.set(http.StatusOK, k2.jwks)
	cache.RefreshAll(context.Background())
	check(sign(t, jose.EdDSA, k2.ed, "ed1", claims()), "")
}

func TestJWKSLoadErrors(t *testing.T) {
	k := newTestKeys(t)
	srv := newJWKSServer(t, k.jwks)
	big := append(append([]byte(`{"keys":[],"pad":"`), strings.Repeat("x", MaxJWKSBytes)...), `"}`...)
	dir := t.TempDir()
	good := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(good, k.jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	bigFile := filepath.Join(dir, "big.json")
	if err := os.WriteFile(bigFile, big, 0o600); err != nil {
		t.Fatal(err)
	}
	many := map[string]crypto.PublicKey{}
	for i := range weftv1.MaxJWKSKeys + 1 {
		many[string(rune('a'+i%26))+strings.Repeat("x", i)] = &k.ec.PublicKey
	}
	manyFile := filepath.Join(dir, "many.json")
	if err := os.WriteFile(manyFile, jwksOf(t, many), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, uri string
		client    *http.Client
		want      string
	}{
		{"https ok", srv.URL + "/j", srv.Client(), ""},
		{"file ok", "file://" + good, nil, ""},
		{"unverified TLS", srv.URL + "/j", &http.Client{}, "certificate"},
		{"file missing", "file://" + filepath.Join(dir, "nope"), nil, "no such file"},
		{"file too large", "file://" + bigFile, nil, "larger than"},
		{"too many keys", "file://" + manyFile, nil, "at most 64"},
		{"http refused", "http://127.0.0.1:1/j", nil, "scheme must be https or file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewJWKSCache(CacheOptions{Client: tt.client, Logger: quietLogger()})
			_, err := c.load(context.Background(), tt.uri)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestJWKSCacheUse checks that Use prefetches the key sets of a new
// verifier (so its first token is not refused) and that a refresh drops the
// ones the current verifier no longer needs.
func TestJWKSCacheUse(t *testing.T) {
	k := newTestKeys(t)
	srv := newJWKSServer(t, k.jwks)
	c := NewJWKSCache(CacheOptions{Client: srv.Client(), Logger: quietLogger()})
	compile := func(paths ...string) *Verifier {
		var rules []Rule
		for i, p := range paths {
			rules = append(rules, Rule{Policy: "p", Issuer: "iss" + strconv.Itoa(i), JWKSURI: srv.URL + p})
		}
		v, err := Compile(rules)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v1 := compile("/a", "/b")
	c.Use(v1)
	c.Use(v1) // the same verifier again: nothing new
	select {
	case <-c.wake:
	default:
		t.Fatal("Use did not wake the fetcher")
	}
	c.fetchMissing(context.Background())
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("hits = %d, want 2 (a and b prefetched)", n)
	}
	tok := sign(t, jose.RS256, k.rsa, "rsa1", map[string]any{"iss": "iss1", "sub": "s", "exp": time.Now().Add(time.Minute).Unix()})
	if _, err := v1.Authenticate(http.Header{"Authorization": {"Bearer " + tok}}, time.Now(), c); err != nil {
		t.Fatalf("first token after Use: %v", err)
	}
	c.Use(compile("/b"))
	c.RefreshAll(context.Background())
	c.mu.RLock()
	_, hasA := c.entries[srv.URL+"/a"]
	_, hasB := c.entries[srv.URL+"/b"]
	c.mu.RUnlock()
	if hasA || !hasB {
		t.Fatalf("after refresh: a kept %v (want false), b kept %v (want true)", hasA, hasB)
	}
	if n := srv.hits.Load(); n != 3 {
		t.Fatalf("hits = %d, want 3 (b refreshed, a dropped)", n)
	}
}
