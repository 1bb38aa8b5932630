package outbound

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"weft.dev/weft/internal/proxy/balancer"
	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/upstream"
)

// pickFor picks the endpoint of service key for r: by the service's
// algorithm, its consistent-hash key taken from r, and the session token r
// carries when route has session persistence, in which case it also sets
// the token of the picked endpoint on w's response when that starts or
// renews a session.
func (l *Listener) pickFor(w http.ResponseWriter, r *http.Request, cfg *config.Config, key string, route *config.Route, eps []config.Endpoint) (upstream.Lease, error) {
	req := balancer.Request{Algorithm: lbFor(cfg, key)}
	if svc := cfg.Services[key]; svc != nil && svc.Balancer != nil {
		req.Spec = svc.Balancer
		if hk := svc.Balancer.Hash; hk != nil && req.Algorithm.Hashing() {
			if v := l.hashValue(r, hk); v != "" {
				req.Hash, req.HasHash = balancer.HashString(v), true
			}
		}
	}
	var sp *config.SessionPersistence
	var sess session
	var now time.Time
	if route != nil && route.Session != nil {
		sp, now = route.Session, time.Now()
		sess = readSession(r, sp, now)
		req.Sticky, req.HasSticky = sess.token, sess.ok
	}
	lease, err := l.pool.PickWith(key, req, eps)
	if err != nil || sp == nil {
		return lease, err
	}
	tok := balancer.Token(lease.Endpoint.Address)
	if sess.ok && sess.token == tok {
		return lease, nil // the session goes on
	}
	writeSession(w, sp, tok, now)
	return lease, nil
}

// hashValue is the consistent-hash key of r ("" when r has none).
func (l *Listener) hashValue(r *http.Request, hk *config.HashKey) string {
	switch {
	case hk.Header != "":
		return r.Header.Get(hk.Header)
	case hk.Cookie != "":
		if c, err := r.Cookie(hk.Cookie); err == nil {
			return c.Value
		}
	case hk.QueryParameter != "":
		return r.URL.Query().Get(hk.QueryParameter)
	case hk.SourceIdentity:
		return l.opts.Identity.ID().String()
	}
	return ""
}

// session is a session-persistence token read from a request: the
// endpoint token (balancer.Token).
type session struct {
	token uint64
	ok    bool
}

// readSession reads and checks r's session token: "<token hex>.<start
// unix seconds, base 36>". A malformed or expired token is no session.
func readSession(r *http.Request, sp *config.SessionPersistence, now time.Time) session {
	var v string
	if sp.Header {
		v = r.Header.Get(sp.Name)
	} else if c, err := r.Cookie(sp.Name); err == nil {
		v = c.Value
	}
	tokS, startS, ok := strings.Cut(v, ".")
	if !ok {
		return session{}
	}
	tok, err1 := strconv.ParseUint(tokS, 16, 64)
	start, err2 := strconv.ParseInt(startS, 36, 64)
	if err1 != nil || err2 != nil {
		return session{}
	}
	if sp.Absolute > 0 && now.Sub(time.Unix(start, 0)) > sp.Absolute {
		return session{}
	}
	return session{token: tok, ok: true}
}

// writeSession sets the session token on the response: a cookie (HttpOnly,
// Path /, with Max-Age for a permanent one) or a header.
func writeSession(w http.ResponseWriter, sp *config.SessionPersistence, tok uint64, now time.Time) {
	v := strconv.FormatUint(tok, 16) + "." + strconv.FormatInt(now.Unix(), 36)
	if sp.Header {
		w.Header().Set(sp.Name, v)
		return
	}
	c := &http.Cookie{Name: sp.Name, Value: v, Path: "/", HttpOnly: true}
	if sp.Permanent {
		c.MaxAge = max(int(sp.Absolute/time.Second), 1)
	}
	w.Header().Add("Set-Cookie", c.String())
}

// Ejected lists, by destination service, the endpoints outlier detection
// ejected now.
func (l *Listener) Ejected() map[string][]string { return l.pool.Ejected() }

// statusOf is resp's status code, 0 for none.
func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}
