package controlplane

import (
	"crypto/x509"
	"errors"

	"weft.dev/weft/internal/control/ca"
	"weft.dev/weft/internal/control/tokens"
	"weft.dev/weft/internal/control/xds"
)

// xdsScope is the credential check of proxies' xDS streams. With the
// Kubernetes identity only certificates issued for a service-account
// token register, with no further scope (the SPIFFE ID is the pod's
// service account); else the join token named in the certificate decides.
func xdsScope(opts Options, joinTokens *tokens.Store) xds.ScopeFunc {
	if opts.ServiceAccounts == nil {
		return joinTokens.Scope
	}
	return func(leaf *x509.Certificate) (xds.Scope, error) {
		if !ca.IssuedForServiceAccount(leaf) {
			return xds.Scope{}, errors.New("certificate was not issued for a Kubernetes service-account token, the only credential of --identity kubernetes")
		}
		return xds.Scope{}, nil
	}
}
