package config

import (
	"net/http"
	"time"

	"weft.dev/weft/internal/proxy/outlier"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// More load-balancing algorithms (the values match weftv1.LoadBalancer).
const (
	// P2CEWMA is power of two choices over peak-EWMA latency times
	// requests in flight (the control plane's default).
	P2CEWMA LoadBalancer = 3
	// RingHash is consistent hashing on a ring of virtual nodes.
	RingHash LoadBalancer = 4
	// Maglev is consistent hashing with a Maglev lookup table.
	Maglev LoadBalancer = 5
)

// Default consistent-hash table sizes.
const (
	DefaultVirtualNodes = 256
	DefaultMaglevTable  = 65537
)

// Hashing reports whether lb is a consistent-hash algorithm.
func (lb LoadBalancer) Hashing() bool { return lb == RingHash || lb == Maglev }

// Balancer is what a service's load balancing needs beyond its algorithm:
// the consistent-hash key and table size, and outlier detection.
type Balancer struct {
	// Hash is the key of RingHash and Maglev; nil for other algorithms.
	Hash *HashKey
	// TableSize is the number of virtual nodes per endpoint (RingHash) or
	// the Maglev table size.
	TableSize int
	// Outlier is the service's outlier detection (zero: none).
	Outlier outlier.Policy
}

// HashKey is what consistent hashing hashes; exactly one field is set.
type HashKey struct {
	Header         string // canonical form
	Cookie         string
	QueryParameter string
	SourceIdentity bool
}

// SessionPersistence is a route rule's GEP-1619 session persistence.
type SessionPersistence struct {
	// Header: the token travels in a header named Name, else in a cookie.
	Header    bool
	Name      string
	Absolute  time.Duration // 0: none
	Permanent bool
}

// buildBalancer compiles the consistent-hash and outlier fields of s
// (checked by weftv1.ValidateService); nil when s has neither.
func buildBalancer(s *weftv1.Service) *Balancer {
	ch, od := s.GetConsistentHash(), s.GetOutlierDetection()
	if ch == nil && od == nil {
		return nil
	}
	b := &Balancer{}
	if ch != nil {
		b.Hash = &HashKey{Cookie: ch.GetCookie(), QueryParameter: ch.GetQueryParameter(), SourceIdentity: ch.GetSourceIdentity()}
		if h := ch.GetHeader(); h != "" {
			b.Hash.Header = http.CanonicalHeaderKey(h)
		}
		b.TableSize = int(ch.GetTableSize())
		if b.TableSize == 0 {
			b.TableSize = DefaultVirtualNodes
			if s.GetLoadBalancer() == weftv1.LoadBalancer_MAGLEV {
				b.TableSize = DefaultMaglevTable
			}
		}
	}
	if od != nil {
		b.Outlier = outlier.Policy{
			Consecutive5xx:             int32(od.GetConsecutive_5Xx()),
			ConsecutiveGatewayErrors:   int32(od.GetConsecutiveGatewayErrors()),
			ConsecutiveConnectFailures: int32(od.GetConsecutiveConnectFailures()),
			BaseEjection:               time.Duration(od.GetBaseEjectionMs()) * time.Millisecond,
			MaxEjection:                time.Duration(od.GetMaxEjectionMs()) * time.Millisecond,
			MaxEjectionPercent:         int32(od.GetMaxEjectionPercent()),
			Interval:                   time.Duration(od.GetIntervalMs()) * time.Millisecond,
		}
	}
	return b
}

// buildSession compiles a route's session persistence; nil when none.
func buildSession(r *weftv1.Route) *SessionPersistence {
	sp := r.GetSessionPersistence()
	if sp == nil {
		return nil
	}
	return &SessionPersistence{
		Header:    sp.GetType() == weftv1.SessionPersistence_HEADER,
		Name:      sp.GetName(),
		Absolute:  time.Duration(sp.GetAbsoluteTimeoutMs()) * time.Millisecond,
		Permanent: sp.GetPermanent(),
	}
}
