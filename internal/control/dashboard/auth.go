package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"weft.dev/weft/internal/control/apiserver"
)

// CookieName is the session cookie. The __Host- prefix makes browsers keep
// it only if it is Secure, for this host, for every path.
const CookieName = "__Host-weft-dashboard"

// Limits of logins and sessions.
const (
	// DefaultLoginTTL is how long a login token stays valid unless the
	// minting request asks otherwise; MaxLoginTTL bounds what it may ask.
	DefaultLoginTTL = 2 * time.Minute
	MaxLoginTTL     = time.Hour
	// SessionTTL is how long a session lasts after its login.
	SessionTTL = 12 * time.Hour
	// maxPending and maxSessions bound the tokens and sessions kept; the
	// oldest go first.
	maxPending  = 64
	maxSessions = 64
)

// LoginRequest is the optional body of POST /api/v1/dashboard/logins.
type LoginRequest struct {
	// TTL is how long the login token stays valid (a Go duration, at most
	// MaxLoginTTL); "" for DefaultLoginTTL.
	TTL string `json:"ttl,omitempty"`
}

// Login is the answer of POST /api/v1/dashboard/logins.
type Login struct {
	// Path is the dashboard's path with the one-time login token in its
	// fragment: append it to the API's https://HOST:PORT.
	Path    string    `json:"path"`
	Expires time.Time `json:"expires"`
}

// sessions holds the pending login tokens and the open sessions, by the
// SHA-256 of their secret, with their expiry.
type sessions struct {
	now func() time.Time

	mu       sync.Mutex
	pending  map[[32]byte]time.Time
	sessions map[[32]byte]time.Time
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, pending: map[[32]byte]time.Time{}, sessions: map[[32]byte]time.Time{}}
}

// newSecret returns 32 random bytes, base64url.
func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a dashboard secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// add stores secret in m until exp, dropping expired entries and, past
// limit, the one expiring first.
func (s *sessions) add(m map[[32]byte]time.Time, limit int, secret string, exp time.Time) {
	now := s.now()
	for k, e := range m {
		if !now.Before(e) {
			delete(m, k)
		}
	}
	for len(m) >= limit {
		var first [32]byte
		var firstExp time.Time
		for k, e := range m {
			if firstExp.IsZero() || e.Before(firstExp) {
				first, firstExp = k, e
			}
		}
		delete(m, first)
	}
	m[sha256.Sum256([]byte(secret))] = exp
}

// mint returns a new login token valid for ttl.
func (s *sessions) mint(ttl time.Duration) (string, time.Time, error) {
	tok, err := newSecret()
	if err != nil {
		return "", time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp := s.now().Add(ttl)
	s.add(s.pending, maxPending, tok, exp)
	return tok, exp, nil
}

// redeem consumes a login token and opens a session, returning its
// secret; false if the token is unknown, used or expired.
func (s *sessions) redeem(tok string) (string, bool, error) {
	k := sha256.Sum256([]byte(tok))
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.pending[k]
	delete(s.pending, k)
	if !ok || !s.now().Before(exp) {
		return "", false, nil
	}
	sess, err := newSecret()
	if err != nil {
		return "", false, err
	}
	s.add(s.sessions, maxSessions, sess, s.now().Add(SessionTTL))
	return sess, true, nil
}

// valid says whether sess is an open session.
func (s *sessions) valid(sess string) bool {
	k := sha256.Sum256([]byte(sess))
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.sessions[k]
	return ok && s.now().Before(exp)
}

// end closes a session.
func (s *sessions) end(sess string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sha256.Sum256([]byte(sess)))
}

// mintLogin answers POST /api/v1/dashboard/logins, with the admin token.
func (h *Handler) mintLogin(w http.ResponseWriter, r *http.Request) {
	if !apiserver.Authorized(r, h.opts.AdminToken) {
		writeError(w, http.StatusUnauthorized, "missing or wrong admin token")
		return
	}
	var req LoginRequest
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("reading login request: %v", err))
			return
		}
	}
	ttl := DefaultLoginTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > MaxLoginTTL {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("ttl %q: want a duration above 0 and at most %s", req.TTL, MaxLoginTTL))
			return
		}
		ttl = d
	}
	tok, exp, err := h.sessions.mint(ttl)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, Login{Path: "/dashboard/#login=" + tok, Expires: exp.UTC()})
}

// login trades a login token (JSON {"token": ...}) for a session cookie.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || req.Token == "" {
		writeError(w, http.StatusBadRequest, "want a JSON body {\"token\": ...}")
		return
	}
	sess, ok, err := h.sessions.redeem(req.Token)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !ok {
		h.opts.Logger.Warn("dashboard login refused: unknown, used or expired login token", "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "login link unknown, used or expired: run `weft dashboard` for a new one")
		return
	}
	h.opts.Logger.Info("dashboard session opened", "remote", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: sess, Path: "/", MaxAge: int(SessionTTL / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, map[string]string{"session": "open"})
}

// logout ends the session and clears the cookie.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		h.sessions.end(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}
