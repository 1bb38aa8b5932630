package weftv1

import (
	"fmt"
	"math/big"
)

// Bounds of ConsistentHash.table_size.
const (
	MinVirtualNodes = 1
	MaxVirtualNodes = 4096
	MinMaglevTable  = 251
	MaxMaglevTable  = 5000011
)

// MaxEjectionMs bounds the ejection times of OutlierDetection (one hour).
const MaxEjectionMs = 3600000

// validateBalancer checks the consistent-hash and outlier-detection fields
// of s.
func validateBalancer(s *Service) error {
	lb := s.GetLoadBalancer()
	ch := s.GetConsistentHash()
	hashing := lb == LoadBalancer_RING_HASH || lb == LoadBalancer_MAGLEV
	switch {
	case hashing && ch == nil:
		return fmt.Errorf("consistent_hash: required by load_balancer %s", lb)
	case !hashing && ch != nil:
		return fmt.Errorf("consistent_hash: set, but load_balancer %s does not hash", lb)
	}
	if ch != nil {
		n := 0
		for _, set := range []bool{ch.GetHeader() != "", ch.GetCookie() != "", ch.GetQueryParameter() != "", ch.GetSourceIdentity()} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("consistent_hash: exactly one of header, cookie, query_parameter and source_identity must be set, got %d", n)
		}
		if size := ch.GetTableSize(); size != 0 {
			if lb == LoadBalancer_RING_HASH && (size < MinVirtualNodes || size > MaxVirtualNodes) {
				return fmt.Errorf("consistent_hash.table_size: %d virtual nodes per endpoint not in %d..%d", size, MinVirtualNodes, MaxVirtualNodes)
			}
			if lb == LoadBalancer_MAGLEV && (size < MinMaglevTable || size > MaxMaglevTable || !big.NewInt(int64(size)).ProbablyPrime(0)) {
				return fmt.Errorf("consistent_hash.table_size: Maglev table size %d must be a prime in %d..%d", size, MinMaglevTable, MaxMaglevTable)
			}
		}
	}
	if od := s.GetOutlierDetection(); od != nil {
		if od.GetMaxEjectionPercent() > 100 {
			return fmt.Errorf("outlier_detection.max_ejection_percent: %d exceeds 100", od.GetMaxEjectionPercent())
		}
		if od.GetBaseEjectionMs() == 0 || od.GetBaseEjectionMs() > MaxEjectionMs {
			return fmt.Errorf("outlier_detection.base_ejection_ms: %d not in 1..%d", od.GetBaseEjectionMs(), MaxEjectionMs)
		}
		if od.GetMaxEjectionMs() < od.GetBaseEjectionMs() || od.GetMaxEjectionMs() > MaxEjectionMs {
			return fmt.Errorf("outlier_detection.max_ejection_ms: %d not in base_ejection_ms..%d", od.GetMaxEjectionMs(), MaxEjectionMs)
		}
		if od.GetIntervalMs() == 0 || od.GetIntervalMs() > MaxEjectionMs {
			return fmt.Errorf("outlier_detection.interval_ms: %d not in 1..%d", od.GetIntervalMs(), MaxEjectionMs)
		}
	}
	for i, r := range s.GetRoutes() {
		sp := r.GetSessionPersistence()
		if sp == nil {
			continue
		}
		if _, ok := SessionPersistence_Type_name[int32(sp.GetType())]; !ok {
			return fmt.Errorf("routes[%d].session_persistence.type: unknown type %d", i, sp.GetType())
		}
		if n := sp.GetName(); len(n) > 256 || !validToken(n) {
			return fmt.Errorf("routes[%d].session_persistence.name: %q is not a valid cookie or header name", i, sp.GetName())
		}
		if sp.GetPermanent() && sp.GetAbsoluteTimeoutMs() == 0 {
			return fmt.Errorf("routes[%d].session_persistence.permanent: needs absolute_timeout_ms", i)
		}
	}
	return nil
}
