package extauth

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

func TestApply(t *testing.T) {
	answer := http.Header{"X-Auth-User": {"alice"}, "X-Tenant": {"t1"}, "Content-Length": {"0"}, "Date": {"now"}, "Host": {"h"}, "X-Weft-Reason": {"r"}}
	tests := []struct {
		name    string
		allowed []string
		req     http.Header
		want    http.Header
	}{
		{"listed headers replace the caller's; missing ones are removed", []string{"x-auth-user", "x-role"},
			http.Header{"X-Auth-User": {"mallory"}, "X-Role": {"admin"}, "Accept": {"*/*"}},
			http.Header{"X-Auth-User": {"alice"}, "Accept": {"*/*"}}},
		{"no list copies all but message headers", nil,
			http.Header{"Accept": {"*/*"}},
			http.Header{"X-Auth-User": {"alice"}, "X-Tenant": {"t1"}, "Accept": {"*/*"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Compile(&weftv1.ExternalAuth{Service: "a", Namespace: "d", AllowedResponseHeaders: tt.allowed})
			a.Apply(tt.req, answer)
			if !reflect.DeepEqual(tt.req, tt.want) {
				t.Errorf("got %v, want %v", tt.req, tt.want)
			}
		})
	}
}

func TestCheckRequest(t *testing.T) {
	a := Compile(&weftv1.ExternalAuth{Service: "authz", Namespace: "d", Path: "/check/", AllowedHeaders: []string{"x-user"}})
	if a.Service != "authz.d" || a.Timeout != DefaultTimeout {
		t.Fatalf("compiled %+v", a)
	}
	r := httptest.NewRequest("PUT", "http://orders.shop/a/b?x=1", nil)
	r.Header.Set("Authorization", "Bearer t")
	r.Header.Set("X-User", "alice")
	r.Header.Set("Cookie", "secret")
	req := a.CheckRequest(context.Background(), r, nil)
	if req.Method != "PUT" || req.URL.Path != "/check/a/b" || req.URL.RawQuery != "x=1" || req.Host != "orders.shop" || req.ContentLength != 0 {
		t.Errorf("check %s %s?%s host %s length %d", req.Method, req.URL.Path, req.URL.RawQuery, req.Host, req.ContentLength)
	}
	want := http.Header{"Authorization": {"Bearer t"}, "X-User": {"alice"}}
	if !reflect.DeepEqual(req.Header, want) {
		t.Errorf("check headers %v, want %v", req.Header, want)
	}
}

func TestReadBody(t *testing.T) {
	tests := []struct {
		name    string
		max     uint32
		body    string
		chunked bool
		ok      bool
		sent    string
	}{
		{"no forwarding", 0, "abc", false, true, ""},
		{"within the limit", 4, "abcd", false, true, "abcd"},
		{"over the limit", 4, "abcde", false, false, ""},
		{"chunked over the limit", 4, "abcde", true, false, ""},
		{"chunked within", 8, "abcde", true, true, "abcde"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Compile(&weftv1.ExternalAuth{Service: "a", Namespace: "d", MaxBodyBytes: tt.max})
			r := httptest.NewRequest("POST", "http://x/", strings.NewReader(tt.body))
			if tt.chunked {
				r.ContentLength = -1
			}
			b, ok, err := a.ReadBody(r)
			if err != nil || ok != tt.ok || string(b) != tt.sent {
				t.Fatalf("ReadBody = %q, %v, %v; want %q, %v", b, ok, err, tt.sent, tt.ok)
			}
			if ok {
				rest, _ := io.ReadAll(r.Body)
				if string(rest) != tt.body {
					t.Errorf("the request's body is now %q, want %q", rest, tt.body)
				}
			}
		})
	}
}

// The proxy-side work of one check: building the check request and
// copying an allowing answer's header.
func BenchmarkCheck(b *testing.B) {
	a := Compile(&weftv1.ExternalAuth{Service: "authz", Namespace: "d", Path: "/check", AllowedHeaders: []string{"x-user"}, AllowedResponseHeaders: []string{"x-auth-user"}})
	r := httptest.NewRequest("GET", "http://orders/a?x=1", nil)
	r.Header.Set("X-User", "alice")
	answer := http.Header{"X-Auth-User": {"alice"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		a.CheckRequest(ctx, r, nil)
		a.Apply(r.Header, answer)
	}
}
