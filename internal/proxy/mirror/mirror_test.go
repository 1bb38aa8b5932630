package mirror

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

func TestCompileAndPicked(t *testing.T) {
	ts := Compile([]*weftv1.RequestMirror{{Service: "shadow", Namespace: "default", PerMillion: weftv1.PerMillion}, {Service: "pay", Namespace: "shop", PerMillion: 250000}, {Service: "off", Namespace: "default"}})
	want := []Target{{"shadow.default", weftv1.PerMillion}, {"pay.shop", 250000}, {"off.default", 0}}
	if len(ts) != len(want) {
		t.Fatalf("Compile = %v", ts)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i, tt := range ts {
		if tt != want[i] {
			t.Errorf("target %d = %v, want %v", i, tt, want[i])
		}
		picked := 0
		for range 100000 {
			if tt.Picked(rng.Uint32N) {
				picked++
			}
		}
		if exp := int(uint64(tt.Share) * 100000 / weftv1.PerMillion); picked < exp-1000 || picked > exp+1000 {
			t.Errorf("%v: picked %d of 100000, want %d ± 1000", tt, picked, exp)
		}
	}
	if Compile(nil) != nil {
		t.Error("Compile(nil) != nil")
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(2)
	a, b := l.Acquire("s"), l.Acquire("s")
	if a == nil || b == nil {
		t.Fatal("first two slots refused")
	}
	if l.Acquire("s") != nil {
		t.Fatal("third slot granted over the bound of 2")
	}
	if l.Acquire("other") == nil {
		t.Fatal("another service's slot refused: bounds are per service")
	}
	a.Release()
	if c := l.Acquire("s"); c == nil {
		t.Fatal("slot refused after a release")
	}
	if got := l.InFlight("s"); got != 2 {
		t.Errorf("InFlight = %d, want 2", got)
	}
	// Concurrent use keeps the count exact.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if s := l.Acquire("c"); s != nil {
					s.Release()
				}
			}
		})
	}
	wg.Wait()
	if got := l.InFlight("c"); got != 0 {
		t.Errorf("InFlight after concurrent use = %d, want 0", got)
	}
	if NewLimiter(0).max != DefaultMaxInFlight {
		t.Error("NewLimiter(0) is not the default bound")
	}
}

func TestShadowHost(t *testing.T) {
	for in, want := range map[string]string{
		"backend":                "backend-shadow",
		"backend:8080":           "backend-shadow:8080",
		"backend.default.svc:80": "backend.default.svc-shadow:80",
	} {
		if got := ShadowHost(in); got != want {
			t.Errorf("ShadowHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCopy(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "http://backend:8080/a/b?x=1", strings.NewReader("real"))
	r.Header.Set("X-Tenant", "t1")
	r.Header.Set("Connection", "close")
	r.Header.Set("Proxy-Authorization", "Basic eA==")
	r.Header.Set("Te", "trailers")
	c := Copy(r, []byte("body"))
	if c.Method != http.MethodPost || c.URL.Path != "/a/b" || c.URL.RawQuery != "x=1" || c.Host != "backend-shadow:8080" {
		t.Errorf("copy %s %s host %q", c.Method, c.URL, c.Host)
	}
	if c.Header.Get("X-Tenant") != "t1" || c.Header.Get("Te") != "trailers" || c.Header.Get("Connection") != "" || c.Header.Get("Proxy-Authorization") != "" {
		t.Errorf("copy headers %v", c.Header)
	}
	c.Header.Set("X-Tenant", "changed")
	c.URL.Host = "10.0.0.1:1"
	if r.Header.Get("X-Tenant") != "t1" || r.URL.Host != "backend:8080" {
		t.Error("changing the copy changed the original")
	}
	if b, _ := io.ReadAll(c.Body); string(b) != "body" || c.ContentLength != 4 {
		t.Errorf("copy body %q, length %d", b, c.ContentLength)
	}
	if c := Copy(r, nil); c.Body != http.NoBody || c.ContentLength != 0 {
		t.Errorf("copy without body: %v %d", c.Body, c.ContentLength)
	}
}

func TestMirrorable(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://backend/", nil)
	if !Mirrorable(r) {
		t.Error("a plain GET is not mirrorable")
	}
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	if Mirrorable(r) {
		t.Error("a WebSocket upgrade is mirrorable")
	}
}

func TestTee(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		read   bool // read to the end before Close
		wantOK bool
	}{
		{"small, read", "hello", true, true},
		{"empty, read", "", true, true},
		{"at the bound", strings.Repeat("x", MaxBody), true, true},
		{"over the bound", strings.Repeat("x", MaxBody+1), true, false},
		{"closed before its end", "hello", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			var got []byte
			var ok bool
			tee := NewTee(io.NopCloser(strings.NewReader(tt.body)), func(b []byte, o bool) { calls++; got, ok = b, o })
			if tt.read {
				var out bytes.Buffer
				if _, err := io.CopyBuffer(&out, tee, make([]byte, 1000)); err != nil || out.String() != tt.body {
					t.Fatalf("the real request read %d bytes (%v), want the body unchanged", out.Len(), err)
				}
			}
			tee.Close()
			if calls != 1 {
				t.Fatalf("done called %d times, want once", calls)
			}
			if ok != tt.wantOK || ok && string(got) != tt.body {
				t.Errorf("done(%d bytes, %v), want ok %v", len(got), ok, tt.wantOK)
			}
		})
	}
}

// BenchmarkPicked is the per-request cost of deciding a 50% mirror.
func BenchmarkPicked(b *testing.B) {
	t := Target{Service: "shadow.default", Share: weftv1.PerMillion / 2}
	b.ReportAllocs()
	for b.Loop() {
		t.Picked(rand.Uint32N)
	}
}

// BenchmarkCopy is the cost of one mirror copy of a request without body
// (header clone) and a slot.
func BenchmarkCopy(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "http://backend/a", nil)
	r.Header.Set("Accept", "*/*")
	r.Header.Set("User-Agent", "bench")
	l := NewLimiter(0)
	b.ReportAllocs()
	for b.Loop() {
		s := l.Acquire("shadow.default")
		Copy(r, nil)
		s.Release()
	}
}
