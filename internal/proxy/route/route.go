// Package route is the first stage of the proxy's request path: it decides
// which compiled route of a service a request takes (path, header, query
// parameter and method matches of HTTPRoute and GRPCRoute rules), which
// weighted backend of the route it goes to, and applies the route's
// filters (header modifiers, redirect, URL rewrite).
//
// A Route is compiled once from its weftv1.Route when a config arrives
// (Compile) and is immutable afterwards; matching an exact or prefix path
// and exact headers does not allocate. Regular expressions are RE2 and must
// match the whole path or value (they are compiled anchored).
package route

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Route is the compiled match, backends and filters of one route entry
// (one match of an HTTPRoute or GRPCRoute rule, see weftv1.Route).
type Route struct {
	// Name is "<namespace>/<route>/<rule index>".
	Name     string
	Matches  []Match
	Backends []Backend
	// Filters are the rule's filters; each backend may add its own.
	Filters     Filters
	totalWeight uint32
}

// PathKind is how a Match compares the request path.
type PathKind uint8

// Path match kinds.
const (
	// PathAny matches every path (a PathPrefix "/" or no path match).
	PathAny PathKind = iota
	PathPrefix
	PathExact
	PathRegex
)

// Match is one request match; every set condition must hold.
type Match struct {
	PathKind PathKind
	Path     string         // the exact path or the prefix without a trailing "/"
	pathRE   *regexp.Regexp // PathRegex
	Headers  []HeaderMatch
	Query    []QueryMatch
	Method   string // "" matches any
}

// HeaderMatch requires a request header to have a value, exactly or by a
// regular expression over the whole value.
type HeaderMatch struct {
	Name  string // canonical form
	Value string
	re    *regexp.Regexp
}

// QueryMatch requires the first value of a query parameter to have a
// value, exactly or by a regular expression over the whole value.
type QueryMatch struct {
	Name  string
	Value string
	re    *regexp.Regexp
}

// Backend is a weighted destination service key, or, when FailStatus is
// set, a share of the route's traffic to answer with that status.
type Backend struct {
	Service string // key "<name>.<namespace>"; "" for a failing backend
	Weight  uint32
	// FailStatus and FailReason: see weftv1.Backend.
	FailStatus int
	FailReason string
	// Filters are the backendRef's filters, applied after the route's.
	Filters Filters
	// Index is the backend's position in its route's Backends.
	Index int
}

// Compile compiles a route entry. The error names the field; the resource
// has passed weftv1.ValidateService, so it is only for regular expressions
// that do not compile, which validation already refuses.
func Compile(r *weftv1.Route) (Route, error) {
	out := Route{Name: r.GetName()}
	for i, m := range r.GetMatches() {
		match, err := compileMatch(m)
		if err != nil {
			return Route{}, fmt.Errorf("matches[%d].%w", i, err)
		}
		out.Matches = append(out.Matches, match)
	}
	for i, b := range r.GetBackends() {
		be := Backend{Weight: b.GetWeight(), FailStatus: int(b.GetFailStatus()), FailReason: b.GetFailReason(), Index: i}
		if be.FailStatus == 0 {
			be.Service = weftv1.ResourceName(b.GetService(), b.GetNamespace())
		}
		f, err := compileFilters(b.GetRequestHeaders(), b.GetResponseHeaders(), nil, b.GetRewrite())
		if err != nil {
			return Route{}, fmt.Errorf("backends[%d].%w", i, err)
		}
		be.Filters = f
		be.Filters.CORS = compileCORS(b.GetCors()) // cors.go
		out.Backends = append(out.Backends, be)
		out.totalWeight += b.GetWeight()
	}
	f, err := compileFilters(r.GetRequestHeaders(), r.GetResponseHeaders(), r.GetRedirect(), r.GetRewrite())
	if err != nil {
		return Route{}, err
	}
	out.Filters = f
	out.Filters.CORS = compileCORS(r.GetCors()) // cors.go
	return out, nil
}

func compileMatch(m *weftv1.RouteMatch) (Match, error) {
	out := Match{Method: m.GetMethod()}
	if p := m.GetPath(); p != nil {
		switch p.GetKind() {
		case weftv1.PathMatch_EXACT:
			out.PathKind, out.Path = PathExact, p.GetValue()
		case weftv1.PathMatch_REGEX:
			re, err := weftv1.CompileRegex(p.GetValue())
			if err != nil {
				return Match{}, fmt.Errorf("path.value: invalid regular expression: %w", err)
			}
			out.PathKind, out.Path, out.pathRE = PathRegex, p.GetValue(), re
		default:
			if prefix := strings.TrimSuffix(p.GetValue(), "/"); prefix != "" {
				out.PathKind, out.Path = PathPrefix, prefix
			}
		}
	}
	for j, h := range m.GetHeaders() {
		hm := HeaderMatch{Name: http.CanonicalHeaderKey(h.GetName()), Value: h.GetValue()}
		if h.GetRegex() {
			re, err := weftv1.CompileRegex(h.GetValue())
			if err != nil {
				return Match{}, fmt.Errorf("headers[%d].value: invalid regular expression: %w", j, err)
			}
			hm.re = re
		}
		out.Headers = append(out.Headers, hm)
	}
	for j, q := range m.GetQueryParams() {
		qm := QueryMatch{Name: q.GetName(), Value: q.GetValue()}
		if q.GetRegex() {
			re, err := weftv1.CompileRegex(q.GetValue())
			if err != nil {
				return Match{}, fmt.Errorf("query_params[%d].value: invalid regular expression: %w", j, err)
			}
			qm.re = re
		}
		out.Query = append(out.Query, qm)
	}
	return out, nil
}

// Accepts reports whether r matches one of the route's matches (a route
// without matches accepts every request).
func (rt *Route) Accepts(r *http.Request) bool {
	if len(rt.Matches) == 0 {
		return true
	}
	for i := range rt.Matches {
		if rt.Matches[i].Accepts(r) {
			return true
		}
	}
	return false
}

// Accepts reports whether r meets every condition of m.
func (m *Match) Accepts(r *http.Request) bool {
	if m.Method != "" && m.Method != r.Method {
		return false
	}
	switch m.PathKind {
	case PathExact:
		if r.URL.Path != m.Path {
			return false
		}
	case PathPrefix:
		if !PrefixMatch(r.URL.Path, m.Path) {
			return false
		}
	case PathRegex:
		if !m.pathRE.MatchString(r.URL.Path) {
			return false
		}
	}
	for i := range m.Headers {
		if !m.Headers[i].accepts(r.Header) {
			return false
		}
	}
	if len(m.Query) > 0 {
		for i := range m.Query {
			q := &m.Query[i]
			v, ok := firstQueryValue(r.URL.RawQuery, q.Name)
			if !ok || !matches(v, q.Value, q.re) {
				return false
			}
		}
	}
	return true
}

func (h *HeaderMatch) accepts(hdr http.Header) bool {
	vs := hdr[h.Name]
	switch len(vs) {
	case 0:
		return false
	case 1:
		return matches(vs[0], h.Value, h.re)
	}
	// A repeated header is matched as its values combined into one
	// (RFC 9110 section 5.3), as proxies do.
	return matches(strings.Join(vs, ", "), h.Value, h.re)
}

func matches(v, exact string, re *regexp.Regexp) bool {
	if re != nil {
		return re.MatchString(v)
	}
	return v == exact
}

// PrefixMatch implements Gateway API PathPrefix: element-wise prefix;
// prefix has no trailing "/" ("" matches every path).
func PrefixMatch(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// firstQueryValue returns the first value of query parameter name in a raw
// query (the Gateway API recommends matching a repeated parameter by its
// first value). It allocates only to unescape an escaped pair.
func firstQueryValue(raw, name string) (string, bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		if k != name {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			u, err := url.QueryUnescape(v)
			if err != nil {
				return "", false
			}
			v = u
		}
		return v, true
	}
	return "", false
}

// Pick chooses a backend by weight; n is a uniformly distributed random
// number. It returns nil when every weight is zero (the Gateway API then
// answers 500, as for a backend that cannot be resolved).
func (rt *Route) Pick(n uint32) *Backend {
	if rt.totalWeight == 0 {
		return nil
	}
	if len(rt.Backends) == 1 {
		return &rt.Backends[0]
	}
	n %= rt.totalWeight
	for i := range rt.Backends {
		if n < rt.Backends[i].Weight {
			return &rt.Backends[i]
		}
		n -= rt.Backends[i].Weight
	}
	return &rt.Backends[len(rt.Backends)-1]
}

// PickBackend chooses a backend service key by weight, as Pick does; it
// returns "" when every weight is zero or the backend picked is failing.
func (rt *Route) PickBackend(n uint32) string {
	if b := rt.Pick(n); b != nil {
		return b.Service
	}
	return ""
}

// BackendKeys calls f with the service key of every backend the route can
// forward to (weight above zero).
func (rt *Route) BackendKeys(f func(key string)) {
	for i := range rt.Backends {
		if b := &rt.Backends[i]; b.Service != "" && b.Weight > 0 {
			f(b.Service)
		}
	}
}
