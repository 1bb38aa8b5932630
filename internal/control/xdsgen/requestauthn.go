package xdsgen

import (
	"maps"
	"slices"
	"time"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// compileJWT compiles the RequestAuthentications of cfg into the JWT rules
// of each target Service, keyed by Service resource name. The rules of
// several RequestAuthentications for one Service are concatenated in the
// configuration's order (namespace, name); weftv1.ValidateService refuses
// two rules with one issuer.
func compileJWT(cfg *api.Set, only map[serviceRef]bool) map[string][]*weftv1.JwtRule {
	out := map[string][]*weftv1.JwtRule{}
	for _, ra := range cfg.RequestAuthentications {
		t := requestAuthnTarget(ra)
		if only != nil && !only[t] {
			continue
		}
		out[t.key()] = append(out[t.key()], JWTRules(ra)...)
	}
	return out
}

func requestAuthnTarget(ra *api.RequestAuthentication) serviceRef {
	return serviceRef{namespace: ra.Namespace, name: ra.Spec.TargetRef.Name}
}

// JWTRules compiles the rules of one (validated, defaulted)
// RequestAuthentication.
func JWTRules(ra *api.RequestAuthentication) []*weftv1.JwtRule {
	policy := ra.Namespace + "/" + ra.Name
	out := make([]*weftv1.JwtRule, 0, len(ra.Spec.JWTRules))
	for _, r := range ra.Spec.JWTRules {
		jr := &weftv1.JwtRule{
			Policy:               policy,
			Issuer:               r.Issuer,
			Audiences:            r.Audiences,
			Jwks:                 r.JWKS,
			JwksUri:              r.JWKSURI,
			ForwardOriginalToken: r.ForwardOriginalToken,
		}
		if d, err := time.ParseDuration(r.ClockSkew); err == nil && d > 0 {
			jr.ClockSkewMs = uint32(d.Milliseconds())
		}
		hs := r.FromHeaders
		if len(hs) == 0 {
			hs = []api.JWTHeader{{Name: api.DefaultJWTHeader, Prefix: api.DefaultJWTPrefix}}
		}
		for _, h := range hs {
			jr.FromHeaders = append(jr.FromHeaders, &weftv1.JwtHeader{Name: h.Name, Prefix: h.Prefix})
		}
		for _, c := range r.OutputClaimToHeaders {
			jr.OutputClaimToHeaders = append(jr.OutputClaimToHeaders, &weftv1.JwtClaimToHeader{Header: c.Header, Claim: c.Claim})
		}
		out = append(out, jr)
	}
	return out
}

// updateJWT recompiles the JWT rules of the Services whose
// RequestAuthentications changed between r's configuration and cfg; it
// returns the new rules and those Services.
func (r *Routing) updateJWT(cfg *api.Set) (map[string][]*weftv1.JwtRule, []serviceRef) {
	old, cur := api.Changed(r.cfg.RequestAuthentications, cfg.RequestAuthentications)
	if len(old)+len(cur) == 0 {
		return r.jwt, nil
	}
	targets := map[serviceRef]bool{}
	for _, ra := range slices.Concat(old, cur) {
		targets[requestAuthnTarget(ra)] = true
	}
	compiled := compileJWT(cfg, targets)
	next := maps.Clone(r.jwt)
	if next == nil {
		next = map[string][]*weftv1.JwtRule{}
	}
	refs := make([]serviceRef, 0, len(targets))
	for t := range targets {
		refs = append(refs, t)
		if rules, ok := compiled[t.key()]; ok {
			next[t.key()] = rules
		} else {
			delete(next, t.key())
		}
	}
	return next, refs
}
