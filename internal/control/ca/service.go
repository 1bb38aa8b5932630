package ca

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// NewToken returns a new join token: 32 random bytes, base64url without
// padding.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating join token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

type service struct {
	weftv1.UnimplementedCertificateAuthorityServer
	ca    *CA
	token []byte
	ttl   time.Duration
}

// NewService exposes c over gRPC. Callers authenticate with the join token
// in the "authorization: Bearer <token>" metadata (an empty joinToken
// rejects every call); certificates are valid for ttl (DefaultTTL if <= 0).
// Errors: codes.Unauthenticated for a missing or wrong token,
// codes.InvalidArgument naming the problem for a bad CSR.
func NewService(c *CA, joinToken string, ttl time.Duration) weftv1.CertificateAuthorityServer {
	return &service{ca: c, token: []byte(joinToken), ttl: ttl}
}

var _ weftv1.CertificateAuthorityServer = (*service)(nil)

func (s *service) Sign(ctx context.Context, req *weftv1.SignRequest) (*weftv1.SignResponse, error) {
	if err := s.authenticate(ctx); err != nil {
		return nil, err
	}
	if len(req.GetCsrDer()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "csr_der is empty")
	}
	chain, id, err := s.ca.SignCSR(req.GetCsrDer(), s.ttl)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
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
	s.ca.logger.Debug("signed certificate", "spiffe_id", resp.SpiffeId, "not_after", chain[0].NotAfter)
	return resp, nil
}

func (s *service) authenticate(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return status.Error(codes.Unauthenticated, "missing authorization metadata: want \"Bearer <join token>\"")
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return status.Error(codes.Unauthenticated, "authorization metadata is not \"Bearer <join token>\"")
	}
	if len(s.token) == 0 || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), s.token) != 1 {
		return status.Error(codes.Unauthenticated, "invalid join token")
	}
	return nil
}
