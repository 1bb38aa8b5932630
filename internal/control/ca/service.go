package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/control/tokens"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// NewToken returns a new random secret: 32 random bytes, base64url without
// padding. The control plane uses it for its admin token.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ServiceOptions configure NewService.
type ServiceOptions struct {
	// Tokens are the join tokens callers authenticate with. Required
	// unless ServiceAccounts is set.
	Tokens *tokens.Store
	// ServiceAccounts, if set, turns on the Kubernetes identity
	// (--identity kubernetes): a bearer credential is a service-account
	// token checked by it, its grant is exactly ns/<ns>/sa/<sa>, and join
	// tokens are refused, also for renewals of certificates issued for
	// one.
	ServiceAccounts ServiceAccountAuthenticator
	// TTL is the lifetime of issued certificates (DefaultTTL if <= 0).
	TTL time.Duration
	// Registerer, if set, receives weft_ca_refusals_total{reason} and
	// weft_ca_certificates_issued_total{credential}.
	Registerer prometheus.Registerer
	// Logger logs refusals (warn) and issued certificates (debug).
	Logger *slog.Logger
}

type service struct {
	weftv1.UnimplementedCertificateAuthorityServer
	ca       *CA
	tokens   *tokens.Store
	sa       ServiceAccountAuthenticator
	ttl      time.Duration
	log      *slog.Logger
	refusals *prometheus.CounterVec
	issued   *prometheus.CounterVec
}

// NewService exposes c over gRPC.
//
// A caller proves what it may ask for in one of two ways:
//
//   - First certificate: the join token in the "authorization: Bearer
//     <id>.<secret>" metadata. The CSR may ask for an identity in the
//     token's namespace (and service account, if the token names one).
//   - Renewal: its current, unexpired mesh certificate as the TLS client
//     certificate of the call (a token, if also sent, is ignored). The CSR
//     must ask for exactly the certificate's SPIFFE ID, and the token the
//     certificate was issued for must still be active.
//
// Every certificate records its token (tokens.CertOU), so renewals inherit
// it.
//
// With opts.ServiceAccounts set (the Kubernetes identity) the first
// certificate is requested with "authorization: Bearer <service-account
// token>" instead, and the grant is exactly the SPIFFE ID
// ns/<namespace>/sa/<service account> of the token. Such certificates
// carry ServiceAccountCertOU; their renewal needs the client certificate
// and that the service account still exists. Join tokens, and renewals of
// certificates issued for one, are refused. Errors: codes.Unauthenticated for a missing or unusable credential,
// codes.PermissionDenied for an identity the credential does not allow,
// codes.InvalidArgument for a bad CSR; each refusal is logged with its
// reason and counted.
func NewService(c *CA, opts ServiceOptions) (weftv1.CertificateAuthorityServer, error) {
	if opts.Tokens == nil && opts.ServiceAccounts == nil {
		return nil, errors.New("ca: NewService without a token store or service-account authenticator")
	}
	s := &service{
		ca: c, tokens: opts.Tokens, sa: opts.ServiceAccounts, ttl: opts.TTL, log: opts.Logger,
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_ca_refusals_total",
			Help: "Certificate requests the CA refused, by reason.",
		}, []string{"reason"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_ca_certificates_issued_total",
			Help: "Certificates the CA issued, by the credential of the request (token: first certificate with a join token, serviceaccount: first certificate with a Kubernetes service-account token, certificate: renewal).",
		}, []string{"credential"}),
	}
	if s.log == nil {
		s.log = c.logger
	}
	for _, r := range reasons {
		s.refusals.WithLabelValues(r)
	}
	s.issued.WithLabelValues("token")
	s.issued.WithLabelValues("certificate")
	s.issued.WithLabelValues(CredentialServiceAccount)
	if opts.Registerer != nil {
		for _, col := range []prometheus.Collector{s.refusals, s.issued} {
			if err := opts.Registerer.Register(col); err != nil {
				return nil, fmt.Errorf("ca: registering metrics: %w", err)
			}
		}
	}
	return s, nil
}

var _ weftv1.CertificateAuthorityServer = (*service)(nil)

func (s *service) Sign(ctx context.Context, req *weftv1.SignRequest) (*weftv1.SignResponse, error) {
	g, cred, err := s.grant(ctx)
	if err != nil {
		code := codes.Unauthenticated
		if reasonOf(err) == ReasonCredentialUnavailable {
			code = codes.Unavailable
		}
		return nil, s.refused(ctx, g.TokenID, err, code)
	}
	if len(req.GetCsrDer()) == 0 {
		return nil, s.refused(ctx, g.TokenID, refuse(ReasonCSRMalformed, "csr_der is empty"), codes.InvalidArgument)
	}
	chain, id, err := s.ca.SignCSR(req.GetCsrDer(), s.ttl, g)
	if err != nil {
		code := codes.InvalidArgument
		switch reasonOf(err) {
		case "":
			return nil, status.Error(codes.Internal, err.Error())
		case ReasonNamespace, ReasonServiceAccount, ReasonControlIdentity, ReasonRenewalIdentity:
			code = codes.PermissionDenied
		}
		return nil, s.refused(ctx, g.TokenID, err, code)
	}
	resp := &weftv1.SignResponse{
		SpiffeId:    id.String(),
		TrustDomain: s.ca.TrustDomain().Name(),
	}
	for _, c := range chain {
		resp.CertChainDer = append(resp.CertChainDer, c.Raw)
	}
	for _, c := range s.ca.Bundle() {
		resp.TrustBundleDer = append(resp.TrustBundleDer, c.Raw)
	}
	s.issued.WithLabelValues(cred).Inc()
	s.log.Debug("signed certificate", "spiffe_id", resp.SpiffeId, "grant", g.credential(), "credential", cred, "not_after", chain[0].NotAfter)
	return resp, nil
}

// refused counts and logs a refusal and returns it as a gRPC status.
func (s *service) refused(ctx context.Context, tokenID string, err error, code codes.Code) error {
	reason := reasonOf(err)
	s.refusals.WithLabelValues(reason).Inc()
	from := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		from = p.Addr.String()
	}
	s.log.Warn("refused certificate request", "reason", reason, "err", err.Error(), "token", tokenID, "peer", from)
	return status.Error(code, err.Error())
}

// grant authenticates the caller: a verified client certificate means a
// renewal, else the join token (or, with the Kubernetes identity, the
// service-account token) in the metadata. cred is "certificate", "token"
// or CredentialServiceAccount.
func (s *service) grant(ctx context.Context) (g Grant, cred string, err error) {
	if leaf := clientCert(ctx); leaf != nil {
		if IssuedForServiceAccount(leaf) {
			g, err := s.serviceAccountRenewal(ctx, leaf)
			return g, "certificate", err
		}
		if s.sa != nil {
			return Grant{}, "certificate", refuse(ReasonClientCert, "client certificate was issued for a join token, which --identity kubernetes does not accept; restart the workload with a service-account token")
		}
		g, err := s.renewalGrant(leaf)
		return g, "certificate", err
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return Grant{}, "token", refuse(ReasonNoCredential, "missing credential: present a mesh client certificate (renewal) or \"authorization: Bearer <join token>\" metadata")
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Grant{}, "token", refuse(ReasonNoCredential, "authorization metadata is not \"Bearer <join token>\"")
	}
	if s.sa != nil {
		if _, _, perr := tokens.Parse(tok); perr == nil {
			return Grant{}, CredentialServiceAccount, refuse(ReasonServiceAccountToken, "a join token was presented, but this control plane runs with --identity kubernetes and accepts only Kubernetes service-account tokens (audience of the projected token: see docs/kubernetes/identity.md)")
		}
		g, err := s.serviceAccountGrant(ctx, tok)
		return g, CredentialServiceAccount, err
	}
	t, err := s.tokens.Authenticate(tok)
	if err != nil {
		if id, _, perr := tokens.Parse(tok); perr == nil {
			g.TokenID = id
		}
		return g, "token", tokenRefusal(err)
	}
	return Grant{TokenID: t.ID, Namespace: t.Namespace, ServiceAccount: t.ServiceAccount, NotAfter: t.Expires}, "token", nil
}

// renewalGrant allows exactly the identity of a still-valid certificate
// whose token is still active.
func (s *service) renewalGrant(leaf *x509.Certificate) (Grant, error) {
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return Grant{}, refuse(ReasonClientCert, "client certificate: %w", err)
	}
	if now := s.ca.now(); now.After(leaf.NotAfter) {
		return Grant{}, refuse(ReasonClientCert, "client certificate %s expired at %s; start the workload again with a join token", id, leaf.NotAfter.Format(time.RFC3339))
	}
	tokID, err := tokens.IDFromCert(leaf)
	if err != nil {
		return Grant{}, refuse(ReasonClientCert, "client certificate %s cannot renew: %w", id, err)
	}
	t, err := s.tokens.Active(tokID)
	if err != nil {
		return Grant{TokenID: tokID}, tokenRefusal(err)
	}
	return Grant{TokenID: t.ID, Namespace: t.Namespace, ServiceAccount: t.ServiceAccount, ID: id, NotAfter: t.Expires}, nil
}

// tokenRefusal maps an error of the token store to a refusal.
func tokenRefusal(err error) error {
	reason := ReasonInvalidToken
	switch {
	case errors.Is(err, tokens.ErrRevoked):
		reason = ReasonTokenRevoked
	case errors.Is(err, tokens.ErrExpired):
		reason = ReasonTokenExpired
	}
	return &RefusalError{Reason: reason, Err: err}
}

// clientCert is the verified TLS client certificate of the call, if any.
// The control plane's gRPC server verifies a presented certificate against
// the mesh root (tls.VerifyClientCertIfGiven), so a verified chain is one
// the CA issued.
func clientCert(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return ti.State.VerifiedChains[0][0]
}
