package sidecar

import (
	"context"
	"log/slog"
	"time"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/inbound"
	"weft.dev/weft/internal/proxy/jwtauthn"
	"weft.dev/weft/internal/xdsapi/weftv1"
	"weft.dev/weft/internal/xdsmeta"
)

// withJWT gives the inbound listener the RequestAuthentications of w's
// service: the verifier compiled with the service's latest resource, and a
// JWKS cache (verified TLS against the system roots) for jwksUri rules.
// The caller must run the returned function.
func withJWT(o inbound.Options, p config.Provider, w xdsmeta.Workload, log *slog.Logger) (inbound.Options, func(context.Context)) {
	key := weftv1.ResourceName(w.Service, w.Namespace)
	o.JWT = func() *jwtauthn.Verifier {
		if s := p.Load().Services[key]; s != nil {
			return s.JWT
		}
		return nil
	}
	cache := jwtauthn.NewJWKSCache(jwtauthn.CacheOptions{Logger: log.With("component", "jwks")})
	o.JWKS = cache
	current := o.JWT
	return o, func(ctx context.Context) {
		// Tell the cache about a new verifier within a second of its push,
		// so that its key sets are fetched before its first token.
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					cache.Use(current())
				}
			}
		}()
		cache.Run(ctx)
	}
}
