package api

import (
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// maxOutlierThreshold bounds the consecutive-failure thresholds.
const maxOutlierThreshold = 1000

// maxSessionTimeout bounds session persistence timeouts (they travel as
// uint32 milliseconds).
const maxSessionTimeout = 1000 * time.Hour

// validateBalancer checks the consistentHash and outlierDetection of a
// DestinationPolicy spec at p.
func validateBalancer(e *errs, p fieldPath, s *DestinationPolicySpec) {
	hashing := s.LoadBalancer == LBRingHash || s.LoadBalancer == LBMaglev
	chp := p.child("consistentHash")
	switch ch := s.ConsistentHash; {
	case hashing && ch == nil:
		e.add(chp, "required by loadBalancer %s", s.LoadBalancer)
	case !hashing && ch != nil:
		e.add(chp, "only applies to loadBalancer RING_HASH or MAGLEV, got %q", s.LoadBalancer)
	case ch != nil:
		n := 0
		if ch.Header != "" {
			n++
			if !validHeaderName(ch.Header) {
				e.add(chp.child("header"), "invalid header name %q", ch.Header)
			}
		}
		if ch.Cookie != nil {
			n++
			if !validHeaderName(ch.Cookie.Name) {
				e.add(chp.child("cookie").child("name"), "invalid cookie name %q", ch.Cookie.Name)
			}
		}
		if ch.QueryParameter != "" {
			n++
			if len(ch.QueryParameter) > 256 {
				e.add(chp.child("queryParameter"), "at most 256 bytes")
			}
		}
		if ch.SourceIdentity {
			n++
		}
		if n != 1 {
			e.add(chp, "exactly one of header, cookie, queryParameter and sourceIdentity must be set, got %d", n)
		}
		if ch.VirtualNodes != 0 && (s.LoadBalancer != LBRingHash || ch.VirtualNodes < weftv1.MinVirtualNodes || ch.VirtualNodes > weftv1.MaxVirtualNodes) {
			e.add(chp.child("virtualNodes"), "must be between %d and %d, with loadBalancer RING_HASH", weftv1.MinVirtualNodes, weftv1.MaxVirtualNodes)
		}
		if ch.MaglevTableSize != 0 && (s.LoadBalancer != LBMaglev || ch.MaglevTableSize < weftv1.MinMaglevTable || ch.MaglevTableSize > weftv1.MaxMaglevTable || !isPrime(ch.MaglevTableSize)) {
			e.add(chp.child("maglevTableSize"), "must be a prime between %d and %d, with loadBalancer MAGLEV", weftv1.MinMaglevTable, weftv1.MaxMaglevTable)
		}
	}
	validateOutlier(e, p.child("outlierDetection"), s.OutlierDetection)
}

// validateMeshBalancer checks the balancer fields of MeshConfig defaults.
func validateMeshBalancer(e *errs, p fieldPath, d *MeshDefaults) {
	if d.LoadBalancer == LBRingHash || d.LoadBalancer == LBMaglev {
		e.add(p.child("loadBalancer"), "%s needs a hash key: set it per service in a DestinationPolicy", d.LoadBalancer)
	}
	validateOutlier(e, p.child("outlierDetection"), d.OutlierDetection)
}

func validateOutlier(e *errs, p fieldPath, od *OutlierDetection) {
	if od == nil {
		return
	}
	for _, t := range []struct {
		name string
		v    *int32
	}{{"consecutive5xx", od.Consecutive5xx}, {"consecutiveGatewayErrors", od.ConsecutiveGatewayErrors}, {"consecutiveConnectFailures", od.ConsecutiveConnectFailures}} {
		if t.v != nil && (*t.v < 0 || *t.v > maxOutlierThreshold) {
			e.add(p.child(t.name), "must be between 0 and %d", maxOutlierThreshold)
		}
	}
	validDuration(e, p.child("interval"), od.Interval)
	validDuration(e, p.child("baseEjectionTime"), od.BaseEjectionTime)
	validDuration(e, p.child("maxEjectionTime"), od.MaxEjectionTime)
	maxD := time.Duration(weftv1.MaxEjectionMs) * time.Millisecond
	for _, f := range []struct{ name, v string }{{"interval", od.Interval}, {"baseEjectionTime", od.BaseEjectionTime}, {"maxEjectionTime", od.MaxEjectionTime}} {
		if d, err := time.ParseDuration(f.v); err == nil && (d > maxD || d > 0 && d < time.Millisecond) {
			e.add(p.child(f.name), "must be between 1ms and %s", maxD)
		}
	}
	base, _ := time.ParseDuration(od.BaseEjectionTime)
	maxE, _ := time.ParseDuration(od.MaxEjectionTime)
	if base > 0 && maxE > 0 && maxE < base {
		e.add(p.child("maxEjectionTime"), "must not be shorter than baseEjectionTime (%s)", od.BaseEjectionTime)
	}
	if od.MaxEjectionPercent < 0 || od.MaxEjectionPercent > 100 {
		e.add(p.child("maxEjectionPercent"), "must be between 0 and 100")
	}
}

// validateSessionPersistence checks a route rule's sessionPersistence.
func validateSessionPersistence(e *errs, p fieldPath, sp *gatewayv1.SessionPersistence) {
	if sp == nil {
		return
	}
	if sp.SessionName != nil && (len(*sp.SessionName) > 128 || !validHeaderName(*sp.SessionName)) {
		e.add(p.child("sessionName"), "must be a valid cookie or header name of at most 128 characters, got %q", *sp.SessionName)
	}
	if sp.Type != nil && *sp.Type != gatewayv1.CookieBasedSessionPersistence && *sp.Type != gatewayv1.HeaderBasedSessionPersistence {
		e.add(p.child("type"), "must be Cookie or Header, got %q", *sp.Type)
	}
	abs, absOK := validateGatewayDuration(e, p.child("absoluteTimeout"), sp.AbsoluteTimeout)
	if time.Duration(abs) > maxSessionTimeout {
		e.add(p.child("absoluteTimeout"), "must be at most %s", maxSessionTimeout)
	}
	if cc := sp.CookieConfig; cc != nil {
		if sp.Type != nil && *sp.Type == gatewayv1.HeaderBasedSessionPersistence {
			e.add(p.child("cookieConfig"), "only applies to type Cookie")
		}
		if lt := cc.LifetimeType; lt != nil {
			switch *lt {
			case gatewayv1.SessionCookieLifetimeType:
			case gatewayv1.PermanentCookieLifetimeType:
				if !absOK || abs == 0 {
					e.add(p.child("absoluteTimeout"), "required when cookieConfig.lifetimeType is Permanent")
				}
			default:
				e.add(p.child("cookieConfig").child("lifetimeType"), "must be Session or Permanent, got %q", *lt)
			}
		}
	}
}

func isPrime(n int32) bool {
	if n < 2 {
		return false
	}
	for d := int32(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
