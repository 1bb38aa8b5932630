package outbound

import (
	"net/http"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/route"
	"weft.dev/weft/internal/proxy/upstream"
)

// routeFilters runs the route stage's filters of rt and its picked backend
// b (nil when every weight is zero) on a request: it answers a redirect
// itself (and reports true), or rewrites r and its headers in place and
// makes sw apply the response header modifiers. A route without filters
// costs two nil checks. Redirects are counted by service (svcKey) and
// route.
func (l *Listener) routeFilters(sw *upstream.StatusWriter, r *http.Request, svcKey string, rt *config.Route, b *route.Backend) bool {
	var bf *route.Filters
	if b != nil && !b.Filters.Empty() {
		bf = &b.Filters
	}
	if rt.Filters.Empty() && bf == nil {
		return false
	}
	cors, origin := rt.Filters.CORS, ""
	if cors == nil && bf != nil {
		cors = bf.CORS
	}
	if cors != nil {
		if cors.Preflight(sw, r) {
			l.opts.Metrics.CORSPreflight(svcKey, rt.Name) // telemetry/cors.go
			return true
		}
		origin = cors.ActualOrigin(r)
	}
	if rd := rt.Filters.Redirect; rd != nil {
		http.Redirect(sw, r, rd.Location(r), rd.Status)
		l.opts.Metrics.RouteRedirect(svcKey, rt.Name)
		return true
	}
	rt.Filters.ApplyRequest(r)
	resp := [2]*route.HeaderModifier{rt.Filters.ResponseHeaders}
	if bf != nil {
		bf.ApplyRequest(r)
		resp[1] = bf.ResponseHeaders
	}
	if resp[0] != nil || resp[1] != nil || origin != "" {
		sw.ResponseWriter = &responseHeaders{ResponseWriter: sw.ResponseWriter, mods: resp, cors: cors, origin: origin}
	}
	return false
}

// responseHeaders applies response header modifiers (the rule's, then the
// backend's) when the final response header is written, whether the
// upstream answered or weft did.
type responseHeaders struct {
	http.ResponseWriter
	mods  [2]*route.HeaderModifier
	wrote bool
	// cors and origin: the CORS headers for an allowed origin ("" for
	// none), set after the modifiers.
	cors   *route.CORS
	origin string
}

// WriteHeader implements http.ResponseWriter.
func (w *responseHeaders) WriteHeader(code int) {
	if !w.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.wrote = true
		for _, m := range w.mods {
			if m != nil {
				m.Apply(w.Header())
			}
		}
		if w.origin != "" {
			w.cors.ApplyResponse(w.Header(), w.origin)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *responseHeaders) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (w *responseHeaders) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseHeaders) Unwrap() http.ResponseWriter { return w.ResponseWriter }
