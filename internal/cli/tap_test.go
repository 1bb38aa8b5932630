package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/proxy/observe"
	"weft.dev/weft/internal/proxy/tap"
)

// TestTapOutput taps a fake admin endpoint and compares both output
// formats with golden files (testdata/apiclient/tap.*.golden; -update
// rewrites them).
func TestTapOutput(t *testing.T) {
	events := []observe.Event{
		{Time: time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC), Side: "client", RequestID: "r1", Source: "web.default", Destination: "orders.default",
			Method: "GET", Path: "/api/orders", Status: 200, Duration: observe.Millis(1500 * time.Microsecond), Route: "default/orders/0",
			Decisions: []observe.Decision{{Stage: "route", Detail: "default/orders/0"}}},
		{Time: time.Date(2026, 12, 2, 5, 0, 1, 0, time.UTC), Side: "server", RequestID: "r2", Source: "web.default", Destination: "orders.default",
			Method: "POST", Path: "/Greeter/Hello", Status: 200, GRPCStatus: "12", Duration: observe.Millis(3 * time.Millisecond),
			Decisions: []observe.Decision{{Stage: "authz", Detail: "allow (default)"}},
			Bodies:    &observe.Bodies{Request: `{"user":"ann","password":"[REDACTED]"}`, Response: `{"ok":true}`}},
	}
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			hub := tap.NewHub(nil)
			srv := httptest.NewServer(hub)
			defer srv.Close()
			admin := strings.TrimPrefix(srv.URL, "http://")
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- runTap(ctx, &out, []string{admin}, url.Values{"bodies": {"true"}}, tapFlags{output: format, count: len(events)})
			}()
			for !hub.Active() {
				time.Sleep(time.Millisecond)
			}
			for i := range events {
				hub.Publish(&events[i])
			}
			if err := <-done; err != nil || ctx.Err() != nil {
				t.Fatalf("runTap: %v (context: %v)", err, ctx.Err())
			}
			apiTestGolden(t, "tap."+format+".golden", out.String())
		})
	}
}

// TestTapAdminErrors checks a refused or unreachable admin endpoint is a
// clear error.
func TestTapAdminErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "tap: only loopback clients may tap", http.StatusForbidden)
	}))
	defer srv.Close()
	err := runTap(context.Background(), &bytes.Buffer{}, []string{strings.TrimPrefix(srv.URL, "http://")}, url.Values{}, tapFlags{output: "json"})
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "only loopback") {
		t.Errorf("error %v, want the 403 and its reason", err)
	}
}
