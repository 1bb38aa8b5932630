package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/control/registry"
	"weft.dev/weft/internal/xdsmeta"
)

// ProxyStatus is one connected proxy as `weft proxy-status` shows it.
type ProxyStatus struct {
	ID        string    `json:"id"`
	Service   string    `json:"service"`
	Namespace string    `json:"namespace"`
	Identity  string    `json:"identity"`
	Address   string    `json:"address,omitempty"`
	Connected time.Time `json:"connected"`
	// Acked maps type URL to the nonce of the last acknowledged response.
	Acked map[string]string `json:"acked,omitempty"`
	// Nacked maps type URL to the error of the last rejected response.
	Nacked map[string]string `json:"nacked,omitempty"`
	// Admin is the proxy's admin listener when the control plane can
	// scrape its metrics (see scrapeAddress).
	Admin string `json:"admin,omitempty"`
	// Versions maps type URL to the system version of the last response
	// the proxy acknowledged ("r<store revision>-<n>"), and Revision is
	// the newest store revision among them: the configuration the proxy
	// has caught up with.
	Versions map[string]string `json:"versions,omitempty"`
	Revision uint64            `json:"revision"`
	// Replica is the control-plane replica serving the stream (its ID
	// when the store is shared, else empty).
	Replica string `json:"replica,omitempty"`
}

type stream struct {
	caller *caller
	status ProxyStatus
	// sent maps the nonce of a recent response to its type URL and
	// system version, until the proxy acknowledges it.
	sent map[string]sentResponse
	// registered is set once the workload joined the registry.
	registered bool
}

// streams implements go-control-plane's callbacks: it takes each stream's
// client as admitStream authenticated it, registers the workload named in
// the node metadata if the client's certificate may register it, and
// records ACKs and NACKs.
type streams struct {
	srv      *Server
	registry *registry.Registry
	logger   *slog.Logger

	mu   sync.Mutex
	byID map[int64]*stream
}

func newStreams(srv *Server) *streams {
	return &streams{srv: srv, registry: srv.opts.Registry, logger: srv.opts.Logger, byID: map[int64]*stream{}}
}

// errNotAdmitted refuses a stream that did not pass admitStream, as on a
// gRPC server created without ServerOptions.
var errNotAdmitted = status.Error(codes.Unauthenticated, "xds: stream was not authenticated (the gRPC server lacks the xDS interceptor)")

func (s *streams) OnDeltaStreamOpen(ctx context.Context, id int64, typeURL string) error {
	c := callerFrom(ctx)
	if c == nil {
		return errNotAdmitted
	}
	s.mu.Lock()
	s.byID[id] = &stream{caller: c, status: ProxyStatus{Identity: c.id.String(), Connected: time.Now(), Acked: map[string]string{}, Nacked: map[string]string{}}}
	s.mu.Unlock()
	return nil
}

func (s *streams) OnDeltaStreamClosed(id int64, _ *corev3.Node) {
	s.mu.Lock()
	st := s.byID[id]
	delete(s.byID, id)
	s.mu.Unlock()
	if st != nil && st.registered {
		s.logger.Info("proxy disconnected", "workload", st.status.ID)
		s.registry.Disconnect(st.status.ID)
	}
}

func (s *streams) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	s.mu.Lock()
	st := s.byID[id]
	if st == nil {
		s.mu.Unlock()
		return errors.New("unknown stream")
	}
	if n := req.GetResponseNonce(); n != "" {
		st.acked(req.GetTypeUrl(), n, req.GetErrorDetail() == nil)
	}
	if req.GetErrorDetail() != nil {
		st.status.Nacked[req.GetTypeUrl()] = req.GetErrorDetail().GetMessage()
		s.logger.Warn("proxy rejected config", "workload", st.status.ID, "type", req.GetTypeUrl(), "err", req.GetErrorDetail().GetMessage())
	} else if req.GetResponseNonce() != "" {
		st.status.Acked[req.GetTypeUrl()] = req.GetResponseNonce()
		delete(st.status.Nacked, req.GetTypeUrl())
	}
	registered := st.registered
	s.mu.Unlock()
	if registered {
		return s.checkGatewaySubscription(st, req) // gateway.go
	}
	// The first request registers the workload; go-control-plane calls
	// this before it watches or sends anything, and never concurrently
	// for one stream.
	w, reason, err := s.register(st.caller, req.GetNode())
	if err != nil {
		s.srv.refuse(reason, st.caller, err)
		return status.Errorf(codes.PermissionDenied, "xds: registration refused: %v", err)
	}
	st.caller.joined.Store(&w.Service)
	s.mu.Lock()
	st.registered = true
	st.status.ID, st.status.Service, st.status.Namespace, st.status.Address = w.ID, w.Service, w.Namespace, w.Address
	st.status.Admin = scrapeAddress(req.GetNode(), st.caller.ip)
	s.mu.Unlock()
	s.logger.Info("proxy connected", "workload", w.ID, "service", w.Service, "namespace", w.Namespace, "address", w.Address)
	return s.checkGatewaySubscription(st, req) // gateway.go
}

// register checks that c's certificate may register the workload node
// describes — its service account, a service its credential's Scope
// allows, an address it can prove — and records it in the registry, which
// refuses an ID or address another identity holds. On error it also
// returns the refusal reason.
func (s *streams) register(c *caller, node *corev3.Node) (mesh.Workload, string, error) {
	w, err := workloadFromNode(node, c.id)
	if err != nil {
		return w, reasonNode, err
	}
	var scope Scope
	if s.srv.opts.Scope != nil {
		if scope, err = s.srv.opts.Scope(c.leaf); err != nil {
			return w, reasonScope, fmt.Errorf("credential of %s: %w", c.id, err)
		}
	}
	if len(scope.Services) > 0 && !slices.Contains(scope.Services, w.Service) {
		return w, reasonService, fmt.Errorf("node %q: the credential of %s does not allow joining service %q (allowed: %s)", w.ID, c.id, w.Service, strings.Join(scope.Services, ", "))
	}
	if scope.Service != nil {
		if err := scope.Service(w.Service); err != nil {
			return w, reasonService, fmt.Errorf("node %q: service %q: %w", w.ID, w.Service, err)
		}
	}
	if err := provenAddress(w.Address, c.ip, scope.Addresses); err != nil {
		return w, reasonAddress, fmt.Errorf("node %q: %w", w.ID, err)
	}
	w.Connected = time.Now()
	if err := s.registry.Connect(w); err != nil {
		if errors.Is(err, registry.ErrAddressHeld) {
			return w, reasonAddressHeld, err
		}
		return w, reasonWorkloadID, err
	}
	return w, "", nil
}

// provenAddress checks that addr ("" for none) is one the proxy can prove:
// its host is the IP its stream comes from, or in one of allowed.
func provenAddress(addr string, from netip.Addr, allowed []netip.Prefix) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("address %q: the host is not an IP address", addr)
	}
	ip = ip.Unmap().WithZone("")
	if from.IsValid() && ip == from {
		return nil
	}
	for _, p := range allowed {
		if p.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("address %s is neither the IP its xDS stream comes from (%s) nor in the addresses its credential allows", addr, from)
}

// workloadFromNode reads the workload from node metadata and checks that
// the proxy's certificate is the identity of that workload.
func workloadFromNode(node *corev3.Node, id spiffeid.ID) (mesh.Workload, error) {
	if node == nil || node.GetId() == "" {
		return mesh.Workload{}, errors.New("first request carries no node id")
	}
	md, err := xdsmeta.Decode(node.GetMetadata())
	if err != nil {
		return mesh.Workload{}, fmt.Errorf("node %q: %w", node.GetId(), err)
	}
	want, err := spiffeid.FromPathf(id.TrustDomain(), "/ns/%s/sa/%s", md.Namespace, md.ServiceAccount)
	if err != nil {
		return mesh.Workload{}, fmt.Errorf("node %q: %w", node.GetId(), err)
	}
	if want != id {
		return mesh.Workload{}, fmt.Errorf("node %q claims service account %s/%s but its certificate is %s", node.GetId(), md.Namespace, md.ServiceAccount, id)
	}
	return mesh.Workload{
		ID:             node.GetId(),
		Service:        md.Service,
		Namespace:      md.Namespace,
		ServiceAccount: md.ServiceAccount,
		Version:        md.Version,
		Labels:         mesh.WorkloadLabels(md.Service, md.Version, md.Labels),
		Address:        md.Address,
		Identity:       id.String(),
	}, nil
}

// OnStreamDeltaResponse names the store revision in the response's system
// version (revision.go) and remembers it until the proxy acknowledges it.
func (s *streams) OnStreamDeltaResponse(id int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	resp.SystemVersionInfo = s.srv.revs.name(resp.GetTypeUrl(), resp.GetSystemVersionInfo())
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.byID[id]
	if st == nil {
		return
	}
	if st.sent == nil {
		st.sent = map[string]sentResponse{}
	}
	// A proxy acknowledges every response; one that does not is broken,
	// and its stream is bounded by the limits: keep a few.
	if len(st.sent) >= 64 {
		clear(st.sent)
	}
	st.sent[resp.GetNonce()] = sentResponse{typeURL: resp.GetTypeUrl(), version: resp.GetSystemVersionInfo()}
}

// sentResponse is a response on its way to a proxy.
type sentResponse struct{ typeURL, version string }

// acked records the proxy's answer to the response with nonce: an ACK
// (ok) makes its version the proxy's for that type.
func (st *stream) acked(typeURL, nonce string, ok bool) {
	sent, found := st.sent[nonce]
	delete(st.sent, nonce)
	if !found || !ok || sent.typeURL != typeURL {
		return
	}
	if st.status.Versions == nil {
		st.status.Versions = map[string]string{}
	}
	st.status.Versions[typeURL] = sent.version
	if rev, ok := xdsmeta.ParseVersion(sent.version); ok {
		st.status.Revision = max(st.status.Revision, rev)
	}
}

func (s *streams) status() []ProxyStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ProxyStatus, 0, len(s.byID))
	for _, st := range s.byID {
		ps := st.status
		ps.Acked = maps.Clone(ps.Acked)
		ps.Nacked = maps.Clone(ps.Nacked)
		ps.Versions = maps.Clone(ps.Versions)
		ps.Replica = s.srv.opts.ReplicaID
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// State-of-the-world streams are not used by weft proxies; they are served,
// authenticated by admitStream like every stream, without registration.
// REST fetch is not served.

func (s *streams) OnStreamOpen(ctx context.Context, _ int64, _ string) error {
	if callerFrom(ctx) == nil {
		return errNotAdmitted
	}
	return nil
}
func (s *streams) OnStreamClosed(int64, *corev3.Node) {}
func (s *streams) OnStreamRequest(int64, *discoveryv3.DiscoveryRequest) error {
	return nil
}
func (s *streams) OnStreamResponse(context.Context, int64, *discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {
}
func (s *streams) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error {
	return status.Error(codes.Unimplemented, "xds: REST fetch is not served")
}
func (s *streams) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {}
