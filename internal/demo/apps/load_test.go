package apps

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunLoad(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		wantErr bool // want the summary to count errors rather than oks
	}{
		{name: "ok", status: 200},
		{name: "errors", status: 503, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			var buf syncBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := RunLoad(ctx, LoadConfig{URL: srv.URL, RPS: 100, Report: 100 * time.Millisecond}, slog.New(slog.NewTextHandler(&buf, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if n := hits.Load(); n < 10 || n > 60 {
				t.Errorf("%d requests in 500ms at 100 rps", n)
			}
			m := regexp.MustCompile(`msg="load summary" .*total_ok=(\d+) total_err=(\d+)`).FindAllStringSubmatch(buf.String(), -1)
			if len(m) < 2 {
				t.Fatalf("want several summary lines, log:\n%s", buf.String())
			}
			last := m[len(m)-1]
			okN, _ := strconv.Atoi(last[1])
			errN, _ := strconv.Atoi(last[2])
			if tt.wantErr != (errN > 0 && okN == 0) || (!tt.wantErr && okN == 0) {
				t.Errorf("totals ok=%d err=%d; log:\n%s", okN, errN, buf.String())
			}
		})
	}
}

func TestRunLoadBadConfig(t *testing.T) {
	for _, cfg := range []LoadConfig{{}, {URL: "http://x/", RPS: -1}, {URL: "::bad"}} {
		if err := RunLoad(context.Background(), cfg, discardLogger()); err == nil {
			t.Errorf("RunLoad(%+v) accepted bad config", cfg)
		}
	}
}
