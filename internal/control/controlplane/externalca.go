package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"weft.dev/weft/internal/control/ca"
)

// ExternalCAFiles name the PEM files of an existing PKI's intermediate CA
// (weft control --ca-cert, --ca-key, --ca-chain).
type ExternalCAFiles struct {
	Cert  string
	Key   string
	Chain string
}

// newAuthority is the external CA if opts.ExternalCA names one, else the
// self-made root kept in the store.
func newAuthority(ctx context.Context, p ca.Persistence, opts Options, log *slog.Logger) (*ca.CA, error) {
	f := opts.ExternalCA
	if f.Cert == "" && f.Key == "" && f.Chain == "" {
		return ca.New(ctx, p, opts.TrustDomain, log)
	}
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("--ca-cert and --ca-key go together (--ca-chain is optional)")
	}
	var e ca.External
	var err error
	if e.Cert, err = os.ReadFile(f.Cert); err != nil {
		return nil, fmt.Errorf("--ca-cert: %w", err)
	}
	if e.Key, err = os.ReadFile(f.Key); err != nil {
		return nil, fmt.Errorf("--ca-key: %w", err)
	}
	if f.Chain != "" {
		if e.Chain, err = os.ReadFile(f.Chain); err != nil {
			return nil, fmt.Errorf("--ca-chain: %w", err)
		}
	}
	return ca.NewExternal(ctx, e, opts.TrustDomain, log)
}
