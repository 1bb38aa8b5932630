package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// optionsServed is how many OPTIONS requests the backend's inbound proxy
// has answered (what reached the backend app).
func optionsServed(t *testing.T, w *workload) float64 {
	t.Helper()
	ms, err := w.metrics()
	if err != nil {
		t.Fatal(err)
	}
	return sum(ms, "http_server_request_duration_seconds_count", map[string]string{"destination_service": destService("backend"), "http_request_method": "OPTIONS"})
}

// corsCase is a request of TestCORS and the response headers it must get
// ("" = absent).
type corsCase struct {
	name   string
	method string
	hdr    []string
	code   int
	want   map[string]string
}

// TestCORS applies the CORS page's example verbatim. 100 preflights each
// from an allowed origin (exact and by wildcard) get 204 with the
// configured Access-Control-* headers, 100 from another origin get 204
// without any, and none of them reaches the backend (its inbound proxy
// counts zero OPTIONS, while an OPTIONS that is not a preflight does reach
// it, proving the count works); actual GETs from an allowed origin get
// Access-Control-Allow-Origin and -Expose-Headers, from another origin none.
func TestCORS(t *testing.T) {
	c := startControl(t)
	bp := freePort(t)
	backend := startWorkload(t, c, wlOpts{service: "backend", appPort: bp, cmd: backendCmd(bp, "v1"), waitApp: true})
	client := startClient(t, c, "client")
	c.apply(docYAML(t, "traffic/cors.md", docExample("cors-route")))

	preflight := func(origin string) []string {
		return []string{"Origin", origin, "Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "x-request-id"}
	}
	eventually(t, 10*time.Second, 50*time.Millisecond, "the CORS filter answers preflights", func() error {
		r, err := client.do(http.MethodOptions, "http://backend/", preflight("https://app.example.com")...)
		if err != nil {
			return err
		}
		if r.code != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") == "" {
			return fmt.Errorf("preflight: %d %v", r.code, r.header)
		}
		return nil
	})
	before := optionsServed(t, backend)

	allowedPreflight := map[string]string{
		"Access-Control-Allow-Methods":     "GET, PUT, DELETE",
		"Access-Control-Allow-Headers":     "x-request-id, content-type",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Max-Age":           "600",
	}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	none := map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": "", "Access-Control-Allow-Headers": "",
		"Access-Control-Allow-Credentials": "", "Access-Control-Max-Age": "", "Access-Control-Expose-Headers": ""}
	cases := []corsCase{
		{"preflight, exact origin", http.MethodOptions, preflight("https://app.example.com"), http.StatusNoContent,
			with(allowedPreflight, "Access-Control-Allow-Origin", "https://app.example.com")},
		{"preflight, wildcard origin", http.MethodOptions, preflight("https://eu.shop.example.org"), http.StatusNoContent,
			with(allowedPreflight, "Access-Control-Allow-Origin", "https://eu.shop.example.org")},
		{"preflight, other origin", http.MethodOptions, preflight("https://evil.example.net"), http.StatusNoContent, none},
		{"preflight, wildcard needs a subdomain", http.MethodOptions, preflight("https://example.org"), http.StatusNoContent, none},
		{"actual, allowed origin", http.MethodGet, []string{"Origin", "https://app.example.com"}, http.StatusOK,
			map[string]string{"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Credentials": "true", "Access-Control-Expose-Headers": "x-trace-id"}},
		{"actual, other origin", http.MethodGet, []string{"Origin", "https://evil.example.net"}, http.StatusOK, none},
		{"actual, no origin", http.MethodGet, nil, http.StatusOK, none},
	}
	const n = 100
	preflights := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := 0
			var first string
			for range n {
				r, err := client.do(tc.method, "http://backend/", tc.hdr...)
				if err != nil {
					t.Fatal(err)
				}
				ok := r.code == tc.code
				for k, v := range tc.want {
					ok = ok && r.header.Get(k) == v
				}
				if !ok {
					bad++
					if first == "" {
						first = fmt.Sprintf("%d %v", r.code, r.header)
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d requests got the wrong answer, first: %s", bad, n, first)
			}
		})
		if tc.method == http.MethodOptions {
			preflights += n
		}
	}
	if got := optionsServed(t, backend) - before; got != 0 {
		t.Errorf("the backend received %v of %d preflight requests, want 0", got, preflights)
	}
	// An OPTIONS that is not a preflight (no Access-Control-Request-Method)
	// is an actual request: it reaches the backend, which shows the count
	// above would have seen forwarded preflights.
	if _, err := client.do(http.MethodOptions, "http://backend/", "Origin", "https://app.example.com"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, 50*time.Millisecond, "a plain OPTIONS reaches the backend", func() error {
		if got := optionsServed(t, backend) - before; got != 1 {
			return fmt.Errorf("backend received %v OPTIONS, want 1", got)
		}
		return nil
	})
}
