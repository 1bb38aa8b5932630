package ca

import (
	"errors"
	"fmt"
)

// Reasons of a refusal: the values of the reason label of
// weft_ca_refusals_total.
const (
	// ReasonNoCredential: neither a client certificate nor a join token.
	ReasonNoCredential = "no_credential"
	// ReasonInvalidToken: a malformed, old-format or unknown token, or a
	// wrong secret.
	ReasonInvalidToken = "invalid_token"
	// ReasonTokenRevoked: the token (presented, or named in the client
	// certificate) was revoked.
	ReasonTokenRevoked = "token_revoked"
	// ReasonTokenExpired: the token's TTL has passed.
	ReasonTokenExpired = "token_expired"
	// ReasonClientCert: a client certificate that cannot renew (expired,
	// not an SVID, or not issued for a token).
	ReasonClientCert = "invalid_client_cert"
	// ReasonCSRMalformed: the CSR does not parse or its signature is wrong.
	ReasonCSRMalformed = "csr_malformed"
	// ReasonWeakKey: the CSR's key is weaker than P-256 or of a refused type.
	ReasonWeakKey = "weak_key"
	// ReasonSAN: DNS, IP or email SANs, or not exactly one URI SAN.
	ReasonSAN = "san"
	// ReasonSPIFFEID: the URI SAN is not a workload SPIFFE ID
	// (/ns/<ns>/sa/<sa>).
	ReasonSPIFFEID = "spiffe_id"
	// ReasonTrustDomain: the SPIFFE ID is in a foreign trust domain.
	ReasonTrustDomain = "trust_domain"
	// ReasonNamespace: a namespace the token does not allow.
	ReasonNamespace = "namespace"
	// ReasonServiceAccount: a service account the token does not allow.
	ReasonServiceAccount = "service_account"
	// ReasonControlIdentity: the control plane's own namespace.
	ReasonControlIdentity = "control_identity"
	// ReasonRenewalIdentity: a renewal CSR for another ID than the client
	// certificate's.
	ReasonRenewalIdentity = "renewal_identity"
	// ReasonServiceAccountToken: a Kubernetes service-account token the
	// TokenReview API (or weft's checks of its answer) refused, or a join
	// token under --identity kubernetes.
	ReasonServiceAccountToken = "invalid_sa_token"
	// ReasonServiceAccountGone: a renewal for a service account that no
	// longer exists.
	ReasonServiceAccountGone = "service_account_gone"
	// ReasonCredentialUnavailable: the credential could not be checked
	// (the Kubernetes API server is unreachable); the caller may retry.
	ReasonCredentialUnavailable = "credential_unavailable"
)

// reasons lists every Reason, so that each counter exists from the start.
var reasons = []string{
	ReasonNoCredential, ReasonInvalidToken, ReasonTokenRevoked, ReasonTokenExpired, ReasonClientCert,
	ReasonCSRMalformed, ReasonWeakKey, ReasonSAN, ReasonSPIFFEID, ReasonTrustDomain,
	ReasonNamespace, ReasonServiceAccount, ReasonControlIdentity, ReasonRenewalIdentity,
	ReasonServiceAccountToken, ReasonServiceAccountGone, ReasonCredentialUnavailable,
}

// RefusalError is a certificate request the CA refused, with the reason.
type RefusalError struct {
	// Reason is one of the Reason constants.
	Reason string
	Err    error
}

func (e *RefusalError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *RefusalError) Unwrap() error { return e.Err }

func refuse(reason, format string, args ...any) error {
	return &RefusalError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// reasonOf is the reason of err, or "" if err is not a refusal.
func reasonOf(err error) string {
	var re *RefusalError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}
