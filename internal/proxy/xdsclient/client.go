// Package xdsclient keeps a proxy's config in step with the control plane
// over delta ADS. It subscribes to every Service and, on demand, to the
// Endpoints of services the proxy actually calls. Each response is compiled
// into a new config, resource by resource, and swapped in atomically: a
// response whose resources all compile is ACKed; one with a bad resource is
// NACKed naming it, that resource keeps its last good version, and the
// other resources of the response still apply. The stream reconnects with backoff, and the proxy keeps working
// on its last config while the control plane is away.
package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/xdsapi/weftv1"
	"weft.dev/weft/internal/xdsmeta"
)

// Options configure a Client.
type Options struct {
	// Conn reaches the control plane (mTLS with the proxy's SVID).
	Conn grpc.ClientConnInterface
	// NodeID is unique to this proxy process.
	NodeID string
	// Workload is registered through the node metadata.
	Workload xdsmeta.Workload
	Logger   *slog.Logger
	// EndpointWait bounds how long a request waits for the endpoints of a
	// newly called service (default 5s).
	EndpointWait time.Duration
	// BackoffBase and BackoffMax shape the reconnect backoff (defaults
	// DefaultBackoffBase and DefaultBackoffMax).
	BackoffBase, BackoffMax time.Duration
	// Gateway, if set, is the name of the Gateway resource this proxy
	// serves (an ingress gateway: see gateway.go).
	Gateway string
}

// Client is the proxy's xDS client and its config.Provider.
type Client struct {
	opts Options
	node *corev3.Node
	cfg  atomic.Pointer[config.Config]

	mu        sync.Mutex
	services  map[string]*weftv1.Service
	endpoints map[string]*weftv1.Endpoints
	versions  map[string]map[string]string // type URL → name → version
	// applied maps type URL to the system version of the last response
	// of that type applied in full: "r<store revision>-<n>" (xdsmeta).
	applied   map[string]string
	wanted    map[string]bool
	held      map[string]*held // makebeforebreak.go
	stream    discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	updated   chan struct{}
	ready     bool
	connected bool
	lastNACK  string
	acks      uint64
	nacks     uint64
	conn      connState    // the stream's connection history, see Run
	gateway   gatewayState // gateway.go
}

// connState is the stream's connection history.
type connState struct {
	since       time.Time // of the current state: connected, or not
	attempts    int       // failed attempts since the last connection
	opened      int       // streams that delivered a response
	lastError   string
	lastErrorAt time.Time
	// control is the address of the replica the stream is (or was last)
	// connected to.
	control string
}

var _ config.Provider = (*Client)(nil)

// New creates a Client; Run connects it.
func New(opts Options) (*Client, error) {
	if opts.EndpointWait == 0 {
		opts.EndpointWait = 5 * time.Second
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = DefaultBackoffBase
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = DefaultBackoffMax
	}
	md, err := xdsmeta.Encode(opts.Workload)
	if err != nil {
		return nil, fmt.Errorf("encoding node metadata: %w", err)
	}
	c := &Client{
		opts:      opts,
		node:      &corev3.Node{Id: opts.NodeID, Cluster: opts.Workload.Service, Metadata: md, UserAgentName: "weft"},
		services:  map[string]*weftv1.Service{},
		endpoints: map[string]*weftv1.Endpoints{},
		versions:  map[string]map[string]string{weftv1.ServiceType: {}, weftv1.EndpointsType: {}, weftv1.GatewayType: {}},
		wanted:    map[string]bool{},
		applied:   map[string]string{},
		held:      map[string]*held{},
		updated:   make(chan struct{}),
		conn:      connState{since: time.Now()},
	}
	c.cfg.Store(config.Empty())
	return c, nil
}

// Load implements config.Provider.
func (c *Client) Load() *config.Config { return c.cfg.Load() }

// Ready reports nil once the first config from the control plane is applied.
func (c *Client) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		return errors.New("waiting for first config from the control plane")
	}
	return nil
}

// Endpoints implements config.Provider: it subscribes to the endpoints of
// key on first use and waits until they arrive.
func (c *Client) Endpoints(ctx context.Context, key string) ([]config.Endpoint, error) {
	if eps, ok := c.cfg.Load().Endpoints[key]; ok {
		return eps, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.EndpointWait)
	defer cancel()
	for {
		c.mu.Lock()
		if eps, ok := c.cfg.Load().Endpoints[key]; ok {
			c.mu.Unlock()
			return eps, nil
		}
		if !c.wanted[key] {
			c.wanted[key] = true
			if c.stream != nil {
				if err := c.stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: weftv1.EndpointsType, ResourceNamesSubscribe: []string{key}}); err != nil {
					c.opts.Logger.Debug("subscribing to endpoints", "service", key, "err", err)
				}
			}
		}
		ch := c.updated
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("endpoints of %s not received from the control plane: %w", key, ctx.Err())
		}
	}
}

// Run connects and reconnects until ctx ends. Failed attempts are retried
// with jittered backoff (Backoff), each recorded with its cause (Cause) for
// ConnState and logged without flooding (FailureLog). The stream is open,
// and the backoff starts over, once the first response arrives.
func (c *Client) Run(ctx context.Context) error {
	bo := Backoff{Base: c.opts.BackoffBase, Max: c.opts.BackoffMax}
	fl := &FailureLog{Logger: c.opts.Logger}
	for {
		err := c.session(ctx, func() {
			bo.Reset()
			if n, outage := fl.Succeeded(); n > 0 {
				c.opts.Logger.Info("xds: connected to the control plane again", "failed_attempts", n, "outage", outage.Round(time.Millisecond))
			}
		})
		if ctx.Err() != nil {
			return nil
		}
		cause := Cause(err)
		wait := bo.Next()
		c.failed(cause)
		fl.Failed("xds: no stream to the control plane; keeping the last config and retrying", cause, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// failed records a failed attempt.
func (c *Client) failed(cause string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn.attempts++
	c.conn.lastError, c.conn.lastErrorAt = cause, time.Now()
}

// ConnState is the xDS stream's state, for the admin endpoint (/xds) and
// `weft proxy-status --admin`.
type ConnState struct {
	// Connected is true while the stream is open and has delivered a
	// response.
	Connected bool `json:"connected"`
	// Since is when the stream opened, or, when not connected, when it
	// closed (the proxy's start before the first connection).
	Since time.Time `json:"since"`
	// FailedAttempts counts attempts since the stream last opened.
	FailedAttempts int `json:"failedAttempts"`
	// Reconnects counts streams opened after the first.
	Reconnects int `json:"reconnects"`
	// LastError is the cause of the last failed attempt, and LastErrorAt
	// when it happened.
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	ACKs        uint64    `json:"acks"`
	NACKs       uint64    `json:"nacks"`
	LastNACK    string    `json:"lastNack,omitempty"`
	// Control is the address of the control-plane replica the stream is
	// connected to (or was last).
	Control string `json:"control,omitempty"`
	// Versions maps type URL to the version of the last response of that
	// type applied in full, and Revision is the newest store revision
	// they name (0 if the control plane names none): the configuration
	// revision this proxy has caught up with.
	Versions map[string]string `json:"versions,omitempty"`
	Revision uint64            `json:"revision"`
}

// ConnState reports the stream's state.
func (c *Client) ConnState() ConnState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connStateLocked()
}

func (c *Client) connStateLocked() ConnState {
	return ConnState{
		Connected: c.connected, Since: c.conn.since,
		FailedAttempts: c.conn.attempts, Reconnects: max(0, c.conn.opened-1),
		LastError: c.conn.lastError, LastErrorAt: c.conn.lastErrorAt,
		ACKs: c.acks, NACKs: c.nacks, LastNACK: c.lastNACK,
		Control: c.conn.control, Versions: maps.Clone(c.applied), Revision: c.revisionLocked(),
	}
}

// session runs one stream; opened is called when its first response
// arrives.
func (c *Client) session(ctx context.Context, opened func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(c.opts.Conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return fmt.Errorf("opening ADS stream: %w", err)
	}
	c.mu.Lock()
	reqs := []*discoveryv3.DeltaDiscoveryRequest{{
		Node:                    c.node,
		TypeUrl:                 weftv1.ServiceType,
		ResourceNamesSubscribe:  []string{"*"},
		InitialResourceVersions: maps.Clone(c.versions[weftv1.ServiceType]),
	}}
	if len(c.wanted) > 0 {
		names := make([]string, 0, len(c.wanted))
		for k := range c.wanted {
			names = append(names, k)
		}
		sort.Strings(names)
		reqs = append(reqs, &discoveryv3.DeltaDiscoveryRequest{
			TypeUrl:                 weftv1.EndpointsType,
			ResourceNamesSubscribe:  names,
			InitialResourceVersions: maps.Clone(c.versions[weftv1.EndpointsType]),
		})
	}
	reqs = c.gatewaySubscriptionLocked(reqs) // gateway.go
	for _, r := range reqs {
		if err := stream.Send(r); err != nil {
			c.mu.Unlock()
			return fmt.Errorf("sending subscription: %w", err)
		}
	}
	c.stream = stream
	c.mu.Unlock()
	first := true
	control := ""
	if p, ok := peer.FromContext(stream.Context()); ok && p.Addr != nil {
		control = p.Addr.String()
	}
	defer func() {
		c.mu.Lock()
		c.stream = nil
		c.connected = false
		if !first {
			c.conn.since = time.Now()
		}
		c.mu.Unlock()
	}()
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		if first {
			first = false
			c.mu.Lock()
			c.conn.opened++
			c.conn.since, c.conn.attempts = time.Now(), 0
			c.conn.control = control
			c.mu.Unlock()
			if control != "" {
				c.opts.Logger.Info("xds: stream open", "control", control)
			}
			opened()
		}
		if err := c.handle(stream, resp); err != nil {
			return err
		}
	}
}

// handle applies one response and ACKs or NACKs it. Each resource is
// compiled on its own: the ones that compile are applied, and the ones
// that do not are named in the NACK and stay at their last good version
// (or absent), so one bad resource never holds back the others or the
// proxy's readiness.
func (c *Client) handle(stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient, resp *discoveryv3.DeltaDiscoveryResponse) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.connected = true
	// Decode and compile only what this response carries; the resource
	// maps change, in place, only for what compiled.
	var (
		delta    config.Delta
		versions map[string]string
		bad      []string
		heldBack map[string]*weftv1.Service // makebeforebreak.go
	)
	ack := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}
	switch resp.GetTypeUrl() {
	case weftv1.ServiceType:
		delta.Services, versions, bad = decode(resp, func() *weftv1.Service { return &weftv1.Service{} })
		delta.RemovedServices = resp.GetRemovedResources()
		heldBack = c.holdLocked(delta.Services, delta.RemovedServices)
	case weftv1.EndpointsType:
		delta.Endpoints, versions, bad = decode(resp, func() *weftv1.Endpoints { return &weftv1.Endpoints{} })
		delta.RemovedEndpoints = resp.GetRemovedResources()
	case weftv1.GatewayType:
		c.handleGatewayLocked(ack, resp) // gateway.go
		return c.send(stream, ack)
	default:
		c.nackLocked(ack, resp.GetTypeUrl(), fmt.Sprintf("unexpected type %s", resp.GetTypeUrl()))
		return c.send(stream, ack)
	}
	cfg, rejected := c.cfg.Load().UpdateEach(resp.GetSystemVersionInfo(), delta)
	if rejected != nil {
		for _, r := range rejected.Resources {
			bad = append(bad, r.Error())
			// Keep the last good version: the resource is not committed.
			delete(delta.Services, r.Name)
			delete(delta.Endpoints, r.Name)
		}
	}
	if len(bad) > 0 {
		c.nackLocked(ack, resp.GetTypeUrl(), strings.Join(bad, "; "))
	} else {
		c.acks++
		c.applied[resp.GetTypeUrl()] = resp.GetSystemVersionInfo()
	}
	known := c.versions[resp.GetTypeUrl()]
	if resp.GetTypeUrl() == weftv1.ServiceType {
		commit(c.services, known, delta.Services, versions, delta.RemovedServices)
		commit(c.services, known, heldBack, versions, nil)
		c.ready = true
	} else {
		commit(c.endpoints, known, delta.Endpoints, versions, delta.RemovedEndpoints)
		cfg = c.releaseReadyLocked(cfg)
	}
	cfg.Version = c.versionLocked()
	c.cfg.Store(cfg)
	close(c.updated)
	c.updated = make(chan struct{})
	return c.send(stream, ack)
}

// nackLocked counts and logs a rejection and puts it in ack.
func (c *Client) nackLocked(ack *discoveryv3.DeltaDiscoveryRequest, typeURL, msg string) {
	c.nacks++
	c.lastNACK = msg
	c.opts.Logger.Error("rejecting config from control plane; keeping the last good version of each rejected resource", "type", typeURL, "err", msg)
	ack.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: msg}
}

func (c *Client) send(stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient, ack *discoveryv3.DeltaDiscoveryRequest) error {
	if err := stream.Send(ack); err != nil {
		return fmt.Errorf("sending ack: %w", err)
	}
	return nil
}

// revisionLocked is the newest store revision named by the versions
// applied.
func (c *Client) revisionLocked() uint64 {
	var rev uint64
	for _, v := range c.applied {
		if r, ok := xdsmeta.ParseVersion(v); ok {
			rev = max(rev, r)
		}
	}
	return rev
}

func (c *Client) versionLocked() string {
	return fmt.Sprintf("acks=%d", c.acks)
}

// decode unmarshals the resources of resp and returns them and their
// versions by name, and a message for each resource that could not be
// decoded (left out).
func decode[T proto.Message](resp *discoveryv3.DeltaDiscoveryResponse, newT func() T) (map[string]T, map[string]string, []string) {
	changed := make(map[string]T, len(resp.GetResources()))
	versions := make(map[string]string, len(resp.GetResources()))
	var bad []string
	for _, r := range resp.GetResources() {
		msg := newT()
		if r.GetResource() == nil {
			bad = append(bad, fmt.Sprintf("resource %q: empty", r.GetName()))
			continue
		}
		if err := r.GetResource().UnmarshalTo(msg); err != nil {
			bad = append(bad, fmt.Sprintf("resource %q: %v", r.GetName(), err))
			continue
		}
		changed[r.GetName()] = msg
		versions[r.GetName()] = r.GetVersion()
	}
	return changed, versions, bad
}

// commit records an accepted response in the client's resource and
// version maps.
func commit[T any](m map[string]T, known map[string]string, changed map[string]T, versions map[string]string, removed []string) {
	for _, name := range removed {
		delete(m, name)
		delete(known, name)
	}
	for name, r := range changed {
		m[name] = r
		known[name] = versions[name]
	}
}

// Status is the client's state for /config_dump and /ready.
type Status struct {
	ConnState
	Wanted []string `json:"subscribedEndpoints"`
	// Held are the services whose latest version waits for its backends'
	// endpoints (makebeforebreak.go).
	Held []string `json:"heldRouteChanges,omitempty"`
}

// Dump returns the active config and client status as JSON-friendly values.
func (c *Client) Dump() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{ConnState: c.connStateLocked()}
	for k := range c.wanted {
		st.Wanted = append(st.Wanted, k)
	}
	sort.Strings(st.Wanted)
	for k := range c.held {
		st.Held = append(st.Held, k)
	}
	sort.Strings(st.Held)
	mo := protojson.MarshalOptions{UseProtoNames: true}
	raw := func(m proto.Message) rawJSON {
		b, _ := mo.Marshal(m)
		return rawJSON(b)
	}
	svcs := map[string]rawJSON{}
	for k, v := range c.services {
		svcs[k] = raw(v)
	}
	eps := map[string]rawJSON{}
	for k, v := range c.endpoints {
		eps[k] = raw(v)
	}
	dump := map[string]any{"status": st, "services": svcs, "endpoints": eps, "workload": c.opts.Workload, "node": c.opts.NodeID}
	if c.opts.Gateway != "" {
		dump["gateway"] = c.gatewayDumpLocked() // gateway.go
	}
	return dump
}

type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return []byte(strings.TrimSpace(string(r))), nil
}
