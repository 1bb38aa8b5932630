package api

// More load-balancing algorithms (see docs/traffic/load-balancing.md).
const (
	// LBP2CEWMA is power of two choices over peak-EWMA latency, the
	// default.
	LBP2CEWMA = "P2C_EWMA"
	// LBRingHash is consistent hashing on a ring; needs consistentHash.
	LBRingHash = "RING_HASH"
	// LBMaglev is consistent hashing with a Maglev table; needs
	// consistentHash.
	LBMaglev = "MAGLEV"
)

// ConsistentHash is what RING_HASH and MAGLEV hash: exactly one of header,
// cookie, queryParameter and sourceIdentity.
//
//	loadBalancer: RING_HASH
//	consistentHash: {header: x-user, virtualNodes: 256}
type ConsistentHash struct {
	// Header is a request header name; its first value is hashed.
	Header string `json:"header,omitempty"`
	// Cookie is a request cookie.
	Cookie *HashCookie `json:"cookie,omitempty"`
	// QueryParameter is a URL query parameter name.
	QueryParameter string `json:"queryParameter,omitempty"`
	// SourceIdentity hashes the caller's SPIFFE ID: every request of one
	// client workload goes to one endpoint.
	SourceIdentity bool `json:"sourceIdentity,omitempty"`
	// VirtualNodes is the number of points of each endpoint on the
	// RING_HASH ring, 1..4096 (default 256): more spread keys more evenly.
	VirtualNodes int32 `json:"virtualNodes,omitempty"`
	// MaglevTableSize is the Maglev table size, a prime 251..5000011
	// (default 65537).
	MaglevTableSize int32 `json:"maglevTableSize,omitempty"`
}

// HashCookie names the cookie consistent hashing hashes. A request without
// the cookie is spread at random; weft does not generate the cookie (use
// an HTTPRoute sessionPersistence for that).
type HashCookie struct {
	// Name of the cookie. Required.
	Name string `json:"name"`
}
