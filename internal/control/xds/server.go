// Package xds serves weft's resources to proxies over delta ADS, using
// go-control-plane's gRPC server and its LinearCache (one per weft type URL,
// combined by a MuxCache). A single update loop owns the mesh snapshot: it
// debounces config and registry events, rebuilds the snapshot, regenerates
// resources and hands the cache only the resources that changed, so only the
// proxies subscribed to them receive a push.
package xds

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/control/registry"
	"weft.dev/weft/internal/control/xdsgen"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// ConfigSource is the stored configuration (the store implements it).
type ConfigSource interface {
	Set() (*api.Set, error)
	Subscribe() (<-chan struct{}, func())
}

// Options configure a Server.
type Options struct {
	Config   ConfigSource
	Registry *registry.Registry
	Logger   *slog.Logger
	// Debounce is the quiet period before a rebuild (default 100ms);
	// MaxDelay bounds how long events can postpone one (default 1s).
	Debounce time.Duration
	MaxDelay time.Duration
}

// Server is the xDS server and the owner of the current mesh snapshot.
type Server struct {
	opts      Options
	services  *cachev3.LinearCache
	endpoints *cachev3.LinearCache
	mux       *cachev3.MuxCache
	streams   *streams
	snapshot  atomic.Pointer[mesh.Snapshot]
	pushes    atomic.Uint64

	mu   sync.Mutex
	last xdsgen.Resources
	// lastEps fingerprints each published Endpoints resource by the IDs and
	// revisions of its workloads, so unchanged ones are recognised without
	// comparing their contents.
	lastEps map[string]string
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
		last:      xdsgen.Resources{Services: map[string]*weftv1.Service{}, Endpoints: map[string]*weftv1.Endpoints{}},
	}
	s.mux = &cachev3.MuxCache{
		Classify:      func(r *cachev3.Request) string { return r.GetTypeUrl() },
		ClassifyDelta: func(r *cachev3.DeltaRequest) string { return r.GetTypeUrl() },
		Caches: map[string]cachev3.Cache{
			weftv1.ServiceType:   s.services,
			weftv1.EndpointsType: s.endpoints,
		},
	}
	s.streams = newStreams(opts.Registry, opts.Logger)
	s.snapshot.Store(mesh.Build(nil, nil))
	return s
}

// Register serves ADS on g.
func (s *Server) Register(ctx context.Context, g *grpc.Server) {
	srv := serverv3.NewServer(ctx, s.mux, s.streams)
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, srv)
}

// Snapshot is the current mesh snapshot.
func (s *Server) Snapshot() *mesh.Snapshot { return s.snapshot.Load() }

// Proxies describes the connected proxies and their xDS state.
func (s *Server) Proxies() []ProxyStatus { return s.streams.status() }

// Pushes counts resource updates handed to the cache.
func (s *Server) Pushes() uint64 { return s.pushes.Load() }

// Run rebuilds and publishes the snapshot on every change until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	changes, cancel := s.opts.Config.Subscribe()
	defer cancel()
	if err := s.rebuild(); err != nil {
		return err
	}
	var (
		timer    *time.Timer
		timerC   <-chan time.Time
		deadline time.Time
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
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case <-changes:
			event()
		case <-s.opts.Registry.Changes():
			event()
		case <-timerC:
			timer, timerC = nil, nil
			if err := s.rebuild(); err != nil {
				s.opts.Logger.Error("rebuilding mesh snapshot", "err", err)
			}
		}
	}
}

// rebuild builds a new snapshot and pushes the resources that changed.
func (s *Server) rebuild() error {
	cfg, err := s.opts.Config.Set()
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	snap := mesh.Build(cfg, s.opts.Registry.List())
	gen := xdsgen.Generate(snap)
	s.snapshot.Store(snap)

	s.mu.Lock()
	defer s.mu.Unlock()
	n1, err := update(s.services, s.last.Services, gen.Services, func(_ string, o, r *weftv1.Service) bool { return proto.Equal(o, r) })
	if err != nil {
		return fmt.Errorf("updating services: %w", err)
	}
	eps := make(map[string]string, len(snap.Endpoints))
	for key, ws := range snap.Endpoints {
		eps[key] = fingerprint(ws)
	}
	n2, err := update(s.endpoints, s.last.Endpoints, gen.Endpoints, func(name string, _, _ *weftv1.Endpoints) bool {
		old, ok := s.lastEps[name]
		return ok && old == eps[name]
	})
	if err != nil {
		return fmt.Errorf("updating endpoints: %w", err)
	}
	s.last, s.lastEps = gen, eps
	if n1+n2 > 0 {
		s.pushes.Add(1)
		s.opts.Logger.Debug("pushed mesh update", "services", n1, "endpoints", n2, "workloads", len(snap.Workloads))
	}
	return nil
}

// fingerprint identifies a list of endpoints by workload IDs and revisions.
func fingerprint(ws []*mesh.Workload) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(w.ID)
		b.WriteByte('@')
		b.WriteString(strconv.FormatUint(w.Revision, 36))
		b.WriteByte(' ')
	}
	return b.String()
}

// update hands the cache the resources that differ between old and new;
// same reports whether a resource present in both is unchanged.
func update[T proto.Message](c *cachev3.LinearCache, old, cur map[string]T, same func(name string, old, cur T) bool) (int, error) {
	changed := map[string]types.Resource{}
	for name, r := range cur {
		if o, ok := old[name]; !ok || !same(name, o, r) {
			changed[name] = r
		}
	}
	var removed []string
	for name := range old {
		if _, ok := cur[name]; !ok {
			removed = append(removed, name)
		}
	}
	if len(changed) == 0 && len(removed) == 0 {
		return 0, nil
	}
	return len(changed) + len(removed), c.UpdateResources(changed, removed)
}
