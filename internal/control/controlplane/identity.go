package controlplane

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"weft.dev/weft/internal/control/ca"
	"weft.dev/weft/internal/control/tokens"
	"weft.dev/weft/internal/control/xds"
)

// xdsScope is the credential check of proxies' xDS streams. With the
// Kubernetes identity only certificates issued for a service-account
// token register, and Options.Membership, if set, decides whether the
// account (the certificate's SPIFFE ID) may be in the mesh and which
// services it may join; else the join token named in the certificate
// decides.
func xdsScope(opts Options, joinTokens *tokens.Store) xds.ScopeFunc {
	if opts.ServiceAccounts == nil {
		return joinTokens.Scope
	}
	m := opts.Membership
	return func(leaf *x509.Certificate) (xds.Scope, error) {
		if !ca.IssuedForServiceAccount(leaf) {
			return xds.Scope{}, errors.New("certificate was not issued for a Kubernetes service-account token, the only credential of --identity kubernetes")
		}
		if m == nil {
			return xds.Scope{}, nil
		}
		ns, sa, err := serviceAccountOf(leaf)
		if err != nil {
			return xds.Scope{}, err
		}
		if err := m.Live(ns, sa); err != nil {
			return xds.Scope{}, err
		}
		return xds.Scope{Service: func(service string) error { return m.Member(ns, sa, service) }}, nil
	}
}

// serviceAccountOf reads namespace and service account from leaf's
// SPIFFE ID (spiffe://<td>/ns/<ns>/sa/<sa>).
func serviceAccountOf(leaf *x509.Certificate) (namespace, serviceAccount string, err error) {
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return "", "", fmt.Errorf("certificate: %w", err)
	}
	if namespace, serviceAccount, err = ca.WorkloadNames(id); err != nil {
		return "", "", fmt.Errorf("certificate: SPIFFE ID %s: %w", id, err)
	}
	return namespace, serviceAccount, nil
}
