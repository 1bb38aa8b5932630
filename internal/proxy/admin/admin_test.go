package admin

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAdmin(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	var readyErr error
	h := New(reg, func() error { return readyErr }, func() any { return map[string]string{"version": "v1"} }, func() any { return map[string]bool{"connected": false} }, nil)

	for _, tc := range []struct {
		name       string
		path       string
		notReady   error
		wantStatus int
		wantBody   string
	}{
		{"index", "/", nil, 200, "/metrics       Prometheus metrics"},
		{"ready", "/ready", nil, 200, "ready\n"},
		{"not ready", "/ready", errors.New("no config yet"), 503, "not ready: no config yet\n"},
		{"metrics", "/metrics", nil, 200, "weft_test_total 1"},
		{"config dump", "/config_dump", nil, 200, "{\n  \"version\": \"v1\"\n}\n"},
		{"xds state", "/xds", nil, 200, "{\n  \"connected\": false\n}\n"},
		{"unknown", "/nope", nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			readyErr = tc.notReady
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
			body, _ := io.ReadAll(rec.Result().Body)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if !strings.Contains(string(body), tc.wantBody) {
				t.Fatalf("body = %q, want it to contain %q", body, tc.wantBody)
			}
		})
	}
}

var _ http.Handler = New(prometheus.NewRegistry(), nil, nil, nil, nil)
