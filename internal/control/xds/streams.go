package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

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
}

type stream struct {
	identity spiffeid.ID
	status   ProxyStatus
	// registered is set once the workload joined the registry.
	registered bool
}

// streams implements go-control-plane's callbacks: it authenticates every
// stream by its client certificate, registers the workload named in the
// node metadata and records ACKs and NACKs.
type streams struct {
	registry *registry.Registry
	logger   *slog.Logger

	mu   sync.Mutex
	byID map[int64]*stream
}

func newStreams(r *registry.Registry, logger *slog.Logger) *streams {
	return &streams{registry: r, logger: logger, byID: map[int64]*stream{}}
}

func peerID(ctx context.Context) (spiffeid.ID, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return spiffeid.ID{}, errors.New("no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return spiffeid.ID{}, errors.New("proxy presented no client certificate")
	}
	return x509svid.IDFromCert(ti.State.PeerCertificates[0])
}

func (s *streams) OnDeltaStreamOpen(ctx context.Context, id int64, typeURL string) error {
	pid, err := peerID(ctx)
	if err != nil {
		return fmt.Errorf("xds stream rejected: %w", err)
	}
	s.mu.Lock()
	s.byID[id] = &stream{identity: pid, status: ProxyStatus{Identity: pid.String(), Connected: time.Now(), Acked: map[string]string{}, Nacked: map[string]string{}}}
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
	if req.GetErrorDetail() != nil {
		st.status.Nacked[req.GetTypeUrl()] = req.GetErrorDetail().GetMessage()
		s.logger.Warn("proxy rejected config", "workload", st.status.ID, "type", req.GetTypeUrl(), "err", req.GetErrorDetail().GetMessage())
	} else if req.GetResponseNonce() != "" {
		st.status.Acked[req.GetTypeUrl()] = req.GetResponseNonce()
		delete(st.status.Nacked, req.GetTypeUrl())
	}
	if st.registered {
		s.mu.Unlock()
		return nil
	}
	w, err := workloadFromNode(req.GetNode(), st.identity)
	if err != nil {
		s.mu.Unlock()
		s.logger.Warn("rejecting proxy", "identity", st.identity.String(), "err", err)
		return err
	}
	st.registered = true
	st.status.ID, st.status.Service, st.status.Namespace, st.status.Address = w.ID, w.Service, w.Namespace, w.Address
	w.Connected = st.status.Connected
	s.mu.Unlock()
	s.logger.Info("proxy connected", "workload", w.ID, "service", w.Service, "namespace", w.Namespace, "address", w.Address)
	s.registry.Connect(w)
	return nil
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

func (s *streams) OnStreamDeltaResponse(int64, *discoveryv3.DeltaDiscoveryRequest, *discoveryv3.DeltaDiscoveryResponse) {
}

func (s *streams) status() []ProxyStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ProxyStatus, 0, len(s.byID))
	for _, st := range s.byID {
		ps := st.status
		ps.Acked = maps.Clone(ps.Acked)
		ps.Nacked = maps.Clone(ps.Nacked)
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// State-of-the-world and REST are not used by weft proxies; their streams
// are served without registration.

func (s *streams) OnStreamOpen(context.Context, int64, string) error { return nil }
func (s *streams) OnStreamClosed(int64, *corev3.Node)                {}
func (s *streams) OnStreamRequest(int64, *discoveryv3.DiscoveryRequest) error {
	return nil
}
func (s *streams) OnStreamResponse(context.Context, int64, *discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {
}
func (s *streams) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error           { return nil }
func (s *streams) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {}
