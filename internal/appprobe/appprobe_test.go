package appprobe

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
		want              Probes
	}{
		{name: "empty", in: "", want: Probes{}},
		{name: "valid", in: `{"app/liveness":{"port":8080,"path":"/h","httpHeaders":[{"name":"A","value":"b"}]}}`,
			want: Probes{"app/liveness": {Port: 8080, Path: "/h", Headers: []Header{{Name: "A", Value: "b"}}}}},
		{name: "not json", in: `{`, wantErr: "app probes: unexpected end"},
		{name: "bad key", in: `{"app":{"port":1}}`, wantErr: `"app" is not <container>/liveness|readiness|startup`},
		{name: "bad kind", in: `{"app/health":{"port":1}}`, wantErr: `"app/health" is not`},
		{name: "bad port", in: `{"app/liveness":{"port":0}}`, wantErr: `"app/liveness": port 0 is not a port`},
		{name: "bad scheme", in: `{"app/liveness":{"port":1,"scheme":"FTP"}}`, wantErr: `scheme "FTP" is not HTTP or HTTPS`},
		{name: "relative path", in: `{"app/liveness":{"port":1,"path":"h"}}`, wantErr: `path "h" does not start with /`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz" && r.URL.RawQuery == "full=1" && r.Header.Get("X-Probe") == "1":
			w.WriteHeader(http.StatusNoContent)
		case r.URL.Path == "/sick":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer app.Close()
	tlsApp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer tlsApp.Close()
	port := func(s *httptest.Server) int32 {
		_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
		n, _ := strconv.Atoi(p)
		return int32(n)
	}
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := int32(closed.Addr().(*net.TCPAddr).Port)
	closed.Close()

	probes := Probes{
		"app/liveness":   {Port: port(app), Path: "/healthz?full=1", Headers: []Header{{Name: "X-Probe", Value: "1"}}},
		"app/readiness":  {Port: port(app), Path: "/sick"},
		"app/startup":    {Port: port(tlsApp), Scheme: "HTTPS"},
		"down/liveness":  {Port: closedPort, Path: "/"},
		"teapot/startup": {Port: port(app)},
	}
	var notReady error
	srv := httptest.NewServer(Handler(func() error { return notReady }, probes))
	defer srv.Close()
	tests := []struct {
		path string
		code int
	}{
		{"/ready", http.StatusOK},
		{"/app-health/app/liveness", http.StatusNoContent},
		{"/app-health/app/readiness", http.StatusInternalServerError},
		{"/app-health/app/startup", http.StatusOK},
		{"/app-health/down/liveness", http.StatusBadGateway},
		{"/app-health/teapot/startup", http.StatusTeapot},
		{"/app-health/nope/liveness", http.StatusNotFound},
		{"/app-health/../../etc/passwd", http.StatusNotFound},
		{"/metrics", http.StatusNotFound},
		{"/debug/pprof/", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.code)
			}
		})
	}
	notReady = errors.New("no certificate yet")
	resp, err := http.Get(srv.URL + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/ready when not ready: %d, want 503", resp.StatusCode)
	}
}
