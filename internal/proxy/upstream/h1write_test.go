package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// TestWriteRequestMatchesRequestWrite writes requests with writeRequest and
// with req.Write and checks that a server reads the same request from both.
func TestWriteRequestMatchesRequestWrite(t *testing.T) {
	tests := []struct {
		name  string
		build func() *http.Request
		plain bool // written by writeRequest itself
	}{
		{"GET through the mesh", func() *http.Request {
			r := newReq(t, "GET", "https://127.0.0.1:15006/api/items?id=7&q=a%20b", "")
			r.Host = "orders.shop"
			r.Header.Set("Accept", "application/json")
			r.Header.Add("X-Multi", "a")
			r.Header.Add("X-Multi", " b\t")
			r.Header["User-Agent"] = []string{""}
			return r
		}, true},
		{"POST with a body", func() *http.Request {
			r := newReq(t, "POST", "http://127.0.0.1:8080/submit", "hello world")
			r.Header.Set("Content-Type", "text/plain")
			r.Header.Set("User-Agent", "curl/8")
			return r
		}, true},
		{"POST without a body gets Content-Length: 0", func() *http.Request {
			return newReq(t, "POST", "http://127.0.0.1:8080/empty", "")
		}, true},
		{"PUT without a body gets Content-Length: 0", func() *http.Request {
			return newReq(t, "PUT", "http://127.0.0.1:8080/x", "")
		}, true},
		{"large body", func() *http.Request {
			return newReq(t, "PUT", "http://127.0.0.1:8080/big", strings.Repeat("x", 10000))
		}, true},
		{"DELETE without a body", func() *http.Request {
			return newReq(t, "DELETE", "http://127.0.0.1:8080/x", "")
		}, true},
		{"default user agent", func() *http.Request {
			return newReq(t, "GET", "http://127.0.0.1:8080/", "")
		}, true},
		{"empty path", func() *http.Request {
			r := newReq(t, "GET", "http://127.0.0.1:8080", "")
			r.URL.Path = ""
			return r
		}, true},
		{"Close adds Connection: close", func() *http.Request {
			r := newReq(t, "GET", "http://127.0.0.1:8080/", "")
			r.Close = true
			return r
		}, true},
		{"header that net/http would clean", func() *http.Request {
			r := newReq(t, "GET", "http://127.0.0.1:8080/", "")
			r.Header["X-Bad"] = []string{"a\r\nInjected: 1"}
			return r
		}, false},
		{"host that net/http would clean", func() *http.Request {
			r := newReq(t, "GET", "http://127.0.0.1:8080/", "")
			r.Host = "a/b"
			return r
		}, false},
		{"trailers", func() *http.Request {
			r := newReq(t, "POST", "http://127.0.0.1:8080/", "x")
			r.Trailer = http.Header{"X-T": nil}
			return r
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := plainRequest(tt.build()); got != tt.plain {
				t.Fatalf("plainRequest = %v, want %v", got, tt.plain)
			}
			var mine, std bytes.Buffer
			bw := bufio.NewWriter(&mine)
			if err := writeRequest(bw, tt.build()); err != nil {
				t.Fatalf("writeRequest: %v", err)
			}
			bw.Flush()
			if err := tt.build().Write(&std); err != nil {
				t.Fatalf("req.Write: %v", err)
			}
			a, b := readBack(t, mine.Bytes()), readBack(t, std.Bytes())
			if !reflect.DeepEqual(a, b) {
				t.Errorf("server reads\n%+v\nfrom writeRequest, but\n%+v\nfrom req.Write\nraw:\n%s", a, b, mine.String())
			}
		})
	}
}

func TestWriteRequestShortBody(t *testing.T) {
	r := newReq(t, "POST", "http://127.0.0.1:8080/", "")
	r.Body, r.ContentLength = io.NopCloser(strings.NewReader("abc")), 10
	err := writeRequest(bufio.NewWriter(io.Discard), r)
	if err == nil || !strings.Contains(err.Error(), "ContentLength=10 with Body length 3") {
		t.Fatalf("writeRequest error = %v, want a length mismatch", err)
	}
}

func BenchmarkWriteRequest(b *testing.B) {
	r, _ := http.NewRequest("GET", "https://127.0.0.1:15006/api/items?id=7", nil)
	r.Host = "orders.shop"
	r.Header.Set("Accept", "application/json")
	r.Header.Set("X-Forwarded-Client-Cert", "By=spiffe://cluster.local/ns/shop/sa/orders;URI=spiffe://cluster.local/ns/shop/sa/web")
	r.Header["User-Agent"] = []string{""}
	bw := bufio.NewWriter(io.Discard)
	for _, impl := range []struct {
		name  string
		write func() error
	}{{"writeRequest", func() error { return writeRequest(bw, r) }}, {"req.Write", func() error { return r.Write(bw) }}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := impl.write(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type readRequest struct {
	Method, RequestURI, Host string
	Header                   http.Header
	ContentLength            int64
	Close                    bool
	Body                     string
}

func readBack(t *testing.T, raw []byte) readRequest {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("reading back %q: %v", raw, err)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return readRequest{r.Method, r.RequestURI, r.Host, r.Header, r.ContentLength, r.Close, string(body)}
}

func newReq(t *testing.T, method, rawURL, body string) *http.Request {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	r := &http.Request{Method: method, URL: u, Header: http.Header{}, Host: u.Host}
	if body != "" {
		r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
	}
	return r
}
