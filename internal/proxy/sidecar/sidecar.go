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
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/appprobe"
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
	// TokenFile, if set, replaces Token: a Kubernetes service-account
	// token file, read again at every request that needs a token.
	TokenFile string
	// Workload describes this proxy's workload; Address is filled in from
	// the inbound listener.
	Workload xdsmeta.Workload
	// AppPort is the local app's port; 0 for a workload that only calls.
	AppPort int
	// AppProtocol is what the app speaks on AppPort ("" is http).
	AppProtocol inbound.AppProtocol
	// EgressGateway makes the proxy an egress gateway (weft run --egress):
	// its inbound listener serves the service by passing requests to its
	// own outbound listener, which calls the external hosts they name.
	// AppPort must be 0.
	EgressGateway bool
	// InboundListen, OutboundListen and AdminListen are host:port; port 0
	// picks a free one.
	InboundListen, OutboundListen, AdminListen string
	// Upstreams are the declared TCP upstreams, each served on a listener
	// of its own on 127.0.0.1 (upstreams.go).
	Upstreams []outbound.Upstream
	// HTTP bounds what the listeners accept (limits.go).
	HTTP   HTTPLimits
	Logger *slog.Logger
	// AccessLog receives the access log's JSON lines (default os.Stdout);
	// which requests get one is each service's access log mode.
	AccessLog io.Writer
	// Ready is called once the sidecar has its certificate and first
	// config and serves on all listeners.
	Ready func(Addrs)

	// StartupTimeout bounds the wait for the first certificate and config;
	// Run then fails with the last cause. 0 waits for ever.
	StartupTimeout time.Duration
	// DrainTimeout bounds a graceful stop (default DefaultDrainTimeout):
	// when ctx ends, the sidecar deregisters, then waits until no request
	// reached the inbound listener for DrainQuiet (default
	// DefaultDrainQuiet) and none is in flight, or DrainTimeout passed.
	DrainTimeout, DrainQuiet time.Duration
	// Drained, if set, is called once the inbound listener has drained
	// and stopped, before the outbound and admin listeners stop: `weft
	// run` stops the app there, so the app's own calls still go out.
	Drained func()
	// Transparent, if set, captures the app's TCP with iptables
	// (transparent.go).
	Transparent *Transparent
	// AppGone, if set and true when ctx ends, skips the wait: the app
	// cannot serve, so the sidecar deregisters and closes the inbound
	// listener at once and peers retry their requests elsewhere.
	AppGone func() bool
	// Gateway, if set, makes this proxy the ingress gateway named like its
	// service (gateway.go).
	Gateway *GatewayOptions
	// HealthListen, if set, is host:port of the health server kubelet
	// probes in a pod: /ready, and the app's probes AppProbes forwarded
	// over loopback (package appprobe).
	HealthListen string
	// AppProbes are the app's original HTTP probes (from injection).
	AppProbes appprobe.Probes
}

// Addrs are the actual listener addresses.
type Addrs struct {
	Inbound, Outbound, Admin string
	// Upstreams are the addresses of the TCP upstream listeners, in the
	// order of Options.Upstreams.
	Upstreams []string
}

// Run serves until ctx ends, then stops gracefully: see Options.DrainTimeout
// and Options.Drained.
func Run(ctx context.Context, opts Options) error {
	if err := opts.HTTP.Validate(); err != nil {
		return err
	}
	log := opts.Logger
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.DrainQuiet <= 0 {
		opts.DrainQuiet = DefaultDrainQuiet
	}
	startCtx, cancelStart := context.WithCancel(ctx)
	defer cancelStart()
	if opts.StartupTimeout > 0 {
		startCtx, cancelStart = context.WithTimeoutCause(ctx, opts.StartupTimeout, errStartupTimeout)
		defer cancelStart()
	}
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
	var healthLn net.Listener
	if opts.HealthListen != "" {
		if healthLn, err = net.Listen("tcp", opts.HealthListen); err != nil {
			return fmt.Errorf("health listener: %w", err)
		}
		defer healthLn.Close()
	}
	upLns, err := listenUpstreams(opts.Upstreams) // upstreams.go
	if err != nil {
		return err
	}
	defer closeAll(upLns)
	addrs := Addrs{Inbound: inLn.Addr().String(), Outbound: outLn.Addr().String(), Admin: adminLn.Addr().String(), Upstreams: listenAddrs(upLns)}

	w := opts.Workload
	w.Admin = addrs.Admin
	if opts.EgressGateway {
		if opts.AppPort != 0 {
			return errors.New("an egress gateway has no app: AppPort must be 0")
		}
		opts.AppPort = outLn.Addr().(*net.TCPAddr).Port // its "app" is its outbound listener
	}
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
	// gRPC's own reconnect backoff (1 s growing to 120 s by default) would
	// hold the channel down long after the control plane is back; keep it
	// as short as the xDS client's.
	cp := grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: xdsclient.DefaultBackoffBase / 2, Multiplier: 1.6, Jitter: 0.2, MaxDelay: xdsclient.DefaultBackoffMax},
		MinConnectTimeout: 5 * time.Second,
	})
	// The CA connection authenticates the server only; the caller proves
	// itself with the join token.
	caConn, err := grpc.NewClient(opts.Control, kp, cp, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: roots, ServerName: controlServerName, MinVersion: tls.VersionTLS12,
	})))
	if err != nil {
		return fmt.Errorf("control plane %s: %w", opts.Control, err)
	}
	defer caConn.Close()
	// The xDS connection is mutual TLS with the workload certificate.
	xdsConn, err := grpc.NewClient(opts.Control, kp, cp, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
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
	// Renewals present the current certificate instead of the token, on a
	// connection of their own.
	fetcher := &identity.Fetcher{Conn: caConn, Token: opts.Token, TokenFile: opts.TokenFile, ID: id, RenewTarget: opts.Control,
		RenewTLS: &tls.Config{RootCAs: roots, ServerName: controlServerName, MinVersion: tls.VersionTLS12}}
	if err := fetchWithRetry(startCtx, fetcher, src, log); err != nil {
		if errors.Is(context.Cause(startCtx), errStartupTimeout) && ctx.Err() == nil {
			return fmt.Errorf("no workload certificate from the control plane at %s after %s: %w", opts.Control, opts.StartupTimeout, err)
		}
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	log.Info("got workload certificate", "id", src.ID().String(), "expires", src.Expiry().Format(time.RFC3339))

	nodeID := w.Service + "-" + randomSuffix()
	xc, err := xdsclient.New(xdsclient.Options{Conn: xdsConn, NodeID: nodeID, Workload: w, Logger: log.With("component", "xds"), Gateway: gatewayResource(opts, w)})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := telemetry.New(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	obs, err := newObservability(ctx, reg, metrics, src, xc, w, opts.AccessLog) // observe.go
	if err != nil {
		return err
	}
	inOpts, runJWKS := withJWT(opts.HTTP.applyInbound(inbound.Options{Logger: log.With("component", "inbound"), Identity: src, Metrics: metrics, AccessLog: obs.log, Tap: obs.tap, Tracer: obs.tracer, Version: w.Version, Provider: xc, ServiceName: w.Service, Namespace: w.Namespace, AppPort: opts.AppPort, AppProtocol: opts.AppProtocol, Authz: authzView(xc, w)}), xc, w, log)
	in, err := inbound.New(inOpts)
	if err != nil {
		return err
	}
	out, err := outbound.New(opts.HTTP.applyOutbound(outbound.Options{Logger: log.With("component", "outbound"), Provider: xc, Identity: src, Metrics: metrics, AccessLog: obs.log, Tap: obs.tap, Tracer: obs.tracer, ServiceName: w.Service, Namespace: w.Namespace, EgressGateway: opts.EgressGateway}))
	if err != nil {
		return err
	}
	capt, err := startTransparent(ctx, opts, inLn, out, metrics, log) // transparent.go
	if err != nil {
		return err
	}
	defer capt.stop()
	var draining atomic.Bool // set when the graceful stop begins
	readyFn := func() error {
		if draining.Load() {
			return errors.New("draining: the workload is leaving the mesh")
		}
		return ready(src, xc)
	}
	adminSrv := &http.Server{
		Handler: admin.New(reg, readyFn, func() any {
			return map[string]any{"identity": src.Status(), "xds": xc.Dump(), "ejectedEndpoints": out.Ejected(), "upstreams": upstreamDump(opts.Upstreams, addrs.Upstreams)}
		}, func() any { return xc.ConnState() }, obs.tap),
		ReadHeaderTimeout: 5 * time.Second,
	}

	// Components stop in three steps (see stop): the xDS stream first,
	// which deregisters the workload; the inbound listener once drained;
	// the rest after Drained.
	g, gctx := errgroup.WithContext(context.WithoutCancel(ctx))
	xdsCtx, stopXDS := context.WithCancel(gctx)
	defer stopXDS()
	inCtx, stopIn := context.WithCancel(gctx)
	defer stopIn()
	restCtx, stopRest := context.WithCancel(gctx)
	defer stopRest()
	g.Go(func() error { return xc.Run(xdsCtx) })
	g.Go(func() error { fetcher.Rotate(restCtx, src, log); return nil })
	g.Go(func() error { runJWKS(restCtx); return nil })
	g.Go(func() error { obs.log.Run(restCtx); return nil })
	g.Go(func() error { obs.followTracing(restCtx, xc, w, log); return nil }) // observe.go
	defer obs.flushTraces(log)
	g.Go(func() error { return in.Serve(inCtx, inLn) })
	g.Go(func() error { return out.Serve(restCtx, outLn) })
	serveUpstreams(restCtx, g, out, opts.Upstreams, upLns) // upstreams.go
	g.Go(func() error { return capt.serve(restCtx, out) })
	g.Go(func() error { return serveGateway(restCtx, opts, xc, out, metrics, log) }) // gateway.go
	if opts.HealthListen != "" {
		healthSrv := &http.Server{Handler: appprobe.Handler(readyFn, opts.AppProbes), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			go func() {
				<-restCtx.Done()
				_ = healthSrv.Close()
			}()
			if err := healthSrv.Serve(healthLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("health server: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		go func() {
			<-restCtx.Done()
			_ = adminSrv.Close()
		}()
		if err := adminSrv.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("admin server: %w", err)
		}
		return nil
	})
	var serving atomic.Bool // set once ready
	g.Go(func() error {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for ready(src, xc) != nil {
			select {
			case <-restCtx.Done():
				return nil
			case <-startCtx.Done():
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("not ready after %s: %w", opts.StartupTimeout, notReady(src, xc))
			case <-t.C:
			}
		}
		cancelStart()
		serving.Store(true)
		log.Info("sidecar ready", "inbound", addrs.Inbound, "outbound", addrs.Outbound, "admin", addrs.Admin, "node", nodeID)
		logUpstreams(log, opts.Upstreams, addrs.Upstreams)
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

	select {
	case <-ctx.Done():
		draining.Store(true)
		stop(gctx, opts, serving.Load(), in, stopXDS, stopIn, log)
	case <-gctx.Done(): // a component failed
	}
	stopRest()
	return g.Wait()
}

// stop drains the inbound listener of a proxy whose ctx ended: it
// deregisters the workload by closing the xDS stream (the control plane
// then pushes the endpoint's removal to the proxies calling it), marks the
// inbound draining so peers close their pooled connections, waits until
// they have stopped sending and nothing is in flight (bounded by
// DrainTimeout), stops the inbound listener and calls Drained. It returns
// early if a component fails (gctx).
func stop(gctx context.Context, opts Options, serving bool, in *inbound.Listener, stopXDS, stopIn func(), log *slog.Logger) {
	start := time.Now()
	in.StartDrain()
	stopXDS()
	switch {
	case opts.AppPort == 0 || !serving:
		// Nothing was registered to receive traffic.
	case opts.AppGone != nil && opts.AppGone():
		log.Info("app exited: deregistered; closing the inbound listener now")
	default:
		log.Info("draining: deregistered; waiting for peers to stop sending", "quiet", opts.DrainQuiet, "timeout", opts.DrainTimeout)
		out := drainer{Timeout: opts.DrainTimeout, Quiet: opts.DrainQuiet, Activity: in.Activity, Gone: opts.AppGone}.wait(gctx, start)
		switch {
		case out.AppGone:
			log.Warn("app exited during the drain; closing the inbound listener now", "in_flight", out.InFlight)
		case out.Quiet:
			log.Info("drained", "took", time.Since(start).Round(time.Millisecond))
		default:
			log.Warn("drain timed out with peers still sending or requests in flight; closing the inbound listener", "timeout", opts.DrainTimeout, "in_flight", out.InFlight)
		}
		if !out.AppGone {
			// GOAWAY on the HTTP/2 connections peers left idle.
			sctx, cancel := context.WithTimeout(gctx, time.Second)
			if err := in.Shutdown(sctx); err != nil {
				log.Debug("inbound graceful shutdown", "err", err)
			}
			cancel()
		}
	}
	stopIn()
	if opts.Drained != nil {
		opts.Drained()
	}
}

// errStartupTimeout is the cause of the startup context's end when
// Options.StartupTimeout passes.
var errStartupTimeout = errors.New("startup timeout")

// notReady explains why the sidecar is not ready, with the cause of the
// last failed attempt to reach the control plane.
func notReady(src *identity.Source, xc *xdsclient.Client) error {
	err := ready(src, xc)
	if err == nil {
		return errors.New("ready just now")
	}
	if st := xc.ConnState(); st.LastError != "" {
		return fmt.Errorf("%w (%d failed attempts, last: %s)", err, st.FailedAttempts, st.LastError)
	}
	return err
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
	bo := xdsclient.Backoff{Base: xdsclient.DefaultBackoffBase, Max: xdsclient.DefaultBackoffMax}
	fl := &xdsclient.FailureLog{Logger: log}
	for {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f.Fetch(fctx, src)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return errors.New(xdsclient.Cause(err))
		}
		if c := status.Code(err); c == codes.Unauthenticated || c == codes.InvalidArgument || c == codes.PermissionDenied {
			return fmt.Errorf("control plane refused the certificate request: %w", err)
		}
		wait := bo.Next()
		fl.Failed("cannot get a workload certificate from the control plane yet; retrying", xdsclient.Cause(err), "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return errors.New(xdsclient.Cause(err))
		case <-time.After(wait):
		}
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
