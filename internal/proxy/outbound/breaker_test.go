package outbound

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"weft.dev/weft/internal/proxy/adaptive"
	"weft.dev/weft/internal/proxy/breaker"
	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

func admitConfig(b *breaker.Limits, a *adaptive.Config) *config.Config {
	cfg := config.Empty()
	cfg.Services["web.default"] = &config.Service{Key: "web.default", Name: "web", Namespace: "default", Breaker: b, Adaptive: a}
	return cfg
}

// TestAdmitAnswers checks what a refused request gets from admit: 503 with
// the reason header, for each stage.
func TestAdmitAnswers(t *testing.T) {
	tests := []struct {
		name   string
		cfg    *config.Config
		held   int
		reason string // "" admitted
	}{
		{"no limits", admitConfig(nil, nil), 50, ""},
		{"concurrent", admitConfig(&breaker.Limits{MaxConcurrentRequests: 2}, nil), 2, breaker.ReasonMaxConcurrentRequests},
		{"adaptive", admitConfig(nil, &adaptive.Config{UpdateInterval: time.Second, MinRTTInterval: time.Hour, MinLimit: 3, MaxLimit: 3, InitialLimit: 3, LatencyBuffer: 0.25}), 3, reasonAdaptive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Listener{}
			r := httptest.NewRequest(http.MethodGet, "http://web/", nil)
			var held []admitted
			for range tt.held {
				_, a, ok := l.admit(r.Context(), httptest.NewRecorder(), r, tt.cfg, "web.default")
				if !ok {
					t.Fatal("refused under the limit")
				}
				held = append(held, a)
			}
			rec := httptest.NewRecorder()
			_, a, ok := l.admit(r.Context(), rec, r, tt.cfg, "web.default")
			if tt.reason == "" {
				if !ok {
					t.Fatalf("refused: %d %s", rec.Code, rec.Body)
				}
				a.Done()
			} else if ok || rec.Code != http.StatusServiceUnavailable || rec.Header().Get(ReasonHeader) != tt.reason {
				t.Fatalf("admitted %v, answer %d, reason %q; want 503 %q", ok, rec.Code, rec.Header().Get(ReasonHeader), tt.reason)
			}
			for _, h := range held {
				h.Done()
			}
			if _, a, ok := l.admit(r.Context(), httptest.NewRecorder(), r, tt.cfg, "web.default"); !ok {
				t.Error("refused after the others ended")
			} else {
				a.Done()
			}
		})
	}
}

// BenchmarkAdmit measures the breaker and adaptive stages on the request
// path: a destination without limits (every destination by default), with
// a concurrency limit, and with adaptive concurrency.
func BenchmarkAdmit(b *testing.B) {
	for _, bm := range []struct {
		name string
		cfg  *config.Config
	}{
		{"unconfigured", admitConfig(nil, nil)},
		{"breaker", admitConfig(&breaker.Limits{MaxConcurrentRequests: 1 << 20, MaxConnections: 100}, nil)},
		{"adaptive", admitConfig(nil, &adaptive.Config{UpdateInterval: 100 * time.Millisecond, MinRTTInterval: time.Hour, MinLimit: 1 << 20, MaxLimit: 1 << 20, InitialLimit: 1 << 20, LatencyBuffer: 0.25})},
	} {
		b.Run(bm.name, func(b *testing.B) {
			l := &Listener{}
			r := httptest.NewRequest(http.MethodGet, "http://web/", nil)
			ctx := r.Context()
			b.ReportAllocs()
			for b.Loop() {
				_, a, ok := l.admit(ctx, nil, r, bm.cfg, "web.default")
				if !ok {
					b.Fatal("refused")
				}
				a.Done()
			}
		})
	}
}

// TestMaxConnectionsInMesh runs the connection gate end to end in process:
// a service with two endpoints and maxConnections 1. Over HTTP/1.1, with
// one request holding the only connection, the next request (to the other
// endpoint) is answered 503 max-connections and counted; over HTTP/2 the
// one connection carries every request to its endpoint and requests to the
// other endpoint are refused the same way.
func TestMaxConnectionsInMesh(t *testing.T) {
	m := newMesh(t)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	app := startApp(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			arrived <- struct{}{}
			<-release
		}
		w.Write([]byte("ok"))
	}))
	for _, name := range []string{"orders", "pay"} {
		s := svc(name)
		s.ConnectionLimits = &weftv1.ConnectionLimits{MaxConnections: 1}
		m.addService(s)
		m.addWorkload(t, name, app)
		m.addWorkload(t, name, app)
	}
	m.commit(t)
	m.startOutbound(t, nil)

	t.Run("http1", func(t *testing.T) {
		held := make(chan int, 1)
		go func() {
			code, _, _ := m.get(t, "http://orders/hold")
			held <- code
		}()
		<-arrived
		// The held request has the only connection: every other request
		// needs a new one.
		code, body, h := m.get(t, "http://orders/")
		reason := h.Get(ReasonHeader)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "max-connections limit reached (1)") {
			t.Errorf("second request: %d %q", code, body)
		}
		close(release)
		if reason != breaker.ReasonMaxConnections {
			t.Fatalf("no request refused with %s (got %q)", breaker.ReasonMaxConnections, reason)
		}
		if code := <-held; code != http.StatusOK {
			t.Errorf("held request: %d", code)
		}
	})

	t.Run("http2", func(t *testing.T) {
		tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", m.proxyURL.Host)
		}}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		counts := map[string]int{}
		for range 20 {
			resp, err := c.Get("http://pay/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			counts[strconv.Itoa(resp.StatusCode)+resp.Header.Get(ReasonHeader)]++
		}
		if counts["200"] < 5 || counts["503"+breaker.ReasonMaxConnections] < 5 || len(counts) != 2 {
			t.Errorf("outcomes %v: want about half 200 (one endpoint's connection) and half 503 max-connections", counts)
		}
	})

	var rejected float64
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "weft_proxy_breaker_rejections_total" {
			for _, s := range mf.GetMetric() {
				rejected += s.GetCounter().GetValue()
			}
		}
	}
	if rejected < 6 {
		t.Errorf("weft_proxy_breaker_rejections_total = %v, want every refusal counted", rejected)
	}
}

// TestAdmitAnswersGRPC checks that a refused gRPC call gets UNAVAILABLE
// (a trailers-only response) with the reason header.
func TestAdmitAnswersGRPC(t *testing.T) {
	cfg := admitConfig(&breaker.Limits{MaxConcurrentRequests: 1}, nil)
	l := &Listener{}
	r := httptest.NewRequest(http.MethodPost, "http://web/pkg.Svc/Method", nil)
	r.ProtoMajor, r.Proto = 2, "HTTP/2.0"
	r.Header.Set("Content-Type", "application/grpc")
	_, held, ok := l.admit(r.Context(), httptest.NewRecorder(), r, cfg, "web.default")
	if !ok {
		t.Fatal("first call refused")
	}
	defer held.Done()
	rec := httptest.NewRecorder()
	if _, _, ok := l.admit(r.Context(), rec, r, cfg, "web.default"); ok {
		t.Fatal("second call admitted")
	}
	if rec.Code != http.StatusOK || rec.Header().Get("Grpc-Status") != "14" || rec.Header().Get(ReasonHeader) != breaker.ReasonMaxConcurrentRequests {
		t.Errorf("answer %d grpc-status %q reason %q; want 200, 14 (UNAVAILABLE), %s", rec.Code, rec.Header().Get("Grpc-Status"), rec.Header().Get(ReasonHeader), breaker.ReasonMaxConcurrentRequests)
	}
}
