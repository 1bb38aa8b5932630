package route

import (
	"net/http"
	"strconv"
	"strings"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// CORS is a rule's compiled CORS filter (Gateway API HTTPCORSFilter). The
// proxy answers a preflight request (OPTIONS with Origin and
// Access-Control-Request-Method) itself, 204 with the CORS headers when the
// origin is allowed and without them when it is not, so preflights never
// reach the backend; an actual request from an allowed origin gets
// Access-Control-Allow-Origin (and -Credentials, -Expose-Headers) on its
// response, one from another origin none. A request without Origin costs a
// header lookup and does not allocate.
type CORS struct {
	anyOrigin   bool
	origins     []originPattern
	credentials bool
	// methods, headers and expose are the joined lists ("" for none);
	// any* is the configured wildcard "*".
	methods, headers, expose string
	anyMethod, anyHeader     bool
	anyExpose                bool
	maxAge                   string
	// allowOriginStar: Access-Control-Allow-Origin is "*" rather than
	// the request's origin.
	allowOriginStar bool
}

// originPattern is one allowed origin: scheme, port (the scheme's default
// when the origin has none) and host, exactly or, with suffix, every host
// ending in host ("*.example.com" is suffix ".example.com"; "*" alone is
// suffix "").
type originPattern struct {
	scheme, host, port string
	suffix             bool
}

// CORS response and request header names.
const (
	hdrOrigin           = "Origin"
	hdrRequestMethod    = "Access-Control-Request-Method"
	hdrRequestHeaders   = "Access-Control-Request-Headers"
	hdrAllowOrigin      = "Access-Control-Allow-Origin"
	hdrAllowCredentials = "Access-Control-Allow-Credentials"
	hdrAllowMethods     = "Access-Control-Allow-Methods"
	hdrAllowHeaders     = "Access-Control-Allow-Headers"
	hdrExposeHeaders    = "Access-Control-Expose-Headers"
	hdrMaxAge           = "Access-Control-Max-Age"
	hdrVary             = "Vary"
)

// compileCORS compiles a validated CORS policy; nil for none.
func compileCORS(p *weftv1.CORSPolicy) *CORS {
	if p == nil {
		return nil
	}
	c := &CORS{credentials: p.GetAllowCredentials(), maxAge: "5"}
	if p.GetMaxAgeSeconds() > 0 {
		c.maxAge = strconv.FormatUint(uint64(p.GetMaxAgeSeconds()), 10)
	}
	for _, o := range p.GetAllowOrigins() {
		if o == "*" {
			c.anyOrigin = true
			continue
		}
		if op, ok := parseOrigin(o); ok {
			if strings.HasPrefix(op.host, "*") {
				op.host, op.suffix = op.host[1:], true
			}
			c.origins = append(c.origins, op)
		}
	}
	c.methods, c.anyMethod = joinList(p.GetAllowMethods())
	c.headers, c.anyHeader = joinList(p.GetAllowHeaders())
	c.expose, c.anyExpose = joinList(p.GetExposeHeaders())
	// "*" may be sent for the origin only without credentials; otherwise
	// the request's origin is echoed, and the answer varies by Origin.
	c.allowOriginStar = c.anyOrigin && !c.credentials
	return c
}

// joinList joins a list for a response header; a list that is "*" alone is
// the wildcard.
func joinList(vs []string) (string, bool) {
	if len(vs) == 1 && vs[0] == "*" {
		return "*", true
	}
	return strings.Join(vs, ", "), false
}

// parseOrigin splits "<scheme>://<host>[:<port>]" into lower-case scheme
// and host and a port, the scheme's default when absent. It does not
// allocate for an origin already in lower case.
func parseOrigin(o string) (originPattern, bool) {
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || rest == "" {
		return originPattern{}, false
	}
	scheme = lower(scheme)
	host, port := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && strings.IndexByte(rest[i:], ']') < 0 {
		host, port = rest[:i], rest[i+1:]
	}
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		default:
			return originPattern{}, false
		}
	}
	if host == "" || strings.ContainsAny(host, "/?#@") {
		return originPattern{}, false
	}
	return originPattern{scheme: scheme, host: lower(host), port: port}, true
}

// lower returns s in lower case, allocating only when s has an upper-case
// ASCII letter.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// Allowed reports whether a request Origin is one of the allowed origins.
func (c *CORS) Allowed(origin string) bool {
	if c.anyOrigin {
		return true
	}
	o, ok := parseOrigin(origin)
	if !ok {
		return false
	}
	for i := range c.origins {
		p := &c.origins[i]
		if p.scheme != o.scheme || p.port != o.port {
			continue
		}
		if p.suffix {
			if p.host == "" || len(o.host) > len(p.host) && strings.HasSuffix(o.host, p.host) {
				return true
			}
			continue
		}
		if p.host == o.host {
			return true
		}
	}
	return false
}

// Preflight answers r itself when it is a CORS preflight request (OPTIONS
// with Origin and Access-Control-Request-Method) and reports whether it
// did: 204, with the CORS headers when the origin is allowed.
func (c *CORS) Preflight(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodOptions {
		return false
	}
	origin, reqMethod := first(r.Header, hdrOrigin), first(r.Header, hdrRequestMethod)
	if origin == "" || reqMethod == "" {
		return false
	}
	h := w.Header()
	if c.Allowed(origin) {
		c.setOrigin(h, origin)
		switch {
		case c.anyMethod && c.credentials:
			h.Set(hdrAllowMethods, reqMethod)
		case c.methods != "":
			h.Set(hdrAllowMethods, c.methods)
		}
		if reqHeaders := first(r.Header, hdrRequestHeaders); reqHeaders != "" {
			switch {
			case c.anyHeader && c.credentials:
				h.Set(hdrAllowHeaders, reqHeaders)
			case c.headers != "":
				h.Set(hdrAllowHeaders, c.headers)
			}
		}
		h.Set(hdrMaxAge, c.maxAge)
	}
	h.Add(hdrVary, hdrOrigin)
	w.WriteHeader(http.StatusNoContent)
	return true
}

// ActualOrigin returns the Origin of an actual (not preflight) request when
// it is allowed, "" otherwise (no Origin, or another origin).
func (c *CORS) ActualOrigin(r *http.Request) string {
	origin := first(r.Header, hdrOrigin)
	if origin == "" || !c.Allowed(origin) {
		return ""
	}
	return origin
}

// ApplyResponse sets the CORS headers of an actual request from allowed
// origin on its response header h, replacing any the backend set.
func (c *CORS) ApplyResponse(h http.Header, origin string) {
	c.setOrigin(h, origin)
	if !c.allowOriginStar {
		h.Add(hdrVary, hdrOrigin)
	}
	switch {
	case c.anyExpose && c.credentials:
		// "*" would not be read as a wildcard with credentials: expose
		// nothing beyond the safelisted headers.
	case c.expose != "":
		h.Set(hdrExposeHeaders, c.expose)
	}
}

func (c *CORS) setOrigin(h http.Header, origin string) {
	if c.allowOriginStar {
		h.Set(hdrAllowOrigin, "*")
	} else {
		h.Set(hdrAllowOrigin, origin)
	}
	if c.credentials {
		h.Set(hdrAllowCredentials, "true")
	}
}

// first is the first value of header name (canonical form), "" if absent.
func first(h http.Header, name string) string {
	if vs := h[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}
