package jwtauthn

import (
	"time"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// RulesFromProto converts the JWT rules of a weft Service resource
// (validated by weftv1.ValidateService) for Compile.
func RulesFromProto(in []*weftv1.JwtRule) []Rule {
	out := make([]Rule, 0, len(in))
	for _, r := range in {
		rule := Rule{
			Policy:               r.GetPolicy(),
			Issuer:               r.GetIssuer(),
			Audiences:            r.GetAudiences(),
			JWKSURI:              r.GetJwksUri(),
			ForwardOriginalToken: r.GetForwardOriginalToken(),
			ClockSkew:            time.Duration(r.GetClockSkewMs()) * time.Millisecond,
		}
		if r.GetJwks() != "" {
			rule.JWKS = []byte(r.GetJwks())
		}
		for _, h := range r.GetFromHeaders() {
			rule.FromHeaders = append(rule.FromHeaders, Header{Name: h.GetName(), Prefix: h.GetPrefix()})
		}
		for _, c := range r.GetOutputClaimToHeaders() {
			rule.OutputClaimToHeaders = append(rule.OutputClaimToHeaders, ClaimHeader{Header: c.GetHeader(), Claim: c.GetClaim()})
		}
		out = append(out, rule)
	}
	return out
}
