package inbound

import (
	"errors"
	"net/http"
	"time"

	"weft.dev/weft/internal/proxy/authz"
	"weft.dev/weft/internal/proxy/jwtauthn"
	"weft.dev/weft/internal/proxy/upstream"
)

// authenticate applies the service's RequestAuthentications (Options.JWT)
// to *r before authorization. A request without a token passes
// unauthenticated (an AuthorizationPolicy requiring a request principal
// refuses it); one with a valid token continues with the principal in its
// context (jwtauthn.FromContext) and its headers edited (token stripped
// unless forwarded, claims copied); one with an invalid token is answered
// 401 with WWW-Authenticate: Bearer and a short reason. It reports whether
// the request may proceed.
func (l *Listener) authenticate(w http.ResponseWriter, r **http.Request) bool {
	if l.opts.JWT == nil {
		return true
	}
	v := l.opts.JWT()
	if v == nil {
		return true
	}
	l.opts.JWKS.Use(v)
	req := *r
	p, err := v.Authenticate(req.Header, time.Now(), l.opts.JWKS)
	if err != nil {
		ae := &jwtauthn.Error{Result: "invalid", Reason: "invalid token"}
		errors.As(err, &ae)
		l.opts.Metrics.JWTDecision(ae.Policy, ae.Result)
		l.log.Debug("request refused: invalid JWT", "remote", req.RemoteAddr, "policy", ae.Policy, "reason", ae.Result)
		w.Header().Set("Www-Authenticate", `Bearer error="invalid_token", error_description="`+ae.Reason+`"`)
		upstream.WriteError(w, req, http.StatusUnauthorized, "weft: "+ae.Reason)
		return false
	}
	if p == nil {
		l.opts.Metrics.JWTDecision("", "no_token")
		return true
	}
	l.opts.Metrics.JWTDecision(p.Policy, "ok")
	// The verified principal, for RequestAuthentication readers and for
	// AuthorizationPolicy (from.requestPrincipals, request.auth.claims).
	*r = req.WithContext(authz.WithAuth(jwtauthn.NewContext(req.Context(), p), p))
	return true
}
