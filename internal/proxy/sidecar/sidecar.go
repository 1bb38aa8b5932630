// Package sidecar assembles a weft proxy: it obtains the workload identity,
// connects to the control plane over xDS, and runs the inbound, outbound and
// admin listeners until its context ends.
package sidecar

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/proxy/admin"
	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/inbound"
	"weft.dev/weft/internal/proxy/outbound"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/proxy/textpages"
	"weft.dev/weft/internal/proxy/xdsclient"
	"weft.dev/weft/internal/xdsmeta"
)

// controlServerName is the name the control plane's certificate is verified
// against, whatever address is dialled.
const controlServerName = "weft-control"

// Options configure a sidecar.
type Options struct {
	// Control is host:port of the control plane's xDS/CA endpoint.
	Control string
	// Bundle is the trust bundle used to verify the control plane before
	// the first certificate arrives.
	Bundle []*x509.Certificate
	// Token is the join token presented to the CA.
	Token string
	// Workload describes this proxy's workload; Address is filled in from
	// the inbound listener.
	Workload xdsmeta.Workload
	// AppPort is the local app's port; 0 for a workload that only calls.
	AppPort int
	// AppProtocol is what the app speaks on AppPort ("" is http).
	AppProtocol inbound.AppProtocol
	// InboundListen, OutboundListen and AdminListen are host:port; port 0
	// picks a free one.
	InboundListen, OutboundListen, AdminListen string
	Logger                                     *slog.Logger
	// Ready is called once the sidecar has its certificate and first
	// config and serves on all listeners.
	Ready func(Addrs)
}

// Addrs are the actual listener addresses.
type Addrs struct {
	Inbound, Outbound, Admin string
}

// Run serves until ctx ends.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	inLn, err := net.Listen("tcp", opts.InboundListen)
	if err != nil {
		return fmt.Errorf("inbound listener: %w", err)
	}
	defer inLn.Close()
	outLn, err := net.Listen("tcp", opts.OutboundListen)
	if err != nil {
		return fmt.Errorf("outbound listener: %w", err)
	}
	defer outLn.Close()
	adminLn, err := net.Listen("tcp", opts.AdminListen)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	defer adminLn.Close()
	addrs := Addrs{Inbound: inLn.Addr().String(), Outbound: outLn.Addr().String(), Admin: adminLn.Addr().String()}

	w := opts.Workload
	if opts.AppPort != 0 {
		w.Address = addrs.Inbound
	}
	if err := w.Validate(); err != nil {
		return fmt.Errorf("workload: %w", err)
	}

	roots := x509.NewCertPool()
	for _, c := range opts.Bundle {
		roots.AddCert(c)
	}
	src := &identity.Source{}
	kp := grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 3 * time.Second, PermitWithoutStream: true})
	// The CA connection authenticates the server only; the caller proves
	// itself with the join token.
	caConn, err := grpc.NewClient(opts.Control, kp, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: roots, ServerName: controlServerName, MinVersion: tls.VersionTLS12,
	})))
	if err != nil {
		return fmt.Errorf("control plane %s: %w", opts.Control, err)
	}
	defer caConn.Close()
	// The xDS connection is mutual TLS with the workload certificate.
	xdsConn, err := grpc.NewClient(opts.Control, kp, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		ServerName: controlServerName,
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			svid, err := src.GetX509SVID()
			if err != nil {
				return &tls.Certificate{}, nil
			}
			cert := &tls.Certificate{PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
			for _, c := range svid.Certificates {
				cert.Certificate = append(cert.Certificate, c.Raw)
			}
			return cert, nil
		},
		// Verify against the current bundle, which may have been updated
		// since start.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServer(cs, src.Roots(), roots)
		},
	})))
	if err != nil {
		return fmt.Errorf("control plane %s: %w", opts.Control, err)
	}
	defer xdsConn.Close()

	id, err := spiffeid.FromPathf(spiffeid.RequireTrustDomainFromString(trustDomainOf(opts.Bundle)), "/ns/%s/sa/%s", w.Namespace, w.ServiceAccount)
	if err != nil {
		return fmt.Errorf("workload identity: %w", err)
	}
	fetcher := &identity.Fetcher{Conn: caConn, Token: opts.Token, ID: id}
	if err := fetchWithRetry(ctx, fetcher, src, log); err != nil {
		return err
	}
	log.Info("got workload certificate", "id", src.ID().String(), "expires", src.Expiry().Format(time.RFC3339))

	nodeID := w.Service + "-" + randomSuffix()
	xc, err := xdsclient.New(xdsclient.Options{Conn: xdsConn, NodeID: nodeID, Workload: w, Logger: log.With("component", "xds")})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := telemetry.New(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	in, err := inbound.New(inbound.Options{Logger: log.With("component", "inbound"), Identity: src, Metrics: metrics, ServiceName: w.Service, Namespace: w.Namespace, AppPort: opts.AppPort, AppProtocol: opts.AppProtocol})
	if err != nil {
		return err
	}
	out, err := outbound.New(outbound.Options{Logger: log.With("component", "outbound"), Provider: xc, Identity: src, Metrics: metrics, ServiceName: w.Service, Namespace: w.Namespace})
	if err != nil {
		return err
	}
	adminSrv := &http.Server{
		Handler: admin.New(reg, func() error { return ready(src, xc) }, func() any {
			return map[string]any{"identity": src.Status(), "xds": xc.Dump()}
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return xc.Run(gctx) })
	g.Go(func() error { fetcher.Rotate(gctx, src, log); return nil })
	g.Go(func() error { return in.Serve(gctx, inLn) })
	g.Go(func() error { return out.Serve(gctx, outLn) })
	g.Go(func() error {
		go func() {
			<-gctx.Done()
			_ = adminSrv.Close()
		}()
		if err := adminSrv.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("admin server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for ready(src, xc) != nil {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
		}
		log.Info("sidecar ready", "inbound", addrs.Inbound, "outbound", addrs.Outbound, "admin", addrs.Admin, "node", nodeID)
		if opts.Ready != nil {
			opts.Ready(addrs)
		}
		// Startup ran the initialisers of the whole weft binary; hand
		// its garbage back to the OS and drop the code pages only it
		// touched, so the resident set is the proxy's own.
		debug.FreeOSMemory()
		if st, err := textpages.Release(); err != nil {
			log.Warn("releasing startup code pages", "err", err)
		} else {
			log.Debug("released startup code pages", "mappings", st.Mappings, "bytes", st.Bytes)
		}
		return nil
	})
	return g.Wait()
}

func ready(src *identity.Source, xc *xdsclient.Client) error {
	if _, err := src.GetX509SVID(); err != nil {
		return err
	}
	if time.Now().After(src.Expiry()) {
		return errors.New("workload certificate expired")
	}
	return xc.Ready()
}

// verifyServer checks the control plane's certificate against the current
// bundle, falling back to the bundle the sidecar started with.
func verifyServer(cs tls.ConnectionState, pools ...*x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("control plane presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	var err error
	for _, pool := range pools {
		_, err = cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: controlServerName})
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("verifying control plane certificate: %w", err)
}

func fetchWithRetry(ctx context.Context, f *identity.Fetcher, src *identity.Source, log *slog.Logger) error {
	backoff := 200 * time.Millisecond
	for {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f.Fetch(fctx, src)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c := status.Code(err); c == codes.Unauthenticated || c == codes.InvalidArgument || c == codes.PermissionDenied {
			return fmt.Errorf("control plane refused the certificate request: %w", err)
		}
		log.Warn("cannot get a workload certificate yet; retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// trustDomainOf reads the trust domain from the root's SPIFFE URI SAN.
func trustDomainOf(bundle []*x509.Certificate) string {
	for _, c := range bundle {
		for _, u := range c.URIs {
			if u.Scheme == "spiffe" && u.Host != "" {
				return u.Host
			}
		}
	}
	return "cluster.local"
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
