// Package dashboard serves the control plane's web dashboard under
// /dashboard/: a live service graph, per-service pages, the proxies, a live
// tap of a service's requests (tap.go) and, under `weft demo`, a button
// that breaks the demo's backend.
//
// The page and its script are embedded (no CDN, no external font: it works
// offline) and hold no mesh data, so they need no credentials. The data
// comes from /dashboard/api/..., which answers only a browser session: a
// one-time login token, minted with the admin token by POST
// /api/v1/dashboard/logins (`weft dashboard`, `weft demo`), travels in the
// URL's fragment (never sent to a server, never logged), and the page
// trades it for an HttpOnly, Secure, SameSite=Strict cookie. Requests whose
// Origin or Sec-Fetch-Site says another site sent them are refused.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"

	"weft.dev/weft/internal/control/xds"
)

//go:embed assets
var assets embed.FS

// Options configure the dashboard.
type Options struct {
	// API serves the control plane's /api/v1/ routes (the control plane's
	// mux): the dashboard's read-only data routes are answered by it,
	// authenticated with AdminToken.
	API        http.Handler
	AdminToken string
	// Proxies lists the connected proxies; CertExpiry, if set, is when the
	// last certificate issued to a SPIFFE ID expires (zero if unknown).
	Proxies    func() []xds.ProxyStatus
	CertExpiry func(id string) time.Time
	// DemoBreakDir, set only under `weft demo`, holds one file per service
	// the demo can break (its fail rate); "" disables the demo routes.
	DemoBreakDir string
	Logger       *slog.Logger
	// TapClient reaches the proxies' admin listeners for the tap page (nil:
	// a client that uses no HTTP proxy); TapIdleTimeout ends a tap stream
	// that carried no request for that long (0: DefaultTapIdleTimeout).
	TapClient      *http.Client
	TapIdleTimeout time.Duration
	// Context, once done, ends the tap streams (so that a graceful shutdown
	// does not wait for them); nil: only the browser or the idle timeout
	// ends them.
	Context context.Context
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Handler serves the dashboard. It is safe for concurrent use.
type Handler struct {
	opts     Options
	sessions *sessions
	static   map[string][]byte
	taps     tapStreams // tap.go
}

// New builds the dashboard.
func New(opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{opts: opts, sessions: newSessions(opts.Now), static: map[string][]byte{}}
	sub, _ := fs.Sub(assets, "assets")
	_ = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			h.static[p], _ = fs.ReadFile(sub, p)
		}
		return err
	})
	return h
}

// Register adds the dashboard's routes to mux: the pages and assets, the
// session and data routes under /dashboard/, and the admin-token route that
// mints login tokens.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("POST /api/v1/dashboard/logins", http.HandlerFunc(h.mintLogin))
	mux.HandleFunc("GET /dashboard", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/dashboard/", http.StatusFound)
	})
	mux.HandleFunc("GET /dashboard/{asset...}", h.asset)
	mux.Handle("POST /dashboard/session", h.sameOrigin(http.HandlerFunc(h.login)))
	mux.Handle("DELETE /dashboard/session", h.sameOrigin(http.HandlerFunc(h.logout)))
	for _, r := range []struct{ pattern, target string }{
		{"GET /dashboard/api/graph", "/api/v1/stats/graph"},
		{"GET /dashboard/api/services/{name}", "/api/v1/stats/services/{name}"},
		{"GET /dashboard/api/mesh", "/api/v1/mesh"},
		{"GET /dashboard/api/version", "/api/v1/version"},
		{"GET /dashboard/api/resources/{kind}", "/api/v1/resources/{kind}"},
	} {
		mux.Handle(r.pattern, h.authed(h.forward(r.target)))
	}
	mux.Handle("GET /dashboard/api/proxies", h.authed(http.HandlerFunc(h.proxies)))
	mux.Handle("GET /dashboard/api/tap/{name}", h.authed(http.HandlerFunc(h.tapStream)))
	mux.Handle("GET /dashboard/api/demo", h.authed(http.HandlerFunc(h.demoState)))
	mux.Handle("POST /dashboard/api/demo/break", h.authed(http.HandlerFunc(h.demoBreak)))
}

// assetName is what an asset's name may look like: no slash, no leading
// dot, so nothing outside the embedded files can be named.
var assetName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*\.(html|js|css|svg)$`)

// asset serves the page ("" or index.html) and the embedded files.
func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("asset")
	if name == "" {
		name = "index.html"
	}
	body, ok := h.static[name]
	if !ok || !assetName.MatchString(name) {
		http.Error(w, "no such dashboard file", http.StatusNotFound)
		return
	}
	securityHeaders(w)
	w.Header().Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(body)
}

// securityHeaders keep the page to its own origin: its own scripts and
// styles only, no framing, no referrer.
func securityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
}

// sameOrigin refuses requests another site's page made: an Origin header
// naming another origin, or a Sec-Fetch-Site of cross-site or same-site.
// Requests with a body (POST, DELETE) must carry an Origin, as browsers do.
func (h *Handler) sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		switch site := r.Header.Get("Sec-Fetch-Site"); {
		case origin != "" && origin != "https://"+r.Host:
			writeError(w, http.StatusForbidden, "cross-origin request refused (Origin "+origin+")")
			return
		case site == "cross-site" || site == "same-site":
			writeError(w, http.StatusForbidden, "cross-site request refused (Sec-Fetch-Site "+site+")")
			return
		case origin == "" && r.Method != http.MethodGet && r.Method != http.MethodHead:
			writeError(w, http.StatusForbidden, r.Method+" without an Origin header refused")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authed requires a same-origin request with a valid session cookie.
func (h *Handler) authed(next http.Handler) http.Handler {
	return h.sameOrigin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(CookieName)
		if err != nil || !h.sessions.valid(c.Value) {
			writeError(w, http.StatusUnauthorized, "not signed in: open the link `weft dashboard` prints")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	}))
}

// forward answers from the control plane API's route target (its
// {wildcards} filled from the request's), with the admin token and the
// query, and nothing else, of the browser's request.
func (h *Handler) forward(target string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := target
		for _, name := range []string{"name", "kind"} {
			if v := r.PathValue(name); v != "" {
				if strings.ContainsAny(v, "/?#") || v == "." || v == ".." {
					writeError(w, http.StatusBadRequest, name+": invalid")
					return
				}
				p = strings.Replace(p, "{"+name+"}", v, 1)
			}
		}
		if strings.Contains(target, "{kind}") && !readableKinds[r.PathValue("kind")] {
			writeError(w, http.StatusNotFound, "the dashboard reads only routes and policies")
			return
		}
		in := r.Clone(r.Context())
		in.URL.Path, in.URL.RawPath = p, ""
		in.RequestURI = ""
		in.Header = http.Header{"Authorization": {"Bearer " + h.opts.AdminToken}}
		h.opts.API.ServeHTTP(w, in)
	})
}

// readableKinds are the stored kinds the dashboard shows on service pages.
var readableKinds = map[string]bool{"httproutes": true, "grpcroutes": true, "destinationpolicies": true, "authorizationpolicies": true, "services": true}

// proxyRow is one proxy on the proxies page.
type proxyRow struct {
	xds.ProxyStatus
	// CertExpiry is when the proxy's identity's last certificate expires
	// (omitted if the control plane issued none since it started).
	CertExpiry *time.Time `json:"certExpiry,omitempty"`
}

func (h *Handler) proxies(w http.ResponseWriter, _ *http.Request) {
	rows := []proxyRow{}
	if h.opts.Proxies != nil {
		for _, p := range h.opts.Proxies() {
			row := proxyRow{ProxyStatus: p}
			if h.opts.CertExpiry != nil {
				if t := h.opts.CertExpiry(p.Identity); !t.IsZero() {
					row.CertExpiry = &t
				}
			}
			rows = append(rows, row)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"proxies": rows, "now": h.opts.Now().UTC()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
