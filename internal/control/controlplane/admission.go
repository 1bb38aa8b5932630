package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"weft.dev/weft/internal/control/apiserver"
	"weft.dev/weft/internal/control/kube/validation"
	"weft.dev/weft/internal/control/store"
)

// AdmissionOptions serve the Kubernetes validating webhook
// (kube/validation) on an HTTPS listener of its own: the API server asks
// it before storing a weft.dev object, and it answers with the checks of
// `weft apply` against this replica's store.
type AdmissionOptions struct {
	// Listen is the webhook's host:port.
	Listen string
	// CertFile and KeyFile are its serving certificate and key (PEM),
	// signed by the CA in the ValidatingWebhookConfiguration's caBundle.
	CertFile, KeyFile string
}

// admissionServer is the validating webhook's server and listener.
type admissionServer struct {
	srv *http.Server
	ln  net.Listener
}

// newAdmission opens the webhook's listener, so that a bad address or
// certificate stops the control plane at start.
func newAdmission(o *AdmissionOptions, st store.Store, vopts apiserver.Options, reg prometheus.Registerer, log *slog.Logger) (*admissionServer, error) {
	if o.CertFile == "" || o.KeyFile == "" {
		return nil, errors.New("the validating webhook needs a certificate and key (--admission-tls-cert, --admission-tls-key): the API server calls webhooks over HTTPS only")
	}
	cert := &certFiles{certFile: o.CertFile, keyFile: o.KeyFile}
	if err := cert.reload(); err != nil {
		return nil, fmt.Errorf("validating webhook certificate: %w", err)
	}
	h, err := validation.NewHandler(validation.Options{Check: apiserver.NewValidator(st, vopts).Check, Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+validation.Path, h)
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ready\n")) })
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("validating webhook listener: %w", err)
	}
	return &admissionServer{ln: ln, srv: &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{GetCertificate: cert.get, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}}, nil
}

// run serves until ctx ends.
func (a *admissionServer) run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a.srv.Shutdown(shut)
	}()
	if err := a.srv.ServeTLS(a.ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving the validating webhook: %w", err)
	}
	return nil
}

// certFiles serves a certificate from files that may be replaced while it
// runs (a Kubernetes Secret volume is updated in place when the Secret
// changes): each handshake checks the files' modification times and loads
// them again when they changed. A replacement that does not load (a
// half-written pair) keeps the last good certificate.
type certFiles struct {
	certFile, keyFile string

	mu       sync.Mutex
	cert     *tls.Certificate
	modified [2]time.Time
}

func (c *certFiles) reload() error {
	var mod [2]time.Time
	for i, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return err
		}
		mod[i] = fi.ModTime()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && mod == c.modified {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return err
	}
	c.cert, c.modified = &cert, mod
	return nil
}

func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	_ = c.reload() // on error, the last good certificate
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert, nil
}
