package outbound

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"weft.dev/weft/internal/proxy/balancer"
	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/upstream/meshtest"
)

// TestSessionToken: a token written for an endpoint reads back as that
// endpoint while the session lasts, by cookie or header; malformed,
// expired and absent tokens are no session.
func TestSessionToken(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tok := balancer.Token("10.0.0.1:15006")
	cookie := &config.SessionPersistence{Name: "sid", Absolute: time.Hour, Permanent: true}
	header := &config.SessionPersistence{Name: "X-Session", Header: true}
	for _, tc := range []struct {
		name  string
		sp    *config.SessionPersistence
		value func(w *httptest.ResponseRecorder) string // the token sent back; nil: what was written
		at    time.Duration
		ok    bool
	}{
		{"cookie", cookie, nil, time.Minute, true},
		{"cookie expired", cookie, nil, time.Hour + time.Second, false},
		{"header", header, nil, 1000 * time.Hour, true},
		{"malformed", header, func(*httptest.ResponseRecorder) string { return "zz.yy" }, 0, false},
		{"no dot", header, func(*httptest.ResponseRecorder) string { return strconv.FormatUint(tok, 16) }, 0, false},
		{"absent", header, func(*httptest.ResponseRecorder) string { return "" }, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			writeSession(w, tc.sp, tok, now)
			r := httptest.NewRequest(http.MethodGet, "http://backend/", nil)
			var v string
			if tc.sp.Header {
				v = w.Header().Get(tc.sp.Name)
			} else {
				c := w.Result().Cookies()
				if len(c) != 1 || c[0].Name != "sid" || c[0].MaxAge != 3600 || !c[0].HttpOnly || c[0].Path != "/" {
					t.Fatalf("cookie %v, want sid with Max-Age 3600, HttpOnly, Path /", c)
				}
				v = c[0].Value
			}
			if tc.value != nil {
				v = tc.value(w)
			}
			if tc.sp.Header {
				r.Header.Set(tc.sp.Name, v)
			} else {
				r.AddCookie(&http.Cookie{Name: tc.sp.Name, Value: v})
			}
			s := readSession(r, tc.sp, now.Add(tc.at))
			if s.ok != tc.ok || s.ok && s.token != tok {
				t.Fatalf("read %+v, want ok %v and token %x", s, tc.ok, tok)
			}
		})
	}
}

// TestHashValue: each consistent-hash key source reads its part of the
// request; a request without it has no key.
func TestHashValue(t *testing.T) {
	ca := meshtest.NewCA(t, "cluster.local")
	l := &Listener{opts: Options{Identity: ca.Source(t, "shop", "web")}}
	r := httptest.NewRequest(http.MethodGet, "http://backend/cart?user=ann&x=1", nil)
	r.Header.Set("X-User", "bob")
	r.AddCookie(&http.Cookie{Name: "sid", Value: "s-42"})
	for _, tc := range []struct {
		name string
		hk   config.HashKey
		want string
	}{
		{"header", config.HashKey{Header: "X-User"}, "bob"},
		{"missing header", config.HashKey{Header: "X-Tenant"}, ""},
		{"cookie", config.HashKey{Cookie: "sid"}, "s-42"},
		{"missing cookie", config.HashKey{Cookie: "other"}, ""},
		{"query", config.HashKey{QueryParameter: "user"}, "ann"},
		{"missing query", config.HashKey{QueryParameter: "team"}, ""},
		{"source identity", config.HashKey{SourceIdentity: true}, "spiffe://cluster.local/ns/shop/sa/web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := l.hashValue(r, &tc.hk); got != tc.want {
				t.Errorf("hashValue = %q, want %q", got, tc.want)
			}
		})
	}
}
