// Package controlplane assembles `weft control`: the store, the CA, the
// workload registry, the xDS server and the HTTPS API, and writes the
// connection file through which other commands on the machine find it.
package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/control/apiserver"
	"weft.dev/weft/internal/control/ca"
	"weft.dev/weft/internal/control/dashboard"
	"weft.dev/weft/internal/control/kube/validation"
	"weft.dev/weft/internal/control/registry"
	"weft.dev/weft/internal/control/store"
	"weft.dev/weft/internal/control/tokens"
	"weft.dev/weft/internal/control/xds"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// ServerName is the DNS name in the control plane's certificate that
// clients verify, whatever address they dial.
const ServerName = "weft-control"

// Options configure a control plane.
type Options struct {
	DataDir     string
	XDSListen   string
	APIListen   string
	TrustDomain string
	// CertTTL is the lifetime of workload certificates (default 24h).
	CertTTL time.Duration
	// RestoreGrace is how long restored workloads keep their endpoints
	// after a restart while their proxies reconnect (default 20s).
	RestoreGrace time.Duration
	// XDSLimits bound the streams, messages, request rates and
	// connections of the xDS port (zero fields: the defaults).
	XDSLimits xds.Limits
	// ExternalCA, if its Cert is set, names the PEM files of an existing
	// PKI's intermediate to sign with instead of the self-made root.
	ExternalCA ExternalCAFiles
	// DemoBreakDir, set by `weft demo`, enables the dashboard's demo
	// routes: it holds the break files of the demo's services.
	DemoBreakDir string
	Logger       *slog.Logger
	// Ready, if set, is called once both listeners are serving.
	Ready func(connfile.Connection)
	// Stats configure the aggregation of the proxies' golden metrics.
	Stats StatsOptions
	// OpenStore, if set, opens the store the control plane keeps its
	// state in (etcd, Kubernetes); nil means the embedded bbolt file in
	// DataDir. Run closes what it returns.
	OpenStore func(ctx context.Context) (store.Store, error)
	// SealKeyFile holds the key (created if missing) that seals the
	// secrets replicas keep in a shared store: the CA root and the admin
	// token. Required when OpenStore's store is shared; every replica
	// needs the same key.
	SealKeyFile string
	// AdvertiseXDS is the xDS address the other replicas list in their
	// connection files (default: XDSListen's, unless its host is
	// unspecified).
	AdvertiseXDS string
	// WriteStatus, if set, runs beside the control plane until ctx ends
	// (the Kubernetes status writer and trust bundle publisher).
	WriteStatus func(ctx context.Context, d StatusDeps) error
	// ServiceAccounts, if set, is the Kubernetes identity (--identity
	// kubernetes, identity.go): the CA accepts service-account tokens
	// instead of join tokens (ca.ServiceOptions.ServiceAccounts), no
	// default join token is written, and xDS accepts only certificates
	// issued for a service-account token.
	ServiceAccounts ca.ServiceAccountAuthenticator
	// Membership, with ServiceAccounts, decides which services the
	// sidecars of a service account may join (kube/podscope); nil lets
	// them join any service of their namespace.
	Membership Membership
	// Admission, if set, serves the Kubernetes validating webhook
	// (admission.go).
	Admission *AdmissionOptions
}

// Membership answers, for the proxies of a service account, whether they
// may be in the mesh at all and which services they may join. xDS asks it
// when a proxy registers and on every revalidation of its stream.
type Membership interface {
	// Live returns nil if the service account may run proxies.
	Live(namespace, serviceAccount string) error
	// Member returns nil if its proxies may join service.
	Member(namespace, serviceAccount, service string) error
}

// StatusDeps are what Options.WriteStatus works with.
type StatusDeps struct {
	// Store is the control plane's store.
	Store store.Store
	// Fill computes statuses as the API's reads do.
	Fill func(objs []api.Object) error
	// Bundle is the current trust bundle, PEM.
	Bundle func() []byte
}

// openStore opens the store opts name: OpenStore's, or the bbolt file.
func openStore(ctx context.Context, opts Options) (store.Store, error) {
	if opts.OpenStore != nil {
		return opts.OpenStore(ctx)
	}
	return store.Open(filepath.Join(opts.DataDir, connfile.StoreFile))
}

// Run serves until ctx ends.
func Run(ctx context.Context, opts Options) error {
	if opts.CertTTL == 0 {
		opts.CertTTL = 24 * time.Hour
	}
	if opts.RestoreGrace == 0 {
		opts.RestoreGrace = 20 * time.Second
	}
	log := opts.Logger
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	st, err := openStore(ctx, opts)
	if err != nil {
		return fmt.Errorf("opening store: %w", err)
	}
	defer st.Close()
	repl, err := openReplicated(st, opts, log)
	if err != nil {
		return err
	}

	authority, err := newAuthority(ctx, repl.caPersistence(st), opts, log.With("component", "ca"))
	if err != nil {
		return fmt.Errorf("starting CA: %w", err)
	}
	joinTokens, err := tokens.Open(st, tokens.Options{Logger: log.With("component", "tokens")})
	if err != nil {
		return err
	}
	if opts.ServiceAccounts == nil {
		if err := ensureJoinToken(joinTokens, opts.DataDir, log); err != nil {
			return err
		}
	}
	metrics := newMetrics()
	adminToken, err := repl.adminToken(opts.DataDir)
	if err != nil {
		return err
	}
	// caTLS writes ca.pem and follows root rotations.
	cat, err := newCATLS(authority, opts.DataDir, log.With("component", "ca"))
	if err != nil {
		return err
	}

	reg, err := registry.New(st, opts.RestoreGrace, log.With("component", "registry"))
	if err != nil {
		return err
	}
	if repl != nil {
		reg.Replicate(repl.shared, 0)
	}
	// The Kubernetes store knows the pods without a sidecar.
	nonMesh, _ := st.(xds.NonMesh)
	xdsSrv := xds.New(xds.Options{Config: st, Registry: reg, NonMesh: nonMesh, Logger: log.With("component", "xds"),
		TrustDomain: authority.TrustDomain(), Limits: opts.XDSLimits, Scope: xdsScope(opts, joinTokens), ReplicaID: repl.replicaID()})
	if err := metrics.Register(xdsSrv.Collector()); err != nil {
		return fmt.Errorf("registering xDS metrics: %w", err)
	}

	statsSvc, err := newStats(opts.Stats, xdsSrv, metrics, log.With("component", "stats"))
	if err != nil {
		return err
	}

	tlsConf := cat.config("h2")

	xdsLn, err := net.Listen("tcp", opts.XDSListen)
	if err != nil {
		return fmt.Errorf("listening for xDS on %s: %w", opts.XDSListen, err)
	}
	apiLn, err := net.Listen("tcp", opts.APIListen)
	if err != nil {
		xdsLn.Close()
		return fmt.Errorf("listening for the API on %s: %w", opts.APIListen, err)
	}

	// Client certificates are optional in the handshake because the CA's
	// Sign comes before a proxy has one; xdsSrv's interceptor requires one
	// on every stream.
	grpcSrv := grpc.NewServer(append(xdsSrv.ServerOptions(),
		grpc.Creds(credentials.NewTLS(tlsConf)),
		grpc.MaxConcurrentStreams(1<<16),
	)...)
	xdsCtx, stopXDS := context.WithCancel(context.WithoutCancel(ctx))
	defer stopXDS()
	xdsSrv.Register(xdsCtx, grpcSrv)
	caSvc, err := ca.NewService(authority, ca.ServiceOptions{Tokens: joinTokens, ServiceAccounts: opts.ServiceAccounts, TTL: opts.CertTTL, Registerer: metrics, Logger: log.With("component", "ca")})
	if err != nil {
		return err
	}
	weftv1.RegisterCertificateAuthorityServer(grpcSrv, caSvc)

	mux := http.NewServeMux()
	mux.Handle("/api/v1/", apiserver.New(st, adminToken, log.With("component", "api"), apiserver.Options{Snapshot: xdsSrv.Snapshot, TrustDomain: authority.TrustDomain().String(), Registerer: metrics, GatewayProgrammed: xdsSrv.GatewayProgrammed}))
	mux.Handle("GET /api/v1/mesh", authed(adminToken, meshHandler(xdsSrv, authority.TrustDomain().String())))
	mux.Handle("GET /api/v1/proxies", authed(adminToken, jsonHandler(func() any { return withRoots(xdsSrv.Proxies(), authority) })))
	mux.Handle("GET /api/v1/revision", authed(adminToken, jsonHandler(func() any {
		return RevisionStatus{Store: st.Revision(), Served: xdsSrv.Revision(), Replica: replicaID(st)}
	})))
	tokenAPI := apiserver.NewTokens(joinTokens, adminToken)
	mux.Handle("/api/v1/tokens", tokenAPI)
	mux.Handle("/api/v1/tokens/", tokenAPI)
	mux.Handle("GET /metrics", authed(adminToken, metricsHandler(metrics)))
	mux.Handle("/api/v1/ca/rotation", authed(adminToken, cat.rotateHandler(opts.CertTTL)))
	mux.Handle("GET /api/v1/version", authed(adminToken, versionHandler()))
	statsSvc.api.Register(mux, func(h http.Handler) http.Handler { return authed(adminToken, h) })
	dashboard.New(dashboard.Options{API: mux, AdminToken: adminToken, Proxies: xdsSrv.Proxies, CertExpiry: authority.IssuedNotAfter, DemoBreakDir: opts.DemoBreakDir, Logger: log.With("component", "dashboard"), Context: ctx}).Register(mux)
	apiSrv := &http.Server{Handler: mux, TLSConfig: cat.config("h2", "http/1.1"), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}

	var admission *admissionServer
	if opts.Admission != nil {
		admission, err = newAdmission(opts.Admission, st, apiserver.Options{Snapshot: xdsSrv.Snapshot, TrustDomain: authority.TrustDomain().String()},
			metrics, log.With("component", "admission"))
		if err != nil {
			return err
		}
		defer admission.ln.Close()
	}

	conn := connfile.Connection{XDS: xdsLn.Addr().String(), API: apiLn.Addr().String(), TrustDomain: authority.TrustDomain().String(), PID: os.Getpid()}
	if err := connfile.Write(opts.DataDir, conn); err != nil {
		return fmt.Errorf("writing connection file: %w", err)
	}

	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	g, gctx := errgroup.WithContext(loopCtx)
	g.Go(func() error { return xdsSrv.Run(gctx) })
	g.Go(func() error { return reg.Run(gctx) })
	if repl != nil {
		g.Go(func() error { joinTokens.Follow(gctx, repl.shared); return nil })
		g.Go(func() error { repl.advertise(gctx, opts.DataDir, conn, opts.AdvertiseXDS, log); return nil })
		g.Go(func() error { repl.followRotations(gctx, authority, log); return nil })
	}
	if opts.WriteStatus != nil {
		fill := apiserver.NewStatuses(st, apiserver.Options{Snapshot: xdsSrv.Snapshot, GatewayProgrammed: xdsSrv.GatewayProgrammed,
			TrustDomain: authority.TrustDomain().String()}).Fill
		bundle := func() []byte { return connfile.EncodePEMCerts(authority.Bundle()) }
		g.Go(func() error { return opts.WriteStatus(gctx, StatusDeps{Store: st, Fill: fill, Bundle: bundle}) })
	}
	if admission != nil {
		g.Go(func() error { return admission.run(gctx) })
	}
	g.Go(func() error { return cat.run(gctx) })
	g.Go(func() error { return statsSvc.run(gctx) })
	g.Go(func() error {
		if err := grpcSrv.Serve(xdsSrv.Listener(xdsLn)); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serving xDS: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := apiSrv.ServeTLS(apiLn, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving API: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		// Stop the update loop before streams close so that proxies keep
		// their endpoints, and persist the registry for the next start.
		stopLoops()
		if err := reg.Freeze(); err != nil {
			log.Error("saving workload registry", "err", err)
		}
		stopXDS()
		grpcSrv.Stop()
		shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return apiSrv.Shutdown(shutCtx)
	})
	logArgs := []any{"xds", conn.XDS, "api", "https://" + conn.API, "trust_domain", conn.TrustDomain, "data_dir", opts.DataDir}
	if admission != nil {
		logArgs = append(logArgs, "admission", "https://"+admission.ln.Addr().String()+validation.Path)
	}
	log.Info("control plane serving", logArgs...)
	if opts.Ready != nil {
		opts.Ready(conn)
	}
	return g.Wait()
}

func ensureToken(dir, name string) (string, error) {
	if t, err := connfile.ReadToken(dir, name); err == nil && t != "" {
		return t, nil
	}
	t, err := ca.NewToken()
	if err != nil {
		return "", err
	}
	if err := connfile.WriteFileAtomic(filepath.Join(dir, name), []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	return t, nil
}

func authed(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !apiserver.Authorized(r, token) {
			http.Error(w, `{"error":"missing or wrong admin token"}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func jsonHandler(f func() any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(f())
	})
}

// meshHandler serves the current services and their endpoints.
func meshHandler(x *xds.Server, trustDomain string) http.Handler {
	type endpoint struct {
		Workload string `json:"workload"`
		Address  string `json:"address"`
		Identity string `json:"identity"`
		Version  string `json:"version,omitempty"`
	}
	type service struct {
		Name      string     `json:"name"`
		Namespace string     `json:"namespace"`
		Declared  bool       `json:"declared"`
		Endpoints []endpoint `json:"endpoints"`
	}
	return jsonHandler(func() any {
		snap := x.Snapshot()
		out := []service{}
		for _, key := range snap.Keys {
			s := snap.Services[key]
			svc := service{Name: s.Name, Namespace: s.Namespace, Declared: s.Declared, Endpoints: []endpoint{}}
			for _, w := range snap.Endpoints[key] {
				svc.Endpoints = append(svc.Endpoints, endpoint{Workload: w.ID, Address: w.Address, Identity: w.Identity, Version: w.Version})
			}
			out = append(out, svc)
		}
		// The CA's trust domain: the one every certificate carries.
		return map[string]any{"trustDomain": trustDomain, "services": out}
	})
}
