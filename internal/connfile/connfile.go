// Package connfile reads and writes the files through which every weft command
// finds the control plane on one machine: the connection file, the trust bundle
// and the tokens that `weft control` writes into its data dir.
package connfile

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File names inside the data dir.
const (
	ConnectionFile = "control.json"
	BundleFile     = "ca.pem"
	JoinTokenFile  = "join-token"
	AdminTokenFile = "admin-token"
	StoreFile      = "weft.db"
)

// DefaultDataDir is the data dir every command uses when --data-dir is not
// given: $WEFT_DATA_DIR, else $XDG_DATA_HOME/weft, else ~/.local/share/weft.
func DefaultDataDir() string {
	if d := os.Getenv("WEFT_DATA_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "weft")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "weft")
	}
	return ".weft"
}

// Connection is what a client needs to reach a control plane.
type Connection struct {
	// XDS is host:port of the gRPC endpoint (ADS and CA), TLS: the one
	// of the replica that wrote the file.
	XDS string `json:"xds"`
	// XDSAddresses, when the control plane has several replicas, lists
	// the xDS address of every replica known to the one that wrote the
	// file (XDS among them). Files of older versions, and of a single
	// control plane, have only XDS.
	XDSAddresses []string `json:"xdsAddresses,omitempty"`
	// API is host:port of the HTTPS API used by the CLI and dashboard.
	API string `json:"api"`
	// TrustDomain is the mesh trust domain.
	TrustDomain string `json:"trustDomain"`
	// PID of the control plane that wrote the file.
	PID int `json:"pid"`
}

// Addresses are the xDS addresses a proxy may connect to: XDSAddresses,
// else XDS alone.
func (c Connection) Addresses() []string {
	if len(c.XDSAddresses) > 0 {
		return append([]string(nil), c.XDSAddresses...)
	}
	if c.XDS == "" {
		return nil
	}
	return []string{c.XDS}
}

// Write stores c into dir atomically.
func Write(dir string, c Connection) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, ConnectionFile), append(b, '\n'), 0o644)
}

// Read loads the connection file from dir.
func Read(dir string) (Connection, error) {
	var c Connection
	b, err := os.ReadFile(filepath.Join(dir, ConnectionFile))
	if errors.Is(err, os.ErrNotExist) {
		return c, fmt.Errorf("no control plane found: %s does not exist (start `weft control --data-dir %s` or pass --control)", filepath.Join(dir, ConnectionFile), dir)
	}
	if err != nil {
		return c, fmt.Errorf("reading connection file: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("parsing %s: %w", filepath.Join(dir, ConnectionFile), err)
	}
	return c, nil
}

// ReadToken reads a token file (join-token or admin-token) from dir.
func ReadToken(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ReadBundle reads the PEM trust bundle from dir.
func ReadBundle(dir string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(filepath.Join(dir, BundleFile))
	if err != nil {
		return nil, fmt.Errorf("reading trust bundle: %w", err)
	}
	return ParsePEMCerts(b)
}

// ParsePEMCerts parses every CERTIFICATE block in b.
func ParsePEMCerts(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificates in PEM data")
	}
	return certs, nil
}

// EncodePEMCerts encodes certs as PEM CERTIFICATE blocks.
func EncodePEMCerts(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// WriteFileAtomic writes data to path through a temporary file and rename.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
