package inbound

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRewrite: the request to the app targets the app port and carries the
// proxy's own XFCC, replacing whatever the caller sent.
func TestRewrite(t *testing.T) {
	l := &Listener{appAddr: "127.0.0.1:8080"}
	in := httptest.NewRequest("GET", "/x", nil)
	in.Header.Set("X-Forwarded-Client-Cert", "URI=spiffe://evil/ns/x/sa/x")
	in = in.WithContext(context.WithValue(in.Context(), peerKey{}, &peerInfo{id: "spiffe://cluster.local/ns/default/sa/web", xfcc: "By=spiffe://cluster.local/ns/default/sa/api;URI=spiffe://cluster.local/ns/default/sa/web"}))
	out := *in
	l.rewriteRequest(&out)
	if in.URL.Host == "127.0.0.1:8080" {
		t.Error("the incoming request's URL was modified")
	}
	if out.URL.Host != "127.0.0.1:8080" || out.URL.Scheme != "http" {
		t.Errorf("URL = %s", out.URL)
	}
	if got := out.Header.Values("X-Forwarded-Client-Cert"); len(got) != 1 || got[0] != "By=spiffe://cluster.local/ns/default/sa/api;URI=spiffe://cluster.local/ns/default/sa/web" {
		t.Errorf("XFCC = %q", got)
	}
}

// BenchmarkHeaderRewrite guards the per-request header work of the
// inbound's HTTP/1.1 path.
func BenchmarkHeaderRewrite(b *testing.B) {
	l := &Listener{appAddr: "127.0.0.1:8080"}
	in := httptest.NewRequest("GET", "/x", nil)
	in = in.WithContext(context.WithValue(in.Context(), peerKey{}, &peerInfo{xfcc: "By=a;URI=b"}))
	b.ReportAllocs()
	for b.Loop() {
		in.Header = http.Header{"User-Agent": {"bench"}, "Accept": {"*/*"}, "X-Forwarded-Client-Cert": {"forged"}}
		out := *in
		l.rewriteRequest(&out)
	}
}
