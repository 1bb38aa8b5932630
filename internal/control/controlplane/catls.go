package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/control/ca"
	"weft.dev/weft/internal/control/xds"
)

// caTLS is the control plane's TLS: its serving certificate and the pool
// that verifies client certificates, both following the CA's root
// rotations, plus ca.pem in the data dir.
type caTLS struct {
	authority *ca.CA
	dataDir   string
	log       *slog.Logger
	cur       atomic.Pointer[caTLSState]
}

// caTLSState is one generation of the TLS material; immutable.
type caTLSState struct {
	// version names the signing root and the bundle it was made for.
	version string
	cert    tls.Certificate
	pool    *x509.CertPool
}

func newCATLS(authority *ca.CA, dataDir string, log *slog.Logger) (*caTLS, error) {
	t := &caTLS{authority: authority, dataDir: dataDir, log: log}
	return t, t.refresh()
}

// refresh reissues the serving certificate, the client pool and ca.pem if
// the signing root or the bundle changed.
func (t *caTLS) refresh() error {
	st := t.authority.Status()
	version := st.Signing + "/" + strings.Join(st.Bundle, ",")
	if cur := t.cur.Load(); cur != nil && cur.version == version {
		return nil
	}
	bundle := t.authority.Bundle()
	if err := connfile.WriteFileAtomic(filepath.Join(t.dataDir, connfile.BundleFile), connfile.EncodePEMCerts(bundle), 0o644); err != nil {
		return fmt.Errorf("writing trust bundle: %w", err)
	}
	cert, err := t.authority.ServerCertificate([]string{ServerName, "localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	if err != nil {
		return fmt.Errorf("issuing control plane certificate: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range bundle {
		pool.AddCert(c)
	}
	if t.cur.Load() != nil {
		t.log.Info("trust bundle changed", "phase", st.Phase, "signing_root", st.Signing, "bundle", st.Bundle)
	}
	t.cur.Store(&caTLSState{version: version, cert: *cert, pool: pool})
	return nil
}

// run follows the CA's phases until ctx ends.
func (t *caTLS) run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := t.refresh(); err != nil {
				t.log.Error("following the CA's root rotation", "err", err)
			}
		}
	}
}

// config is a server TLS configuration offering nextProtos with the current
// certificate; client certificates are optional in the handshake (the CA's
// Sign comes before a proxy has one) and verified against the current bundle.
func (t *caTLS) config(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			s := t.cur.Load()
			return &tls.Config{
				Certificates: []tls.Certificate{s.cert},
				ClientAuth:   tls.VerifyClientCertIfGiven,
				ClientCAs:    s.pool,
				MinVersion:   tls.VersionTLS12,
				NextProtos:   nextProtos,
			}, nil
		},
	}
}

// rotateHandler serves GET (status) and POST (start a rotation whose
// phases last phase each) of /api/v1/ca/rotation.
func (t *caTLS) rotateHandler(phase time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, `{"error":"GET or POST only"}`, http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		st := t.authority.Status()
		if r.Method == http.MethodPost {
			var err error
			if st, err = t.authority.Rotate(phase); err != nil {
				w.WriteHeader(http.StatusConflict)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
				return
			}
			if err := t.refresh(); err != nil {
				t.log.Error("after starting a root rotation", "err", err)
			}
		}
		_ = json.NewEncoder(w).Encode(st)
	})
}

// ProxyStatus is a connected proxy as GET /api/v1/proxies lists it.
type ProxyStatus struct {
	xds.ProxyStatus
	// Root is the serial (hex) of the root that signed the last
	// certificate issued to the proxy's identity ("" if none since the
	// control plane started): the progress of a root rotation.
	Root string `json:"root,omitempty"`
}

func withRoots(ps []xds.ProxyStatus, authority *ca.CA) []ProxyStatus {
	out := make([]ProxyStatus, len(ps))
	for i, p := range ps {
		out[i] = ProxyStatus{ProxyStatus: p, Root: authority.IssuedRoot(p.Identity)}
	}
	return out
}
