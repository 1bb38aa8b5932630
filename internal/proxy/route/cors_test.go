package route

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

func TestCORSOrigins(t *testing.T) {
	c := compileCORS(&weftv1.CORSPolicy{AllowOrigins: []string{"https://app.example.com", "https://*.example.org", "http://local.test:8080", "http://*"}})
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://app.example.com", true},
		{"https://APP.example.com", true},
		{"https://app.example.com:443", true},
		{"https://app.example.com:8443", false},
		{"http://app.example.com", true}, // by "http://*"
		{"http://app.example.com:8080", false},
		{"https://evil.example.com", false},
		{"https://app.example.com.evil", false},
		{"https://a.example.org", true},
		{"https://a.b.example.org", true},
		{"https://example.org", false},
		{"https://xexample.org", false},
		{"http://local.test:8080", true},
		{"http://local.test", true}, // "http://*" allows any host on port 80
		{"http://anything.at.all", true},
		{"http://anything:81", false},
		{"null", false},
		{"", false},
		{"https://", false},
	}
	for _, tt := range tests {
		if got := c.Allowed(tt.origin); got != tt.want {
			t.Errorf("Allowed(%q) = %v, want %v", tt.origin, got, tt.want)
		}
	}
	if !compileCORS(&weftv1.CORSPolicy{AllowOrigins: []string{"*"}}).Allowed("https://x.y") {
		t.Error(`"*" does not allow every origin`)
	}
}

func TestCORSPreflight(t *testing.T) {
	tests := []struct {
		name   string
		policy *weftv1.CORSPolicy
		hdr    map[string]string
		method string
		// handled: answered as a preflight; want: response headers ("" =
		// absent).
		handled bool
		want    map[string]string
	}{
		{
			name:    "allowed origin",
			policy:  &weftv1.CORSPolicy{AllowOrigins: []string{"https://a.example"}, AllowMethods: []string{"GET", "PUT"}, AllowHeaders: []string{"x-a", "x-b"}, MaxAgeSeconds: 60},
			method:  "OPTIONS",
			hdr:     map[string]string{"Origin": "https://a.example", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-a"},
			handled: true,
			want: map[string]string{hdrAllowOrigin: "https://a.example", hdrAllowMethods: "GET, PUT", hdrAllowHeaders: "x-a, x-b",
				hdrMaxAge: "60", hdrAllowCredentials: "", hdrVary: "Origin"},
		},
		{
			name:    "disallowed origin gets no CORS headers",
			policy:  &weftv1.CORSPolicy{AllowOrigins: []string{"https://a.example"}, AllowMethods: []string{"GET"}},
			method:  "OPTIONS",
			hdr:     map[string]string{"Origin": "https://b.example", "Access-Control-Request-Method": "GET"},
			handled: true,
			want:    map[string]string{hdrAllowOrigin: "", hdrAllowMethods: "", hdrMaxAge: ""},
		},
		{
			name:    "wildcards without credentials",
			policy:  &weftv1.CORSPolicy{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}},
			method:  "OPTIONS",
			hdr:     map[string]string{"Origin": "https://b.example", "Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "x-q"},
			handled: true,
			want:    map[string]string{hdrAllowOrigin: "*", hdrAllowMethods: "*", hdrAllowHeaders: "*", hdrMaxAge: "5"},
		},
		{
			name:    "wildcards with credentials echo the request",
			policy:  &weftv1.CORSPolicy{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}, AllowCredentials: true},
			method:  "OPTIONS",
			hdr:     map[string]string{"Origin": "https://b.example", "Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "x-q, x-r"},
			handled: true,
			want:    map[string]string{hdrAllowOrigin: "https://b.example", hdrAllowMethods: "DELETE", hdrAllowHeaders: "x-q, x-r", hdrAllowCredentials: "true"},
		},
		{
			name:    "no request headers: no allow-headers",
			policy:  &weftv1.CORSPolicy{AllowOrigins: []string{"*"}, AllowHeaders: []string{"x-a"}},
			method:  "OPTIONS",
			hdr:     map[string]string{"Origin": "https://b.example", "Access-Control-Request-Method": "GET"},
			handled: true,
			want:    map[string]string{hdrAllowOrigin: "*", hdrAllowHeaders: ""},
		},
		{
			name:    "OPTIONS without Access-Control-Request-Method is not a preflight",
			policy:  &weftv1.CORSPolicy{AllowOrigins: []string{"*"}},
			method:  "OPTIONS",
			hdr:     map[string]string{"Origin": "https://b.example"},
			handled: false,
		},
		{
			name:    "GET is not a preflight",
			policy:  &weftv1.CORSPolicy{AllowOrigins: []string{"*"}},
			method:  "GET",
			hdr:     map[string]string{"Origin": "https://b.example", "Access-Control-Request-Method": "GET"},
			handled: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := compileCORS(tt.policy)
			r := httptest.NewRequest(tt.method, "http://svc/x", nil)
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			if got := c.Preflight(w, r); got != tt.handled {
				t.Fatalf("Preflight = %v, want %v", got, tt.handled)
			}
			if !tt.handled {
				if len(w.Header()) != 0 {
					t.Errorf("headers set on a request not answered: %v", w.Header())
				}
				return
			}
			if w.Code != http.StatusNoContent {
				t.Errorf("status %d, want 204", w.Code)
			}
			for k, want := range tt.want {
				if got := w.Header().Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestCORSActual(t *testing.T) {
	tests := []struct {
		name       string
		policy     *weftv1.CORSPolicy
		origin     string
		wantOrigin string
		want       map[string]string
	}{
		{"allowed", &weftv1.CORSPolicy{AllowOrigins: []string{"https://a.example"}, ExposeHeaders: []string{"x-id"}, AllowCredentials: true}, "https://a.example", "https://a.example",
			map[string]string{hdrAllowOrigin: "https://a.example", hdrAllowCredentials: "true", hdrExposeHeaders: "x-id", hdrVary: "Origin"}},
		{"any origin", &weftv1.CORSPolicy{AllowOrigins: []string{"*"}, ExposeHeaders: []string{"*"}}, "https://b.example", "https://b.example",
			map[string]string{hdrAllowOrigin: "*", hdrExposeHeaders: "*", hdrVary: ""}},
		{"expose * with credentials is not sent", &weftv1.CORSPolicy{AllowOrigins: []string{"*"}, ExposeHeaders: []string{"*"}, AllowCredentials: true}, "https://b.example", "https://b.example",
			map[string]string{hdrAllowOrigin: "https://b.example", hdrExposeHeaders: ""}},
		{"disallowed", &weftv1.CORSPolicy{AllowOrigins: []string{"https://a.example"}}, "https://b.example", "", nil},
		{"no origin", &weftv1.CORSPolicy{AllowOrigins: []string{"*"}}, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := compileCORS(tt.policy)
			r := httptest.NewRequest("GET", "http://svc/x", nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			got := c.ActualOrigin(r)
			if got != tt.wantOrigin {
				t.Fatalf("ActualOrigin = %q, want %q", got, tt.wantOrigin)
			}
			if got == "" {
				return
			}
			h := http.Header{hdrAllowOrigin: {"https://from-backend"}}
			c.ApplyResponse(h, got)
			for k, want := range tt.want {
				if g := h.Get(k); g != want {
					t.Errorf("%s: %q, want %q", k, g, want)
				}
			}
		})
	}
}

// A request without Origin on a route with a CORS filter.
func BenchmarkCORSNoOrigin(b *testing.B) {
	c := compileCORS(&weftv1.CORSPolicy{AllowOrigins: []string{"https://a.example", "https://*.example.org"}, AllowMethods: []string{"GET"}})
	r := httptest.NewRequest("GET", "http://svc/x", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		if c.Preflight(w, r) || c.ActualOrigin(r) != "" {
			b.Fatal("answered")
		}
	}
}

// An actual request from an allowed origin matched by a wildcard.
func BenchmarkCORSAllowedOrigin(b *testing.B) {
	c := compileCORS(&weftv1.CORSPolicy{AllowOrigins: []string{"https://a.example", "https://*.example.org"}, AllowMethods: []string{"GET"}})
	r := httptest.NewRequest("GET", "http://svc/x", nil)
	r.Header.Set("Origin", "https://app.example.org")
	b.ReportAllocs()
	for b.Loop() {
		if c.ActualOrigin(r) == "" {
			b.Fatal("refused")
		}
	}
}
