//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/xdsclient"
	"weft.dev/weft/internal/xdsapi/weftv1"
	"weft.dev/weft/internal/xdsmeta"
)

type cpConfig struct {
	Proxies                     []int // cumulative proxy counts, the points of the curve
	Services, Endpoints, Events int
	WeftBin                     string
	// Store is the control plane's store: "bolt" (the default) or
	// "etcd", a single etcd member from EtcdBin started in the work dir.
	Store, EtcdBin string
	Keep           bool
	Log            func(string, ...any)
}

// cpEvent is the outcome of one kind of change at one proxy count.
type cpEvent struct {
	Kind     string
	Affected int       // proxies expected to ACK each change
	Hist     Histogram // per-proxy time from the change to its ACK
	EventMax []time.Duration
	CPU      float64 // control plane CPU seconds, summed over changes
	Changes  int
	Missing  int // proxies that did not ACK within the timeout
	// Unaffected counts pushes to proxies that did not subscribe to the
	// changed resource (0 when pushes are incremental).
	Unaffected uint64
}

type cpPoint struct {
	Proxies      int
	ConnectTime  time.Duration // until every new proxy had its first config and endpoints
	RSS, BaseRSS uint64        // KiB of the control plane, with the proxies and before any
	Events       []*cpEvent
}

type cpResult struct {
	Cfg     cpConfig
	Started time.Time
	Points  []*cpPoint
	EtcdRSS uint64 // KiB of the etcd member at the end (store etcd)
}

const (
	cpNamespace    = "default"
	eventTimeout   = 30 * time.Second
	controlSrvName = "weft-control"
)

func svcName(i int) string { return fmt.Sprintf("svc-%03d", i) }

// runControlplane starts `weft control`, registers the endpoints, then
// grows the number of simulated proxies through cfg.Proxies, measuring at
// each point: memory per connected proxy, and for a route change (weft
// apply), an endpoint change of a service every proxy calls, and an
// endpoint change of a service no proxy calls, the time until every
// affected proxy has ACKed and the control plane CPU it took.
func runControlplane(ctx context.Context, cfg cpConfig) (*cpResult, error) {
	res := &cpResult{Cfg: cfg, Started: time.Now().UTC()}
	if cfg.Services < 2 {
		return nil, errors.New("-services must be at least 2")
	}
	dir, err := os.MkdirTemp("", "weft-bench-cp-")
	if err != nil {
		return nil, err
	}
	if cfg.Keep {
		cfg.Log("keeping work dir %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	args := []string{"control", "--data-dir", dir,
		"--listen", addrOf(ports[0]), "--api-listen", addrOf(ports[1]), "--log-level", "error",
		// The simulated proxies and registrants of a service share its
		// certificate.
		"--xds-max-streams-per-cert", "-1"}
	var etcd *Proc
	switch cfg.Store {
	case "", "bolt":
	case "etcd":
		ep, p, err := startEtcd(ctx, dir, cfg.EtcdBin)
		if err != nil {
			return nil, err
		}
		defer p.Stop()
		etcd = p
		args = append(args, "--store", "etcd", "--etcd-endpoints", ep, "--seal-key-file", filepath.Join(dir, "seal.key"))
	default:
		return nil, fmt.Errorf("-cp-stores: %q: want bolt or etcd", cfg.Store)
	}
	ctrl, err := startProc(dir, "weft-control", nil, append([]string{cfg.WeftBin}, args...)...)
	if err != nil {
		return nil, err
	}
	defer ctrl.Stop()
	if etcd != nil {
		defer func() { res.EtcdRSS, _ = memKiB(etcd.Pid()) }()
	}
	if err := waitFile(ctx, ctrl, filepath.Join(dir, "control.json")); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m, err := newMesh(ctx, dir, cfg)
	if err != nil {
		return nil, err
	}
	defer m.close()

	cfg.Log("controlplane: issuing %d workload certificates", cfg.Services)
	if err := m.fetchSVIDs(ctx); err != nil {
		return nil, err
	}
	cfg.Log("controlplane: registering %d endpoints over %d services", cfg.Endpoints, cfg.Services)
	for i := range cfg.Endpoints {
		if _, err := m.register(ctx, i%cfg.Services, i); err != nil {
			return nil, err
		}
	}
	if err := m.waitEndpoints(ctx, cfg.Endpoints); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second)
	baseRSS, _ := memKiB(ctrl.Pid())
	cfg.Log("controlplane: %d endpoints registered, control plane RSS %.1f MiB", cfg.Endpoints, float64(baseRSS)/1024)

	for _, n := range cfg.Proxies {
		pt := &cpPoint{Proxies: n, BaseRSS: baseRSS}
		start := time.Now()
		if err := m.growProxies(ctx, n); err != nil {
			return nil, err
		}
		pt.ConnectTime = time.Since(start)
		time.Sleep(3 * time.Second)
		pt.RSS, _ = memKiB(ctrl.Pid())
		cfg.Log("controlplane: %d proxies ready in %s, control plane RSS %.1f MiB", n, pt.ConnectTime.Round(time.Millisecond), float64(pt.RSS)/1024)

		hot := weftv1.ResourceName(svcName(0), cpNamespace)
		cold := weftv1.ResourceName(svcName(cfg.Services-1), cpNamespace)
		apply := &cpEvent{Kind: "route change (apply HTTPRoute)", Affected: n}
		epHot := &cpEvent{Kind: "endpoint change, service every proxy calls", Affected: n}
		epCold := &cpEvent{Kind: "endpoint change, service no proxy calls", Affected: 0}
		pt.Events = []*cpEvent{apply, epHot, epCold}
		for k := range cfg.Events {
			if err := m.measure(ctx, ctrl, apply, weftv1.ServiceType, hot, func() error { return m.applyRoute(ctx, k) }); err != nil {
				return nil, err
			}
			var added *registrant
			if err := m.measure(ctx, ctrl, epHot, weftv1.EndpointsType, hot, func() error {
				var err error
				added, err = m.register(ctx, 0, cfg.Endpoints+k)
				return err
			}); err != nil {
				return nil, err
			}
			if err := m.measure(ctx, ctrl, epHot, weftv1.EndpointsType, hot, func() error { added.close(); return nil }); err != nil {
				return nil, err
			}
			var coldEp *registrant
			if err := m.measure(ctx, ctrl, epCold, weftv1.EndpointsType, cold, func() error {
				var err error
				coldEp, err = m.register(ctx, cfg.Services-1, cfg.Endpoints+cfg.Events+k)
				return err
			}); err != nil {
				return nil, err
			}
			coldEp.close()
			time.Sleep(300 * time.Millisecond)
		}
		for _, e := range pt.Events {
			cfg.Log("controlplane: %d proxies, %s: p50 %s p99 %s max %s, CPU %.1f ms/change, missing %d, pushes to unaffected %d",
				n, e.Kind, e.Hist.Quantile(0.5).Round(time.Millisecond), e.Hist.Quantile(0.99).Round(time.Millisecond), e.Hist.Max().Round(time.Millisecond),
				e.cpuPerChange()*1e3, e.Missing, e.Unaffected)
		}
		res.Points = append(res.Points, pt)
	}
	return res, nil
}

func (e *cpEvent) cpuPerChange() float64 {
	if e.Changes == 0 {
		return 0
	}
	return e.CPU / float64(e.Changes)
}

// simMesh is the harness's side of the mesh: certificates per service
// account, endpoint registrants and simulated proxies.
type simMesh struct {
	cfg      cpConfig
	conn     connfile.Connection
	roots    *x509.CertPool
	token    string
	admin    string
	api      *http.Client
	caConn   *grpc.ClientConn
	svids    []*identity.Source
	regConns []*grpc.ClientConn // per service, shared by its registrants

	proxies []*simProxy
	watch   atomic.Pointer[watch]
	pushes  atomic.Uint64 // responses received by simulated proxies
	mu      sync.Mutex
	closers []func()
}

func newMesh(ctx context.Context, dir string, cfg cpConfig) (*simMesh, error) {
	conn, err := connfile.Read(dir)
	if err != nil {
		return nil, err
	}
	bundle, err := connfile.ReadBundle(dir)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	for _, c := range bundle {
		roots.AddCert(c)
	}
	token, err := connfile.ReadToken(dir, connfile.JoinTokenFile)
	if err != nil {
		return nil, err
	}
	admin, err := connfile.ReadToken(dir, connfile.AdminTokenFile)
	if err != nil {
		return nil, err
	}
	m := &simMesh{cfg: cfg, conn: conn, roots: roots, token: token, admin: admin}
	m.api = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: controlSrvName}}}
	m.caConn, err = grpc.NewClient(conn.XDS, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: controlSrvName})))
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *simMesh) close() {
	for _, p := range m.proxies {
		p.cancel()
	}
	m.mu.Lock()
	for _, c := range m.closers {
		c()
	}
	m.mu.Unlock()
	for _, c := range m.regConns {
		c.Close()
	}
	for _, p := range m.proxies {
		p.conn.Close()
	}
	m.caConn.Close()
}

// fetchSVIDs gets one certificate per service account (a CSR each), which
// the proxies and registrants of that service share.
func (m *simMesh) fetchSVIDs(ctx context.Context) error {
	td, err := spiffeid.TrustDomainFromString(m.conn.TrustDomain)
	if err != nil {
		return err
	}
	m.svids = make([]*identity.Source, m.cfg.Services)
	m.regConns = make([]*grpc.ClientConn, m.cfg.Services)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range m.cfg.Services {
		g.Go(func() error {
			id, err := spiffeid.FromPathf(td, "/ns/%s/sa/%s", cpNamespace, svcName(i))
			if err != nil {
				return err
			}
			src := &identity.Source{}
			f := &identity.Fetcher{Conn: m.caConn, Token: m.token, ID: id}
			fctx, cancel := context.WithTimeout(gctx, 30*time.Second)
			defer cancel()
			if err := f.Fetch(fctx, src); err != nil {
				return err
			}
			m.svids[i] = src
			m.regConns[i], err = m.xdsConn(i)
			return err
		})
	}
	return g.Wait()
}

// xdsConn is a new mTLS connection to the xDS server with service i's SVID.
func (m *simMesh) xdsConn(i int) (*grpc.ClientConn, error) {
	src := m.svids[i]
	return grpc.NewClient(m.conn.XDS, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: m.roots, ServerName: controlSrvName, MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			svid, err := src.GetX509SVID()
			if err != nil {
				return nil, err
			}
			c := &tls.Certificate{PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
			for _, x := range svid.Certificates {
				c.Certificate = append(c.Certificate, x.Raw)
			}
			return c, nil
		},
	})))
}

// registrant is one endpoint: an ADS stream whose node metadata registers
// a workload with an inbound address (nothing listens there; it is data).
// It subscribes to nothing real, so it costs the control plane a stream
// and a registry entry but no pushes.
type registrant struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *registrant) close() {
	r.cancel()
	<-r.done
}

func (m *simMesh) register(ctx context.Context, svc, i int) (*registrant, error) {
	w := xdsmeta.Workload{Service: svcName(svc), Namespace: cpNamespace, ServiceAccount: svcName(svc),
		// The control plane accepts only addresses on the IP the stream
		// comes from.
		Address: fmt.Sprintf("127.0.0.1:%d", 20000+i)}
	md, err := xdsmeta.Encode(w)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(m.regConns[svc]).DeltaAggregatedResources(sctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("registering endpoint %d: %w", i, err)
	}
	err = stream.Send(&discoveryv3.DeltaDiscoveryRequest{
		Node:                   &corev3.Node{Id: fmt.Sprintf("ep-%05d", i), Cluster: w.Service, Metadata: md, UserAgentName: "weft-bench"},
		TypeUrl:                weftv1.EndpointsType,
		ResourceNamesSubscribe: []string{"bench-none." + cpNamespace},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("registering endpoint %d: %w", i, err)
	}
	r := &registrant{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			_ = stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()})
		}
	}()
	m.mu.Lock()
	m.closers = append(m.closers, cancel)
	m.mu.Unlock()
	return r, nil
}

// waitEndpoints polls the API until the mesh holds n endpoints.
func (m *simMesh) waitEndpoints(ctx context.Context, n int) error {
	deadline := time.Now().Add(2 * time.Minute)
	got := -1
	for time.Now().Before(deadline) {
		var err error
		got, err = m.countEndpoints(ctx)
		if err == nil && got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("control plane lists %d endpoints, want %d", got, n)
}

func (m *simMesh) countEndpoints(ctx context.Context) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+m.conn.API+"/api/v1/mesh", nil)
	req.Header.Set("Authorization", "Bearer "+m.admin)
	resp, err := m.api.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Services []struct {
			Endpoints []json.RawMessage `json:"endpoints"`
		} `json:"services"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	n := 0
	for _, s := range body.Services {
		n += len(s.Endpoints)
	}
	return n, nil
}

// applyRoute applies an HTTPRoute on svc-000 whose header match changes
// with k, so every apply changes the Service resource every proxy holds.
func (m *simMesh) applyRoute(ctx context.Context, k int) error {
	yaml := fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: bench-route
  namespace: %[1]s
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: %[2]s
  rules:
  - matches:
    - headers:
      - name: x-bench
        value: "v%[3]d"
    backendRefs:
    - name: %[2]s
      port: 80
  - backendRefs:
    - name: %[2]s
      port: 80
`, cpNamespace, svcName(0), k+1000*len(m.proxies))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+m.conn.API+"/api/v1/apply", strings.NewReader(yaml))
	req.Header.Set("Authorization", "Bearer "+m.admin)
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := m.api.Do(req)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("apply: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// simProxy is one simulated proxy: weft's own xDS client on its own mTLS
// connection, subscribing exactly as a sidecar does (every Service, and the
// Endpoints of the services it calls). The connection is wrapped to see
// each response and the ACK that follows it.
type simProxy struct {
	idx     int
	m       *simMesh
	conn    *grpc.ClientConn
	client  *xdsclient.Client
	cancel  context.CancelFunc
	mu      sync.Mutex
	pending map[string][]string // nonce → resource names (incl. removed)
}

// calls is the services proxy i calls: svc-000 (every proxy) and three
// others, never the last service (the "no proxy calls it" one).
func (m *simMesh) calls(i int) []string {
	s := m.cfg.Services - 1 // candidates 1..s-1
	out := []string{weftv1.ResourceName(svcName(0), cpNamespace)}
	if s > 1 {
		for _, k := range []int{7, 13, 31} {
			out = append(out, weftv1.ResourceName(svcName(1+(i*k+k)%(s-1)), cpNamespace))
		}
	}
	return out
}

func (m *simMesh) growProxies(ctx context.Context, n int) error {
	start := len(m.proxies)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	newOnes := make([]*simProxy, n-start)
	for i := start; i < n; i++ {
		svc := i % m.cfg.Services
		conn, err := m.xdsConn(svc)
		if err != nil {
			return err
		}
		p := &simProxy{idx: i, m: m, conn: conn, pending: map[string][]string{}}
		w := xdsmeta.Workload{Service: svcName(svc), Namespace: cpNamespace, ServiceAccount: svcName(svc)}
		p.client, err = xdsclient.New(xdsclient.Options{Conn: &watchConn{ClientConn: conn, p: p}, NodeID: fmt.Sprintf("px-%05d", i), Workload: w, Logger: quiet, EndpointWait: time.Minute})
		if err != nil {
			return err
		}
		pctx, cancel := context.WithCancel(ctx)
		p.cancel = cancel
		go func() { _ = p.client.Run(pctx) }()
		newOnes[i-start] = p
		g.Go(func() error {
			for _, key := range m.calls(i) {
				if _, err := p.client.Endpoints(gctx, key); err != nil {
					return fmt.Errorf("proxy %d: %w", i, err)
				}
			}
			return nil
		})
	}
	m.proxies = append(m.proxies, newOnes...)
	return g.Wait()
}

type watchConn struct {
	*grpc.ClientConn
	p *simProxy
}

func (w *watchConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := w.ClientConn.NewStream(ctx, desc, method, opts...)
	if err != nil {
		return nil, err
	}
	return &watchStream{ClientStream: s, p: w.p}, nil
}

type watchStream struct {
	grpc.ClientStream
	p *simProxy
}

func (s *watchStream) RecvMsg(msg any) error {
	err := s.ClientStream.RecvMsg(msg)
	if r, ok := msg.(*discoveryv3.DeltaDiscoveryResponse); ok && err == nil {
		names := make([]string, 0, len(r.GetResources())+len(r.GetRemovedResources()))
		for _, res := range r.GetResources() {
			names = append(names, r.GetTypeUrl()+"|"+res.GetName())
		}
		for _, n := range r.GetRemovedResources() {
			names = append(names, r.GetTypeUrl()+"|"+n)
		}
		s.p.mu.Lock()
		s.p.pending[r.GetNonce()] = names
		s.p.mu.Unlock()
		s.p.m.pushes.Add(1)
	}
	return err
}

func (s *watchStream) SendMsg(msg any) error {
	err := s.ClientStream.SendMsg(msg)
	if r, ok := msg.(*discoveryv3.DeltaDiscoveryRequest); ok && err == nil && r.GetResponseNonce() != "" {
		s.p.mu.Lock()
		names := s.p.pending[r.GetResponseNonce()]
		delete(s.p.pending, r.GetResponseNonce())
		s.p.mu.Unlock()
		if w := s.p.m.watch.Load(); w != nil && r.GetErrorDetail() == nil {
			for _, n := range names {
				if n == w.key {
					w.acked(s.p.idx)
					break
				}
			}
		}
	}
	return err
}

// watch collects the ACKs of one change.
type watch struct {
	key  string // typeURL|name
	t0   time.Time
	want int
	mu   sync.Mutex
	seen map[int]time.Duration
	done chan struct{}
}

func (w *watch) acked(idx int) {
	d := time.Since(w.t0)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.seen[idx]; ok {
		return
	}
	w.seen[idx] = d
	if len(w.seen) == w.want {
		close(w.done)
	}
}

// measure triggers one change and waits for every affected proxy to ACK a
// response carrying the changed resource (or, for a change that affects no
// proxy, a quiet period), recording latencies and control plane CPU.
func (m *simMesh) measure(ctx context.Context, ctrl *Proc, e *cpEvent, typeURL, name string, trigger func() error) error {
	w := &watch{key: typeURL + "|" + name, want: e.Affected, seen: map[int]time.Duration{}, done: make(chan struct{})}
	pushes0 := m.pushes.Load()
	cpu0 := cpuSeconds(ctrl.Pid())
	w.t0 = time.Now()
	m.watch.Store(w)
	if err := trigger(); err != nil {
		return err
	}
	if e.Affected == 0 {
		// Debounce (100 ms) plus ample time for a push that should not come.
		time.Sleep(1500 * time.Millisecond)
	} else {
		select {
		case <-w.done:
		case <-time.After(eventTimeout):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.watch.Store(nil)
	cpu := cpuSeconds(ctrl.Pid()) - cpu0
	w.mu.Lock()
	var worst time.Duration
	for _, d := range w.seen {
		e.Hist.Record(d)
		worst = max(worst, d)
	}
	e.Missing += e.Affected - len(w.seen)
	w.mu.Unlock()
	e.EventMax = append(e.EventMax, worst)
	e.CPU += cpu
	e.Changes++
	if e.Affected == 0 {
		e.Unaffected += m.pushes.Load() - pushes0
	}
	// Let trailing ACKs land before the next change.
	time.Sleep(200 * time.Millisecond)
	return nil
}

func (r *cpResult) markdown(meta runMeta) string {
	var b strings.Builder
	c := r.Cfg
	store := c.Store
	if store == "" {
		store = "bolt"
	}
	fmt.Fprintf(&b, "## Control plane (store: %s) — %s\n\n", store, r.Started.Format("2006-01-02 15:04 MST"))
	meta.write(&b)
	if store == "etcd" {
		fmt.Fprintf(&b, "- store: one local etcd member (%s), its RSS at the end %.1f MiB (not in the CP RSS below)\n", c.EtcdBin, float64(r.EtcdRSS)/1024)
	}
	fmt.Fprintf(&b, "- %d services, %d endpoints (registered ADS streams), simulated proxies grown through %v; each proxy is weft's xDS client on its own mTLS connection, subscribed to every Service and to the Endpoints of 4 services (svc-000, which every proxy calls, and 3 others); %d changes of each kind per point; the harness runs on the same cores as the control plane\n\n",
		c.Services, c.Endpoints, c.Proxies, c.Events)
	b.WriteString("| proxies | connect all | CP RSS MiB | RSS per proxy KiB | change | affected | ACK p50 ms | p99 ms | max ms | not ACKed | CP CPU ms / change | pushes to unaffected |\n")
	b.WriteString("|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range r.Points {
		per := (float64(p.RSS) - float64(p.BaseRSS)) / float64(p.Proxies)
		for i, e := range p.Events {
			lead := fmt.Sprintf("| %d | %.1fs | %.1f | %.0f ", p.Proxies, p.ConnectTime.Seconds(), float64(p.RSS)/1024, per)
			if i > 0 {
				lead = "| | | | "
			}
			ms := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/1e6) }
			p50, p99, mx := "–", "–", "–"
			if e.Affected > 0 {
				p50, p99, mx = ms(e.Hist.Quantile(0.5)), ms(e.Hist.Quantile(0.99)), ms(e.Hist.Max())
			}
			fmt.Fprintf(&b, "%s| %s | %d | %s | %s | %s | %d | %.1f | %d |\n", lead, e.Kind, e.Affected, p50, p99, mx, e.Missing, e.cpuPerChange()*1e3, e.Unaffected)
		}
	}
	b.WriteString("\nRSS per proxy = (control plane RSS with the proxies − RSS with only the endpoints registered) / proxies. ACK times run from the moment the harness triggers the change (API call or stream open/close) to each proxy's ACK, and include the control plane's 100 ms debounce.\n")
	return b.String()
}

// startEtcd starts a single etcd member from bin with its data in dir on
// free loopback ports and returns its client URL once it answers.
func startEtcd(ctx context.Context, dir, bin string) (string, *Proc, error) {
	if bin == "" {
		return "", nil, errors.New("-cp-etcd-bin: no etcd binary (build it with test/etcd/build.sh)")
	}
	ports, err := freePorts(2)
	if err != nil {
		return "", nil, err
	}
	client, peer := "http://"+addrOf(ports[0]), "http://"+addrOf(ports[1])
	p, err := startProc(dir, "etcd", nil, bin, "--name", "bench", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "bench="+peer,
		"--log-level", "error")
	if err != nil {
		return "", nil, err
	}
	if err := waitTCP(ctx, p, addrOf(ports[0])); err != nil {
		p.Stop()
		return "", nil, fmt.Errorf("etcd: %w", err)
	}
	return client, p, nil
}
