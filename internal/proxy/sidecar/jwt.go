package sidecar

import (
	"log/slog"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/inbound"
	"weft.dev/weft/internal/proxy/jwtauthn"
	"weft.dev/weft/internal/xdsapi/weftv1"
	"weft.dev/weft/internal/xdsmeta"
)

// withJWT gives the inbound listener the RequestAuthentications of w's
// service: the verifier compiled with the service's latest resource, and a
// JWKS cache (verified TLS against the system roots) for jwksUri rules,
// which the caller must Run.
func withJWT(o inbound.Options, p config.Provider, w xdsmeta.Workload, log *slog.Logger) (inbound.Options, *jwtauthn.JWKSCache) {
	key := weftv1.ResourceName(w.Service, w.Namespace)
	o.JWT = func() *jwtauthn.Verifier {
		if s := p.Load().Services[key]; s != nil {
			return s.JWT
		}
		return nil
	}
	o.JWKS = jwtauthn.NewJWKSCache(jwtauthn.CacheOptions{Logger: log.With("component", "jwks")})
	return o, o.JWKS
}
