// Package extauth is the external authorization stage of the proxy's
// request path (the HTTPRoute ExternalAuth filter): before a request is
// forwarded, the proxy sends a check to an auth service of the mesh — an
// HTTP request (protocol HTTP) or an Envoy ext_authz Authorization/Check
// call (protocol GRPC, grpc.go) — and forwards only when it allows.
//
// An Auth is compiled once from its weftv1.ExternalAuth when a config
// arrives (Compile) and is immutable afterwards. The outbound listener
// sends the check (outbound/extauth.go) through the upstream pool; this
// package builds the check request and reads the answer.
package extauth

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// DefaultTimeout bounds a check whose filter sets none: from picking an
// endpoint of the auth service to reading its answer's header.
const DefaultTimeout = 2 * time.Second

// The x-weft-reason values of the stage's refusals.
const (
	// ReasonDenied: the auth service answered other than 2xx; the client
	// gets its status.
	ReasonDenied = "external-auth-denied"
	// ReasonUnavailable: the auth service could not be reached, timed out
	// or failed (502, 503, 504); the request is refused with 503 (fail
	// closed).
	ReasonUnavailable = "external-auth-unavailable"
	// ReasonBodyTooLarge: the request body is longer than
	// forwardBody.maxSize; the request is refused with 413.
	ReasonBodyTooLarge = "external-auth-body-too-large"
)

// MaxDeniedBody bounds the part of a denying answer's body passed on to
// the client.
const MaxDeniedBody = 64 << 10

// alwaysSent are the request headers every check carries (the Gateway API
// list; Host, method and path travel in the request line).
var alwaysSent = []string{"Authorization"}

// notCopied are the headers of an allowing answer never copied onto the
// request: Host and the headers that describe the answer's own message.
var notCopied = map[string]bool{
	"Host": true, "Content-Length": true, "Content-Type": true, "Content-Encoding": true, "Transfer-Encoding": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true, "Upgrade": true,
	"Date": true, "Server": true,
}

// Auth is a compiled ExternalAuth filter.
type Auth struct {
	// Service is the auth service's key "<name>.<namespace>".
	Service string
	// Timeout bounds one check.
	Timeout time.Duration
	// MaxBody is forwardBody.maxSize: 0 sends no body.
	MaxBody int64
	path    string   // prefix of the check's path, without a trailing "/"
	headers []string // canonical names of the request headers sent
	// respHeaders are the canonical names of the allowing answer's
	// headers copied onto the request; nil copies all but notCopied.
	respHeaders []string
	// grpc: the Envoy ext_authz protocol (grpc.go); allHeaders: it sends
	// every request header (its allowedHeaders list is empty).
	grpc, allHeaders bool
}

// Compile compiles a validated ExternalAuth; nil for none.
func Compile(p *weftv1.ExternalAuth) *Auth {
	if p == nil {
		return nil
	}
	a := &Auth{
		Service: weftv1.ResourceName(p.GetService(), p.GetNamespace()),
		Timeout: DefaultTimeout,
		MaxBody: int64(p.GetMaxBodyBytes()),
		path:    strings.TrimSuffix(p.GetPath(), "/"),
		headers: append([]string(nil), alwaysSent...),
	}
	if p.GetProtocol() == weftv1.ExternalAuth_GRPC {
		a.grpc, a.allHeaders = true, len(p.GetAllowedHeaders()) == 0
	}
	if ms := p.GetTimeoutMs(); ms > 0 {
		a.Timeout = time.Duration(ms) * time.Millisecond
	}
	for _, h := range p.GetAllowedHeaders() {
		a.headers = append(a.headers, http.CanonicalHeaderKey(h))
	}
	for _, h := range p.GetAllowedResponseHeaders() {
		a.respHeaders = append(a.respHeaders, http.CanonicalHeaderKey(h))
	}
	return a
}

// CheckRequest builds the check request for r: the same method, the path
// prefixed with the filter's path, the query, Host, Authorization and the
// allowed headers, and body (nil for none) with its Content-Length. The
// caller points its URL at an endpoint.
func (a *Auth) CheckRequest(ctx context.Context, r *http.Request, body []byte) *http.Request {
	u := *r.URL
	u.Path = a.path + r.URL.Path
	if r.URL.RawPath != "" {
		u.RawPath = a.path + r.URL.RawPath
	}
	u.Scheme, u.Host, u.User = "", "", nil
	req := &http.Request{
		Method:     r.Method,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, len(a.headers)),
		Host:       r.Host,
	}
	for _, name := range a.headers {
		if vs, ok := r.Header[name]; ok {
			req.Header[name] = vs
		}
	}
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	} else {
		req.Body = http.NoBody
	}
	return req.WithContext(ctx)
}

// Allowed reports whether an answer's status allows the request.
func Allowed(status int) bool { return status >= 200 && status < 300 }

// Unavailable reports whether an answer's status means the auth service
// could not decide (it or its sidecar failed): the request is refused with
// 503 rather than with that status.
func Unavailable(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// Apply copies the headers of an allowing answer onto request header h:
// the allowed response headers (replacing the request's own values, which
// are removed when the answer has none, so a client cannot pose as the
// auth service), or, when the filter lists none, every header but Host
// and the answer's message headers.
func (a *Auth) Apply(h, answer http.Header) {
	if a.respHeaders == nil {
		for k, vs := range answer {
			if !notCopied[k] && !strings.HasPrefix(k, "X-Weft-") {
				h[k] = vs
			}
		}
		return
	}
	for _, k := range a.respHeaders {
		if vs, ok := answer[k]; ok {
			h[k] = vs
		} else {
			delete(h, k)
		}
	}
}

// ReadBody reads at most a.MaxBody bytes of r's body for the check and
// puts back on r a body that yields the same bytes. It reports false when
// the body is longer than MaxBody (the request is then refused with 413).
// A request without a body, or a filter that forwards none, reads
// nothing.
func (a *Auth) ReadBody(r *http.Request) ([]byte, bool, error) {
	if a.MaxBody == 0 || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, true, nil
	}
	if r.ContentLength > a.MaxBody {
		return nil, false, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, a.MaxBody+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > a.MaxBody {
		return nil, false, nil
	}
	r.Body = &replayBody{Reader: bytes.NewReader(b), orig: r.Body}
	return b, true, nil
}

// replayBody yields the bytes read for the check, then closes the original
// body.
type replayBody struct {
	*bytes.Reader
	orig io.Closer
}

// Close implements io.Closer.
func (b *replayBody) Close() error { return b.orig.Close() }
