package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNewAuthorityExternalFlags: incomplete or unreadable --ca-* flags are
// refused at start with an error naming the flag.
func TestNewAuthorityExternalFlags(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name string
		f    ExternalCAFiles
		want string
	}{
		{"cert without key", ExternalCAFiles{Cert: junk}, "--ca-cert and --ca-key go together"},
		{"chain alone", ExternalCAFiles{Chain: junk}, "--ca-cert and --ca-key go together"},
		{"unreadable cert", ExternalCAFiles{Cert: missing, Key: junk}, "--ca-cert"},
		{"unreadable key", ExternalCAFiles{Cert: junk, Key: missing}, "--ca-key"},
		{"unreadable chain", ExternalCAFiles{Cert: junk, Key: junk, Chain: missing}, "--ca-chain"},
		{"not a certificate", ExternalCAFiles{Cert: junk, Key: junk}, "--ca-cert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newAuthority(context.Background(), nil, Options{TrustDomain: "cluster.local", ExternalCA: tc.f}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("newAuthority: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
