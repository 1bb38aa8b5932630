// Package xds serves weft's resources to proxies over delta ADS, using
// go-control-plane's gRPC server and its LinearCache (one per weft type URL,
// combined by a MuxCache). A single update loop owns the mesh snapshot: it
// debounces config and registry events and hands the cache only the
// resources that changed, so only the proxies subscribed to them receive a
// push. Every batch of events is applied incrementally: the snapshot is
// patched with the configuration objects and the workloads that changed,
// and only the resources of the services they affect are regenerated. Only
// the first snapshot is built from scratch.
//
// Every stream is authenticated by its client certificate and bounded
// before go-control-plane sees it (admit.go, limits.go), and a proxy's
// registration is bound to that certificate (streams.go).
package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/control/registry"
	"weft.dev/weft/internal/control/xdsgen"
	"weft.dev/weft/internal/xdsapi/weftv1"
	"weft.dev/weft/internal/xdsmeta"
)

// ConfigSource is the stored configuration (the store implements it).
type ConfigSource interface {
	Set() (*api.Set, error)
	Subscribe() (<-chan struct{}, func())
}

// NonMesh lists the pods without a sidecar of each Service (the Kubernetes
// store does, from the EndpointSlices).
type NonMesh interface {
	// PlainEndpoints returns the ready pods of Service namespace/name, at
	// their port for the Service's port.
	PlainEndpoints(namespace, name string, port corev1.ServicePort) []mesh.PlainEndpoint
	// EndpointChanges receives after the pods of some Services changed
	// (coalesced).
	EndpointChanges() <-chan struct{}
	// TakeEndpointChanges returns the keys ("<name>.<namespace>") of the
	// Services whose pods changed since the last call.
	TakeEndpointChanges() []string
}

// Options configure a Server.
type Options struct {
	Config   ConfigSource
	Registry *registry.Registry
	// NonMesh, if set, gives a declared Service with no mesh endpoint its
	// pods without a sidecar as plaintext endpoints (xdsgen.Endpoints).
	NonMesh NonMesh
	Logger  *slog.Logger
	// Debounce is the quiet period before a rebuild (default 100ms);
	// MaxDelay bounds how long events can postpone one (default 1s).
	Debounce time.Duration
	MaxDelay time.Duration
	// Scope, if set, limits the services and addresses a proxy may
	// register to what its certificate's credential allows; nil allows
	// any service and only the stream's own peer address.
	Scope ScopeFunc
	// TrustDomain is the mesh's: every stream needs a client certificate
	// with a SPIFFE ID in it (other than the control plane's own).
	TrustDomain spiffeid.TrustDomain
	// Limits bound streams, messages, request rates and connections.
	Limits Limits
	// ReplicaID names this control-plane replica in ProxyStatus when the
	// store is shared by several ("" for a single control plane).
	ReplicaID string
	// RevalidateInterval is how often Run checks the credential of every
	// open stream against Scope again (default DefaultRevalidateInterval),
	// so that revoking a join token ends its proxies' streams.
	RevalidateInterval time.Duration
}

// Server is the xDS server and the owner of the current mesh snapshot.
type Server struct {
	opts      Options
	services  *cachev3.LinearCache
	endpoints *cachev3.LinearCache
	gateways  *cachev3.LinearCache // gateway.go
	mux       *cachev3.MuxCache
	streams   *streams
	limits    Limits
	admission *admission
	live      live
	refusals  *refusals
	// controlID is the control plane's own identity, never a proxy's.
	controlID spiffeid.ID
	snapshot  atomic.Pointer[mesh.Snapshot]
	pushes    atomic.Uint64
	// revs names the store revision behind each cache version
	// (revision.go).
	revs *revisions

	// The update state below is owned by the goroutine running Run.

	// builder holds the latest snapshot and derives the next one.
	builder *mesh.Builder
	// routing is compiled from the configuration of the latest snapshot
	// and derives the next one.
	routing *xdsgen.Routing
	// published is what the caches hold.
	published xdsgen.Resources
	// publishedGateways is what the gateways cache holds (gateway.go).
	publishedGateways map[string]*weftv1.Gateway
}

// New creates a Server; call Run to start its update loop and Register to
// serve it on a gRPC server.
func New(opts Options) *Server {
	if opts.Debounce == 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.MaxDelay == 0 {
		opts.MaxDelay = time.Second
	}
	s := &Server{
		opts:      opts,
		services:  cachev3.NewLinearCache(weftv1.ServiceType),
		endpoints: cachev3.NewLinearCache(weftv1.EndpointsType),
		gateways:  cachev3.NewLinearCache(weftv1.GatewayType),
		builder:   mesh.NewBuilder(nil, nil),
		revs:      newRevisions(),
		published: xdsgen.Resources{Services: map[string]*weftv1.Service{}, Endpoints: map[string]*weftv1.Endpoints{}},
	}
	s.mux = &cachev3.MuxCache{
		Classify:      func(r *cachev3.Request) string { return r.GetTypeUrl() },
		ClassifyDelta: func(r *cachev3.DeltaRequest) string { return r.GetTypeUrl() },
		Caches: map[string]cachev3.Cache{
			weftv1.ServiceType:   s.services,
			weftv1.EndpointsType: s.endpoints,
			weftv1.GatewayType:   s.gateways,
		},
	}
	s.limits = opts.Limits.withDefaults()
	s.admission = newAdmission(s.limits)
	s.refusals = newRefusals(opts.Logger)
	// The zero trust domain has no control identity; every stream is
	// refused for being outside it.
	s.controlID, _ = spiffeid.FromSegments(opts.TrustDomain, "ns", xdsmeta.ControlNamespace, "sa", xdsmeta.ControlServiceAccount)
	s.streams = newStreams(s)
	s.routing = xdsgen.NewRouting(nil)
	s.snapshot.Store(s.builder.Snapshot())
	return s
}

// Register serves ADS on g, which must have been created with
// ServerOptions: without its interceptor every stream is refused.
func (s *Server) Register(ctx context.Context, g *grpc.Server) {
	srv := serverv3.NewServer(ctx, s.mux, s.streams)
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, srv)
}

// Snapshot is the current mesh snapshot.
func (s *Server) Snapshot() *mesh.Snapshot { return s.snapshot.Load() }

// Proxies describes the connected proxies and their xDS state.
func (s *Server) Proxies() []ProxyStatus { return s.streams.status() }

// Revision is the store revision of the configuration the server last
// published to its proxies.
func (s *Server) Revision() uint64 { return s.revs.Current() }

// Pushes counts resource updates handed to the cache.
func (s *Server) Pushes() uint64 { return s.pushes.Load() }

// Run builds the first snapshot, then publishes a new one after every batch
// of changes until ctx ends: patched with the changed configuration objects
// and workloads when the batch includes a configuration change, with the
// changed workloads otherwise.
func (s *Server) Run(ctx context.Context) error {
	changes, cancel := s.opts.Config.Subscribe()
	defer cancel()
	interval := s.opts.RevalidateInterval
	if interval <= 0 {
		interval = DefaultRevalidateInterval
	}
	revalCtx, stopReval := context.WithCancel(ctx)
	defer stopReval()
	go s.revalidateLoop(revalCtx, interval)
	if _, err := s.rebuild(); err != nil {
		return err
	}
	var (
		timer    *time.Timer
		timerC   <-chan time.Time
		deadline time.Time
		// configChanged is set while a configuration change waits for
		// an update (or a failed one for a retry).
		configChanged bool
	)
	event := func() {
		now := time.Now()
		if timer == nil {
			deadline = now.Add(s.opts.MaxDelay)
			timer = time.NewTimer(s.opts.Debounce)
			timerC = timer.C
			return
		}
		wait := s.opts.Debounce
		if rest := deadline.Sub(now); rest < wait {
			wait = rest
		}
		timer.Reset(wait)
	}
	var plainChanges <-chan struct{}
	if s.opts.NonMesh != nil {
		plainChanges = s.opts.NonMesh.EndpointChanges()
	}
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case <-plainChanges:
			if _, err := s.applyPlain(); err != nil {
				s.opts.Logger.Error("updating the endpoints of pods without a sidecar", "err", err)
			}
		case <-changes:
			configChanged = true
			event()
		case <-s.opts.Registry.Changes():
			event()
		case <-timerC:
			timer, timerC = nil, nil
			if configChanged {
				_, err := s.applyConfig()
				configChanged = err != nil
				if err != nil {
					s.opts.Logger.Error("updating mesh snapshot with the configuration", "err", err)
				}
			} else if _, err := s.applyWorkloads(); err != nil {
				s.opts.Logger.Error("updating mesh snapshot", "err", err)
			}
		}
	}
}

// push records what one update generated and handed the caches.
type push struct {
	// generated counts the resources generated, changed or not.
	generated int
	// services and endpoints name the resources handed to the caches,
	// updated or removed.
	services, endpoints []string
}

// rebuild builds the snapshot from the configuration and every workload,
// compiles routing, regenerates every Service resource and the Endpoints of
// the services whose endpoints changed, and publishes what differs. It
// builds the first snapshot; later ones are derived incrementally.
func (s *Server) rebuild() (push, error) {
	cfg, err := s.opts.Config.Set()
	if err != nil {
		return push{}, fmt.Errorf("reading config: %w", err)
	}
	s.revs.setCurrent(cfg.Revision)
	// Changes taken before List are all in it; the ones that land in
	// between are applied again by the next update, which ignores them.
	s.opts.Registry.TakeChanges()
	prev := s.builder.Snapshot()
	s.builder = mesh.NewBuilder(cfg, s.opts.Registry.List())
	s.routing = xdsgen.NewRouting(cfg)
	s.publishGateways(cfg) // gateway.go
	snap := s.builder.Snapshot()
	changes := mesh.Diff(prev, snap)
	services := slices.Concat(snap.Keys, changes.Removed)
	return s.publish(snap, services, slices.Concat(changes.Added, changes.Endpoints, changes.Removed))
}

// applyConfig patches the snapshot with the configuration objects changed
// since the last update, then with the workloads changed since, and
// regenerates only the resources of the services they affect: the Service
// resources of services redefined or whose routes or load balancing
// changed, the Endpoints of services whose endpoints changed, and both
// resources of services that appeared or disappeared. A MeshConfig change
// (rare) regenerates every Service resource.
func (s *Server) applyConfig() (push, error) {
	cfg, err := s.opts.Config.Set()
	if err != nil {
		return push{}, fmt.Errorf("reading config: %w", err)
	}
	s.revs.setCurrent(cfg.Revision)
	routing, routed, all := s.routing.Update(cfg)
	s.routing = routing
	s.publishGateways(cfg) // gateway.go
	_, cfgChanges := s.builder.ApplyConfig(cfg)
	snap, wlChanges := s.builder.Apply(s.opts.Registry.TakeChanges())
	appeared := slices.Concat(cfgChanges.Added, cfgChanges.Removed, wlChanges.Added, wlChanges.Removed)
	services := slices.Concat(routed, cfgChanges.Redefined, appeared)
	if all {
		services = slices.Concat(snap.Keys, appeared)
	}
	return s.publish(snap, sortedSet(services), sortedSet(slices.Concat(appeared, cfgChanges.Endpoints, wlChanges.Endpoints)))
}

// sortedSet sorts keys and removes duplicates.
func sortedSet(keys []string) []string {
	slices.Sort(keys)
	return slices.Compact(keys)
}

// applyWorkloads patches the snapshot with the workloads changed since the
// last update and regenerates only the resources of the services they
// affect: the Endpoints of services whose endpoints changed, and both
// resources of services that appeared or disappeared.
func (s *Server) applyWorkloads() (push, error) {
	snap, changes := s.builder.Apply(s.opts.Registry.TakeChanges())
	appeared := slices.Concat(changes.Added, changes.Removed)
	return s.publish(snap, appeared, slices.Concat(appeared, changes.Endpoints))
}

// publish makes snap current, regenerates the Service resources of
// services and the Endpoints resources of endpoints (keys of services in
// snap, or removed from it), and hands the caches those that differ from
// what they hold.
func (s *Server) publish(snap *mesh.Snapshot, services, endpoints []string) (push, error) {
	s.snapshot.Store(snap)
	var p push
	var errSvc, errEps error
	p.services, errSvc = update(s.services, s.published.Services, services, func() { s.revs.next(weftv1.ServiceType) }, func(key string) (*weftv1.Service, bool) {
		svc, ok := snap.Services[key]
		if !ok {
			return nil, false
		}
		p.generated++
		return s.routing.Service(svc), true
	})
	// Endpoints are updated even when services failed: the snapshot has
	// moved on and will not offer these keys again.
	p.endpoints, errEps = update(s.endpoints, s.published.Endpoints, endpoints, func() { s.revs.next(weftv1.EndpointsType) }, func(key string) (*weftv1.Endpoints, bool) {
		svc, ok := snap.Services[key]
		if !ok {
			return nil, false
		}
		p.generated++
		return xdsgen.Endpoints(svc, snap.Endpoints[key], s.plainEndpoints(svc, snap.Endpoints[key])), true
	})
	if errSvc != nil || errEps != nil {
		return p, errors.Join(wrap("updating services", errSvc), wrap("updating endpoints", errEps))
	}
	if len(p.services)+len(p.endpoints) > 0 {
		s.pushes.Add(1)
		s.opts.Logger.Debug("pushed mesh update", "services", len(p.services), "endpoints", len(p.endpoints), "generated", p.generated, "workloads", len(snap.Workloads))
	}
	return p, nil
}

// plainEndpoints are the pods without a sidecar of svc, for its first port,
// while it is a declared Service with no mesh endpoint (eps).
func (s *Server) plainEndpoints(svc *mesh.Service, eps []*mesh.Workload) []mesh.PlainEndpoint {
	if s.opts.NonMesh == nil || len(eps) > 0 || !svc.Declared || len(svc.Ports) == 0 {
		return nil
	}
	return s.opts.NonMesh.PlainEndpoints(svc.Namespace, svc.Name, svc.Ports[0])
}

// applyPlain regenerates the Endpoints of the services whose pods without
// a sidecar changed.
func (s *Server) applyPlain() (push, error) {
	snap := s.snapshot.Load()
	var keys []string
	for _, k := range s.opts.NonMesh.TakeEndpointChanges() {
		if _, ok := snap.Services[k]; ok {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return push{}, nil
	}
	return s.publish(snap, nil, sortedSet(keys))
}

// wrap adds context to err, if any.
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// update regenerates the resources named by keys with gen (false for one
// that no longer exists), records in published those that differ from it
// and hands them to c, calling before just before. It returns the names
// handed over. The cache stores
// them even when it fails to notify a watch, so published follows the cache
// either way.
func update[T proto.Message](c *cachev3.LinearCache, published map[string]T, keys []string, before func(), gen func(key string) (T, bool)) ([]string, error) {
	changed := map[string]types.Resource{}
	var removed, names []string
	for _, key := range keys {
		old, had := published[key]
		r, ok := gen(key)
		switch {
		case !ok && had:
			delete(published, key)
			removed = append(removed, key)
		case ok && (!had || !proto.Equal(old, r)):
			published[key] = r
			changed[key] = r
		default:
			continue
		}
		names = append(names, key)
	}
	if len(names) == 0 {
		return nil, nil
	}
	slices.Sort(names)
	before()
	return names, c.UpdateResources(changed, removed)
}
