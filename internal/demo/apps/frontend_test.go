package apps

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestFrontend(t *testing.T) {
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("HTTPS_PROXY", "")
	greeterAddr := startGreeter(t, GreeterConfig{})
	pid := os.Getpid()

	okBackend := httptest.NewServer(newBackendHandler(BackendConfig{Service: "backend", Version: "v1", Seed: 1, Slow: 1}))
	defer okBackend.Close()
	failBackend := httptest.NewServer(newBackendHandler(BackendConfig{Service: "backend", Version: "v1", FailRate: 1, Seed: 1, Slow: 1}))
	defer failBackend.Close()
	deadBackend := httptest.NewServer(http.NotFoundHandler())
	deadURL := deadBackend.URL + "/"
	deadBackend.Close()

	tests := []struct {
		name           string
		backend        string
		greeter        string
		wantCode       int
		wantBackendErr string
		failRate       float64
		want           FrontendReply
	}{
		{
			name: "ok", backend: okBackend.URL + "/", greeter: greeterAddr, wantCode: 200,
			want: FrontendReply{Service: "frontend", Version: "v1", PID: pid,
				Backend: BackendResult{URL: okBackend.URL + "/", Status: 200, Reply: &BackendReply{Service: "backend", Version: "v1", PID: pid}},
				Greeter: GreeterResult{Target: greeterAddr, Code: "OK", Message: "hello frontend", Server: fmt.Sprintf("greeter/v1/%d", pid)}},
		},
		{
			name: "backend 503", backend: failBackend.URL + "/", greeter: greeterAddr, wantCode: 502, wantBackendErr: "backend answered 503",
			want: FrontendReply{Service: "frontend", Version: "v1", PID: pid,
				Backend: BackendResult{URL: failBackend.URL + "/", Status: 503, Reply: &BackendReply{Service: "backend", Version: "v1", PID: pid, Error: "injected failure"}},
				Greeter: GreeterResult{Target: greeterAddr, Code: "OK", Message: "hello frontend", Server: fmt.Sprintf("greeter/v1/%d", pid)}},
		},
		{
			name: "frontend broken (weft demo --break frontend): 500 without calling anything", backend: okBackend.URL + "/", greeter: greeterAddr,
			failRate: 1, wantCode: 500, wantBackendErr: "injected failure",
			want: FrontendReply{Service: "frontend", Version: "v1", PID: pid},
		},
		{
			name: "backend down", backend: deadURL, greeter: greeterAddr, wantCode: 502, wantBackendErr: "calling backend",
			want: FrontendReply{Service: "frontend", Version: "v1", PID: pid,
				Backend: BackendResult{URL: deadURL},
				Greeter: GreeterResult{Target: greeterAddr, Code: "OK", Message: "hello frontend", Server: fmt.Sprintf("greeter/v1/%d", pid)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lis := loopback(t)
			stop := runApp(t, func(ctx context.Context) error {
				return RunFrontend(ctx, FrontendConfig{Listener: lis, Backend: tt.backend, Greeter: tt.greeter, FailRate: tt.failRate}, discardLogger())
			})
			defer stop()
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodGet, "http://"+lis.Addr().String()+"/", nil)
			req.Header.Set(XFCCHeader, "URI=spiffe://weft.local/ns/default/sa/load")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantCode)
			}
			var got FrontendReply
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got.Backend.Error, tt.wantBackendErr) || (tt.wantBackendErr == "") != (got.Backend.Error == "") {
				t.Errorf("backend error = %q, want containing %q", got.Backend.Error, tt.wantBackendErr)
			}
			tt.want.Caller = "spiffe://weft.local/ns/default/sa/load"
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(BackendResult{}, "Error")); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFrontendGreeterDown(t *testing.T) {
	backend := httptest.NewServer(newBackendHandler(BackendConfig{Service: "backend", Version: "v1", Seed: 1, Slow: 1}))
	defer backend.Close()
	dead := loopback(t)
	deadAddr := dead.Addr().String()
	dead.Close()
	lis := loopback(t)
	runApp(t, func(ctx context.Context) error {
		return RunFrontend(ctx, FrontendConfig{Listener: lis, Backend: backend.URL, Greeter: deadAddr}, discardLogger())
	})
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + lis.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got FrontendReply
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || got.Greeter.Code != "Unavailable" || got.Greeter.Error == "" {
		t.Errorf("status %d greeter %+v: want 200 with greeter Unavailable", resp.StatusCode, got.Greeter)
	}
}
