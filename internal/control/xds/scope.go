package xds

import (
	"crypto/x509"
	"net/netip"
)

// Scope is what the credential behind a proxy's certificate allows it to
// register: the join token that the certificate was first issued for, in
// universal mode.
type Scope struct {
	// Services the workload may join (names in its namespace); empty
	// means any service.
	Services []string
	// Addresses are prefixes the workload may register as its inbound
	// address besides the IP its xDS stream comes from.
	Addresses []netip.Prefix
	// Service, if set, must accept the service the workload joins (on
	// Kubernetes: one its pods are members of). It is asked when the
	// workload registers and again on every revalidation, so a workload
	// whose membership ends leaves the mesh.
	Service func(name string) error
}

// ScopeFunc returns the Scope of a proxy's client certificate, or an error
// (unknown, revoked or expired credential) that refuses the stream.
type ScopeFunc func(leaf *x509.Certificate) (Scope, error)
