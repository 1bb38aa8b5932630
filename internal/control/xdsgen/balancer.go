package xdsgen

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Outlier detection of every service without a policy that says otherwise
// (docs/traffic/outlier-detection.md).
const (
	defaultOutlierConsecutiveGatewayErrors   = 5
	defaultOutlierConsecutiveConnectFailures = 5
	defaultOutlierBaseEjection               = 30 * time.Second
	defaultOutlierMaxEjection                = 300 * time.Second
	defaultOutlierMaxEjectionPercent         = 50
	defaultOutlierInterval                   = 10 * time.Second
)

// lbPolicy is the load balancing of one service: algorithm, hash key and
// outlier detection. It is comparable, so that Routings compare.
type lbPolicy struct {
	lb      weftv1.LoadBalancer
	hash    hashKey
	outlier outlierPolicy
}

// hashKey is weftv1.ConsistentHash as a comparable value; set is false
// for algorithms that do not hash.
type hashKey struct {
	set                   bool
	header, cookie, query string
	source                bool
	size                  uint32
}

// outlierPolicy is weftv1.OutlierDetection as a comparable value; set is
// false when detection is off.
type outlierPolicy struct {
	set                                        bool
	c5xx, gateway, connect                     uint32
	baseMs, maxMs, intervalMs, maxEjectPercent uint32
}

// loadBalancers returns the policy each DestinationPolicy selects, by
// service key, and the MeshConfig default for every other service: P2C_EWMA
// with the default outlier detection unless the MeshConfig says otherwise.
func loadBalancers(cfg *api.Set) (map[string]lbPolicy, lbPolicy) {
	def := lbPolicy{lb: weftv1.LoadBalancer_P2C_EWMA, outlier: outlierFrom(nil)}
	if mc := cfg.MeshConfig; mc != nil && mc.Spec.Defaults != nil {
		def.lb = lbFromString(mc.Spec.Defaults.LoadBalancer, def.lb)
		if od := mc.Spec.Defaults.OutlierDetection; od != nil {
			def.outlier = outlierFrom(od)
		}
	}
	out := map[string]lbPolicy{}
	for _, dp := range cfg.DestinationPolicies {
		out[policyTarget(dp).key()] = destinationLB(dp, def)
	}
	return out, def
}

// destinationLB is the policy of a DestinationPolicy's target; what it
// leaves unset comes from def.
func destinationLB(dp *api.DestinationPolicy, def lbPolicy) lbPolicy {
	p := lbPolicy{lb: lbFromString(dp.Spec.LoadBalancer, def.lb), outlier: def.outlier}
	if ch := dp.Spec.ConsistentHash; ch != nil && (p.lb == weftv1.LoadBalancer_RING_HASH || p.lb == weftv1.LoadBalancer_MAGLEV) {
		p.hash = hashKey{set: true, header: ch.Header, query: ch.QueryParameter, source: ch.SourceIdentity}
		if ch.Cookie != nil {
			p.hash.cookie = ch.Cookie.Name
		}
		p.hash.size = uint32(ch.VirtualNodes)
		if p.lb == weftv1.LoadBalancer_MAGLEV {
			p.hash.size = uint32(ch.MaglevTableSize)
		}
	}
	if od := dp.Spec.OutlierDetection; od != nil {
		p.outlier = outlierFrom(od)
	}
	return p
}

func lbFromString(s string, def weftv1.LoadBalancer) weftv1.LoadBalancer {
	if v, ok := weftv1.LoadBalancer_value[strings.ToUpper(s)]; ok {
		return weftv1.LoadBalancer(v)
	}
	return def
}

// outlierFrom fills in the defaults of od (nil: all defaults).
func outlierFrom(od *api.OutlierDetection) outlierPolicy {
	if od == nil {
		od = &api.OutlierDetection{}
	}
	if od.Disabled {
		return outlierPolicy{}
	}
	threshold := func(v *int32, def uint32) uint32 {
		if v == nil {
			return def
		}
		return uint32(*v)
	}
	ms := func(s string, def time.Duration) uint32 {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			return uint32(d / time.Millisecond)
		}
		return uint32(def / time.Millisecond)
	}
	p := outlierPolicy{
		set:             true,
		c5xx:            threshold(od.Consecutive5xx, 0),
		gateway:         threshold(od.ConsecutiveGatewayErrors, defaultOutlierConsecutiveGatewayErrors),
		connect:         threshold(od.ConsecutiveConnectFailures, defaultOutlierConsecutiveConnectFailures),
		baseMs:          ms(od.BaseEjectionTime, defaultOutlierBaseEjection),
		maxMs:           ms(od.MaxEjectionTime, defaultOutlierMaxEjection),
		intervalMs:      ms(od.Interval, defaultOutlierInterval),
		maxEjectPercent: uint32(od.MaxEjectionPercent),
	}
	if p.maxEjectPercent == 0 {
		p.maxEjectPercent = defaultOutlierMaxEjectionPercent
	}
	// A base ejection time above the default maximum raises the maximum
	// (validation refuses an explicit maximum below the base).
	p.maxMs = max(p.maxMs, p.baseMs)
	if p.c5xx == 0 && p.gateway == 0 && p.connect == 0 {
		return outlierPolicy{}
	}
	return p
}

// apply sets p's consistent hash and outlier detection on svc (its
// algorithm is set with the other fields).
func (p lbPolicy) apply(svc *weftv1.Service) {
	if h := p.hash; h.set {
		svc.ConsistentHash = &weftv1.ConsistentHash{Header: h.header, Cookie: h.cookie, QueryParameter: h.query, SourceIdentity: h.source, TableSize: h.size}
	}
	if o := p.outlier; o.set {
		svc.OutlierDetection = &weftv1.OutlierDetection{
			Consecutive_5Xx: o.c5xx, ConsecutiveGatewayErrors: o.gateway, ConsecutiveConnectFailures: o.connect,
			BaseEjectionMs: o.baseMs, MaxEjectionMs: o.maxMs, IntervalMs: o.intervalMs, MaxEjectionPercent: o.maxEjectPercent,
		}
	}
}

// sessionPersistence translates a rule's sessionPersistence (GEP-1619);
// name is the rule's route name, from which the default session name is
// made, so that two rules never share a cookie.
func sessionPersistence(name string, sp *gatewayv1.SessionPersistence) *weftv1.SessionPersistence {
	if sp == nil {
		return nil
	}
	out := &weftv1.SessionPersistence{}
	if sp.Type != nil && *sp.Type == gatewayv1.HeaderBasedSessionPersistence {
		out.Type = weftv1.SessionPersistence_HEADER
	}
	if sp.SessionName != nil && *sp.SessionName != "" {
		out.Name = *sp.SessionName
	} else {
		h := fnv.New32a()
		h.Write([]byte(name))
		out.Name = fmt.Sprintf("weft-session-%08x", h.Sum32())
	}
	if sp.AbsoluteTimeout != nil {
		if d, err := time.ParseDuration(string(*sp.AbsoluteTimeout)); err == nil {
			out.AbsoluteTimeoutMs = uint32(d / time.Millisecond)
		}
	}
	if cc := sp.CookieConfig; cc != nil && cc.LifetimeType != nil && *cc.LifetimeType == gatewayv1.PermanentCookieLifetimeType {
		out.Permanent = true
	}
	return out
}
