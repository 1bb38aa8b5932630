package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestIdentityFlags: --identity and its cluster are checked, naming the
// flag at fault.
func TestIdentityFlags(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	bad := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(bad, []byte("not: [a kubeconfig"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args    []string
		wantErr string // "" : no authenticator, no error
	}{
		{args: nil},
		{args: []string{"--identity", "join-token"}},
		{args: []string{"--identity", "spiffe"}, wantErr: `--identity "spiffe"`},
		{args: []string{"--identity", "kubernetes", "--kubeconfig", bad}, wantErr: "--kubeconfig"},
		{args: []string{"--identity", "kubernetes", "--kubeconfig", filepath.Join(t.TempDir(), "missing")}, wantErr: "--kubeconfig"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			k := addKubeStoreFlags(fs)
			i := addIdentityFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			a, err := i.authenticator(k)
			if tt.wantErr == "" {
				if err != nil || a != nil {
					t.Fatalf("authenticator() = %v, %v; want nil, nil (join tokens)", a, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("authenticator() error = %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

// TestSATokenFileFlag: --sa-token-file is passed to the sidecar as a file
// to re-read, and refused when it cannot work.
func TestSATokenFileFlag(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	empty := filepath.Join(dir, "empty")
	for name, body := range map[string]string{good: "eyJhbGciOi.x.y\n", empty: "\n"} {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"--sa-token-file", good}},
		{args: []string{"--sa-token-file", good, "--token-file", good}, wantErr: "exclude each other"},
		{args: []string{"--sa-token-file", filepath.Join(dir, "missing")}, wantErr: "--sa-token-file"},
		{args: []string{"--sa-token-file", empty}, wantErr: "is empty"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := &sidecarFlags{}
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			f.register(fs, [3]int{})
			if err := fs.Parse(append([]string{"--service", "web", "--ca-file", caPEM(t)}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			o, err := f.options(&globalFlags{dataDir: dir, control: "127.0.0.1:1"})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("options() = %v, want an error naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.TokenFile != good || o.Token != "eyJhbGciOi.x.y" {
				t.Errorf("TokenFile %q Token %q, want %q and its contents", o.TokenFile, o.Token, good)
			}
		})
	}
}

// caPEM writes a self-signed CA certificate for --ca-file.
func caPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
