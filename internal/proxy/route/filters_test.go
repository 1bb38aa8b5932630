package route

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// The Gateway API's table of ReplacePrefixMatch results.
func TestReplacePrefixMatch(t *testing.T) {
	tests := []struct{ path, prefix, repl, want string }{
		{"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo", "/xyz/", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
		{"/foo", "/foo", "/xyz", "/xyz"},
		{"/foo/", "/foo", "/xyz", "/xyz/"},
		{"/foo/bar", "/foo", "", "/bar"},
		{"/foo/", "/foo", "", "/"},
		{"/foo", "/foo", "", "/"},
		{"/foo/", "/foo", "/", "/"},
		{"/foo", "/foo", "/", "/"},
		{"/x/y", "/", "/p", "/p/x/y"},
	}
	for _, tt := range tests {
		f, err := compileFilters(nil, nil, nil, &weftv1.URLRewrite{Path: &weftv1.PathModifier{Kind: weftv1.PathModifier_PREFIX, Value: tt.repl, MatchedPrefix: tt.prefix}})
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Rewrite.Path.Apply(tt.path); got != tt.want {
			t.Errorf("%s with prefix %q -> %q: got %q, want %q", tt.path, tt.prefix, tt.repl, got, tt.want)
		}
	}
}

func TestRedirectLocation(t *testing.T) {
	tests := []struct {
		name   string
		rd     *weftv1.RequestRedirect
		target string
		host   string
		want   string
		status int
	}{
		{"defaults keep the request", &weftv1.RequestRedirect{}, "/a?q=1", "orders", "http://orders/a?q=1", 302},
		{"scheme https uses 443, omitted", &weftv1.RequestRedirect{Scheme: "https", StatusCode: 301}, "/a", "orders:8080", "https://orders/a", 301},
		{"request port kept without scheme", &weftv1.RequestRedirect{Hostname: "shop.example"}, "/a", "orders:8080", "http://shop.example:8080/a", 302},
		{"explicit port", &weftv1.RequestRedirect{Scheme: "https", Port: 8443}, "/a", "orders", "https://orders:8443/a", 302},
		{"port 80 on http omitted", &weftv1.RequestRedirect{Port: 80}, "/a", "orders:9000", "http://orders/a", 302},
		{"full path", &weftv1.RequestRedirect{Path: &weftv1.PathModifier{Kind: weftv1.PathModifier_FULL, Value: "/new"}, StatusCode: 308}, "/old/x?y=1", "orders", "http://orders/new?y=1", 308},
		{"prefix", &weftv1.RequestRedirect{Path: &weftv1.PathModifier{Kind: weftv1.PathModifier_PREFIX, Value: "/v2", MatchedPrefix: "/v1"}}, "/v1/items", "orders", "http://orders/v2/items", 302},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := compileFilters(nil, nil, tt.rd, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", tt.target, nil)
			r.Host = tt.host
			if got := f.Redirect.Location(r); got != tt.want {
				t.Errorf("Location = %q, want %q", got, tt.want)
			}
			if f.Redirect.Status != tt.status {
				t.Errorf("Status = %d, want %d", f.Redirect.Status, tt.status)
			}
		})
	}
}

func TestHeaderModifierAndRewrite(t *testing.T) {
	f, err := compileFilters(&weftv1.HeaderModifier{
		Set:    []*weftv1.HeaderValue{{Name: "x-set", Value: "s"}},
		Add:    []*weftv1.HeaderValue{{Name: "x-add", Value: "b"}},
		Remove: []string{"x-remove"},
	}, nil, nil, &weftv1.URLRewrite{Hostname: "inner", Path: &weftv1.PathModifier{Kind: weftv1.PathModifier_FULL, Value: "/p"}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/x%2Fy", nil)
	r.Header = http.Header{"X-Set": {"old", "older"}, "X-Add": {"a"}, "X-Remove": {"r"}, "X-Keep": {"k"}}
	f.ApplyRequest(r)
	want := http.Header{"X-Set": {"s"}, "X-Add": {"a", "b"}, "X-Keep": {"k"}}
	if len(r.Header) != len(want) || r.Header.Get("X-Set") != "s" || len(r.Header["X-Add"]) != 2 || r.Header.Get("X-Keep") != "k" {
		t.Errorf("headers = %v, want %v", r.Header, want)
	}
	if r.Host != "inner" || r.URL.Path != "/p" || r.URL.EscapedPath() != "/p" {
		t.Errorf("rewritten to %s %s (%s)", r.Host, r.URL.Path, r.URL.EscapedPath())
	}
	if _, err := compileFilters(nil, nil, &weftv1.RequestRedirect{}, &weftv1.URLRewrite{}); err == nil {
		t.Error("redirect with rewrite compiled")
	}
}
