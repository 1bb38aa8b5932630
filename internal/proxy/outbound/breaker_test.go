package outbound

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"weft.dev/weft/internal/proxy/adaptive"
	"weft.dev/weft/internal/proxy/breaker"
	"weft.dev/weft/internal/proxy/config"
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
