package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// ServiceAccountCertOU is the Subject OrganizationalUnit of a certificate
// issued for a Kubernetes service-account token (instead of the
// weft-token OU of a join token). The CA never copies a CSR's subject, so
// only the CA can set it.
const ServiceAccountCertOU = "weft-identity:kubernetes-serviceaccount"

// CredentialServiceAccount is the credential label of
// weft_ca_certificates_issued_total for a first certificate obtained with
// a service-account token.
const CredentialServiceAccount = "serviceaccount"

// ErrCredentialUnavailable is wrapped by a ServiceAccountAuthenticator's
// error when the credential could not be checked (the API server is
// unreachable or refuses the control plane); the CA answers
// codes.Unavailable and the caller retries.
var ErrCredentialUnavailable = errors.New("credential could not be checked")

// ServiceAccount is a Kubernetes service account a token proved.
type ServiceAccount struct {
	Namespace string
	Name      string
	// Expires is the token's expiry, zero if unknown.
	Expires time.Time
}

// ServiceAccountAuthenticator checks Kubernetes service-account
// credentials for the CA (package kube/saidentity implements it with the
// TokenReview API). An error that wraps ErrCredentialUnavailable means
// "could not check"; any other error refuses the credential.
type ServiceAccountAuthenticator interface {
	// AuthenticateServiceAccount verifies a bearer token and returns the
	// service account it was issued to.
	AuthenticateServiceAccount(ctx context.Context, token string) (ServiceAccount, error)
	// ServiceAccountExists returns nil if the service account still
	// exists; renewals of a service-account certificate check it.
	ServiceAccountExists(ctx context.Context, namespace, name string) error
}

// IssuedForServiceAccount reports whether the CA issued leaf for a
// service-account token (it carries ServiceAccountCertOU).
func IssuedForServiceAccount(leaf *x509.Certificate) bool {
	return leaf != nil && slices.Contains(leaf.Subject.OrganizationalUnit, ServiceAccountCertOU)
}

// serviceAccountGrant authenticates a bearer service-account token: the
// grant is exactly its namespace and service account.
func (s *service) serviceAccountGrant(ctx context.Context, token string) (Grant, error) {
	sa, err := s.sa.AuthenticateServiceAccount(ctx, token)
	if err != nil {
		return Grant{}, saRefusal(ReasonServiceAccountToken, err)
	}
	return Grant{Namespace: sa.Namespace, ServiceAccount: sa.Name, ServiceAccountToken: true}, nil
}

// serviceAccountRenewal allows exactly the identity of a still-valid
// certificate issued for a service-account token, if that service account
// still exists.
func (s *service) serviceAccountRenewal(ctx context.Context, leaf *x509.Certificate) (Grant, error) {
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return Grant{}, refuse(ReasonClientCert, "client certificate: %w", err)
	}
	if s.sa == nil {
		return Grant{}, refuse(ReasonClientCert, "client certificate %s was issued for a Kubernetes service-account token, but this control plane does not run with --identity kubernetes", id)
	}
	if now := s.ca.now(); now.After(leaf.NotAfter) {
		return Grant{}, refuse(ReasonClientCert, "client certificate %s expired at %s; start the workload again with a service-account token", id, leaf.NotAfter.Format(time.RFC3339))
	}
	ns, name, err := WorkloadNames(id)
	if err != nil {
		return Grant{}, refuse(ReasonClientCert, "client certificate %s: %w", id, err)
	}
	if err := s.sa.ServiceAccountExists(ctx, ns, name); err != nil {
		return Grant{}, saRefusal(ReasonServiceAccountGone, err)
	}
	return Grant{Namespace: ns, ServiceAccount: name, ID: id, ServiceAccountToken: true}, nil
}

// saRefusal is a refusal with reason, or ReasonCredentialUnavailable if
// err could not check the credential.
func saRefusal(reason string, err error) error {
	if errors.Is(err, ErrCredentialUnavailable) {
		reason = ReasonCredentialUnavailable
	}
	return &RefusalError{Reason: reason, Err: fmt.Errorf("kubernetes identity: %w", err)}
}
