package route

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Filters are the compiled filters of a rule or a backendRef; nil fields
// are filters not configured.
type Filters struct {
	RequestHeaders  *HeaderModifier
	ResponseHeaders *HeaderModifier
	Redirect        *Redirect
	Rewrite         *Rewrite
	// CORS is the CORS filter (cors.go); a backend's applies when the
	// rule has none.
	CORS *CORS
}

// Empty reports whether no filter is configured.
func (f *Filters) Empty() bool {
	return f.RequestHeaders == nil && f.ResponseHeaders == nil && f.Redirect == nil && f.Rewrite == nil && f.CORS == nil
}

// HeaderModifier sets, adds and removes headers (Gateway API
// RequestHeaderModifier and ResponseHeaderModifier), in that order.
type HeaderModifier struct {
	Set, Add []HeaderValue // names in canonical form
	Remove   []string      // canonical form
}

// HeaderValue is one header name (canonical form) and value.
type HeaderValue struct{ Name, Value string }

// Apply modifies h.
func (m *HeaderModifier) Apply(h http.Header) {
	for _, s := range m.Set {
		h[s.Name] = []string{s.Value}
	}
	for _, a := range m.Add {
		h[a.Name] = append(h[a.Name], a.Value)
	}
	for _, name := range m.Remove {
		delete(h, name)
	}
}

// PathModifier replaces a request path: whole (Full) or the route match's
// path prefix (Prefix set).
type PathModifier struct {
	// Full replaces the whole path when Prefix is false.
	Full string
	// Prefix: the match's prefix (MatchedPrefix, without a trailing "/")
	// is replaced by Replacement.
	Prefix        bool
	MatchedPrefix string
	Replacement   string
}

// Apply returns the modified path. A prefix replacement follows the
// Gateway API's element-wise semantics: "/foo/bar" with prefix "/foo"
// becomes "/xyz/bar" for "/xyz" or "/xyz/", and "/bar" for "" or "/"; an
// empty result is "/".
func (p *PathModifier) Apply(path string) string {
	if !p.Prefix {
		return p.Full
	}
	rest := path
	if PrefixMatch(path, p.MatchedPrefix) {
		rest = path[len(p.MatchedPrefix):]
	}
	out := strings.TrimSuffix(p.Replacement, "/") + rest
	if out == "" || out[0] != '/' {
		out = "/" + out
	}
	return out
}

// Redirect answers a request with a redirect (Gateway API RequestRedirect).
type Redirect struct {
	Scheme   string // "" keeps the request's
	Hostname string // "" keeps the request's
	Port     uint32 // 0: see Location
	Path     *PathModifier
	Status   int
}

// Location is the redirect target for r. Without a port, the port is the
// scheme's well-known one when the redirect sets a scheme, else the
// request's; the well-known port of the scheme is left out of the URL.
func (rd *Redirect) Location(r *http.Request) string {
	reqScheme := "http"
	if r.URL.Scheme != "" {
		reqScheme = r.URL.Scheme
	} else if r.TLS != nil {
		reqScheme = "https"
	}
	scheme := reqScheme
	if rd.Scheme != "" {
		scheme = rd.Scheme
	}
	host, reqPort := r.Host, ""
	if h, p, err := net.SplitHostPort(r.Host); err == nil {
		host, reqPort = h, p
	}
	if rd.Hostname != "" {
		host = rd.Hostname
	}
	port := ""
	switch {
	case rd.Port != 0:
		port = strconv.FormatUint(uint64(rd.Port), 10)
	case rd.Scheme == "" && reqPort != "":
		port = reqPort
	}
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	path := r.URL.Path
	if rd.Path != nil {
		path = rd.Path.Apply(path)
	}
	u := url.URL{Scheme: scheme, Host: host, Path: path, RawQuery: r.URL.RawQuery}
	return u.String()
}

// Rewrite changes a request before it is forwarded (Gateway API
// URLRewrite).
type Rewrite struct {
	Hostname string // "" keeps the request's
	Path     *PathModifier
}

// Apply rewrites r in place.
func (rw *Rewrite) Apply(r *http.Request) {
	if rw.Hostname != "" {
		r.Host = rw.Hostname
	}
	if rw.Path != nil {
		r.URL.Path = rw.Path.Apply(r.URL.Path)
		r.URL.RawPath = ""
	}
}

// ApplyRequest applies the request filters of f to r: the URL rewrite,
// then the request header modifier.
func (f *Filters) ApplyRequest(r *http.Request) {
	if f.Rewrite != nil {
		f.Rewrite.Apply(r)
	}
	if f.RequestHeaders != nil {
		f.RequestHeaders.Apply(r.Header)
	}
}

func compileFilters(req, resp *weftv1.HeaderModifier, rd *weftv1.RequestRedirect, rw *weftv1.URLRewrite) (Filters, error) {
	var f Filters
	if req != nil {
		f.RequestHeaders = compileHeaderModifier(req)
	}
	if resp != nil {
		f.ResponseHeaders = compileHeaderModifier(resp)
	}
	if rd != nil {
		f.Redirect = &Redirect{Scheme: rd.GetScheme(), Hostname: rd.GetHostname(), Port: rd.GetPort(), Path: compilePath(rd.GetPath()), Status: int(rd.GetStatusCode())}
		if f.Redirect.Status == 0 {
			f.Redirect.Status = http.StatusFound
		}
	}
	if rw != nil {
		f.Rewrite = &Rewrite{Hostname: rw.GetHostname(), Path: compilePath(rw.GetPath())}
	}
	if f.Redirect != nil && f.Rewrite != nil {
		return Filters{}, fmt.Errorf("redirect: cannot be combined with rewrite")
	}
	return f, nil
}

func compileHeaderModifier(m *weftv1.HeaderModifier) *HeaderModifier {
	out := &HeaderModifier{}
	for _, h := range m.GetSet() {
		out.Set = append(out.Set, HeaderValue{http.CanonicalHeaderKey(h.GetName()), h.GetValue()})
	}
	for _, h := range m.GetAdd() {
		out.Add = append(out.Add, HeaderValue{http.CanonicalHeaderKey(h.GetName()), h.GetValue()})
	}
	for _, name := range m.GetRemove() {
		out.Remove = append(out.Remove, http.CanonicalHeaderKey(name))
	}
	return out
}

func compilePath(p *weftv1.PathModifier) *PathModifier {
	switch p.GetKind() {
	case weftv1.PathModifier_FULL:
		return &PathModifier{Full: p.GetValue()}
	case weftv1.PathModifier_PREFIX:
		return &PathModifier{Prefix: true, MatchedPrefix: strings.TrimSuffix(p.GetMatchedPrefix(), "/"), Replacement: p.GetValue()}
	}
	return nil
}
