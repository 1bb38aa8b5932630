package apps

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackend(t *testing.T) {
	const caller = "spiffe://weft.local/ns/default/sa/frontend"
	tests := []struct {
		name     string
		cfg      BackendConfig
		method   string // "" is GET
		path     string
		xfcc     string
		wantCode int
		want     *BackendReply
		minDelay time.Duration
	}{
		{name: "ok", cfg: BackendConfig{Version: "v2"}, path: "/", xfcc: "By=x;URI=" + caller, wantCode: 200,
			want: &BackendReply{Service: "backend", Version: "v2", PID: os.Getpid(), Caller: caller}},
		{name: "no caller", path: "/", wantCode: 200,
			want: &BackendReply{Service: "backend", Version: "v1", PID: os.Getpid()}},
		{name: "fail rate 1", cfg: BackendConfig{FailRate: 1, Service: "orders"}, path: "/", wantCode: 503,
			want: &BackendReply{Service: "orders", Version: "v1", PID: os.Getpid(), Error: "injected failure"}},
		{name: "slow rate 1", cfg: BackendConfig{SlowRate: 1, Slow: 50 * time.Millisecond}, path: "/", wantCode: 200, minDelay: 50 * time.Millisecond,
			want: &BackendReply{Service: "backend", Version: "v1", PID: os.Getpid()}},
		{name: "healthz ignores fail rate", cfg: BackendConfig{FailRate: 1}, path: "/healthz", wantCode: 200},
		{name: "unknown path", path: "/nope", wantCode: 404},
		{name: "post", method: http.MethodPost, path: "/", wantCode: 200,
			want: &BackendReply{Service: "backend", Version: "v1", PID: os.Getpid()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if err := cfg.setDefaults(); err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(newBackendHandler(cfg))
			defer srv.Close()
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, srv.URL+tt.path, nil)
			if tt.xfcc != "" {
				req.Header.Set(XFCCHeader, tt.xfcc)
			}
			start := time.Now()
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if time.Since(start) < tt.minDelay {
				t.Errorf("answered in %v, want >= %v", time.Since(start), tt.minDelay)
			}
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if tt.want == nil {
				return
			}
			var got BackendReply
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(*tt.want, got); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackendFailRateIsSeeded(t *testing.T) {
	count := func() int {
		cfg := BackendConfig{FailRate: 0.5, Seed: 42}
		if err := cfg.setDefaults(); err != nil {
			t.Fatal(err)
		}
		h := newBackendHandler(cfg)
		fails := 0
		for range 200 {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if rec.Code == 503 {
				fails++
			}
		}
		return fails
	}
	a, b := count(), count()
	if a != b {
		t.Errorf("same seed gave %d and %d failures", a, b)
	}
	if a < 60 || a > 140 {
		t.Errorf("%d/200 failures at rate 0.5", a)
	}
}

func TestBackendConfigErrors(t *testing.T) {
	for _, cfg := range []BackendConfig{{FailRate: 1.5}, {SlowRate: -0.1}} {
		if err := RunBackend(context.Background(), cfg, discardLogger()); err == nil {
			t.Errorf("RunBackend(%+v) accepted bad config", cfg)
		}
	}
}

func TestRunBackend(t *testing.T) {
	lis := loopback(t)
	stop := runApp(t, func(ctx context.Context) error {
		return RunBackend(ctx, BackendConfig{Listener: lis}, discardLogger())
	})
	resp, err := http.Get("http://" + lis.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	stop()
	if _, err := http.Get("http://" + lis.Addr().String() + "/"); err == nil {
		t.Error("still serving after ctx ended")
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestBackendEcho(t *testing.T) {
	cfg := BackendConfig{}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newBackendHandler(cfg))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/echo/a/b?x=1", nil)
	req.Host = "orders.shop"
	req.Header.Set("X-Env", "prod")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got EchoReply
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Method != "PUT" || got.Host != "orders.shop" || got.Path != "/echo/a/b" || got.Query != "x=1" || got.Header["X-Env"][0] != "prod" {
		t.Errorf("echo = %+v", got)
	}
}

// TestBackendFailRateFile: a fraction in the fail rate file replaces the
// configured rate within a second; 0 (or no file) gives it back.
func TestBackendFailRateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backend")
	h := newBackendHandler(BackendConfig{Service: "backend", Version: "v1", FailRate: 0, FailRateFile: path, Seed: 7})
	fails := func() int {
		n := 0
		for range 200 {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if rec.Code == http.StatusServiceUnavailable {
				n++
			}
		}
		return n
	}
	tests := []struct {
		content  string
		min, max int
	}{
		{"", 0, 0}, // no file
		{"0.5\n", 60, 140},
		{"0\n", 0, 0},
		{"not a number", 0, 0},
		{"1", 200, 200},
	}
	for _, tt := range tests {
		if tt.content != "" {
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var got int
		eventually := time.Now().Add(3 * time.Second)
		for got = fails(); (got < tt.min || got > tt.max) && time.Now().Before(eventually); got = fails() {
			time.Sleep(100 * time.Millisecond)
		}
		if got < tt.min || got > tt.max {
			t.Errorf("file %q: %d/200 failures, want %d..%d", tt.content, got, tt.min, tt.max)
		}
	}
}
