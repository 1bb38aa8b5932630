package xdsclient

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"google.golang.org/grpc/resolver"
)

// Scheme is the gRPC target scheme naming several control-plane replicas:
// "weft-control:///host1:port1,host2:port2". A channel dialled with such a
// target holds every address and uses gRPC's pick_first balancer with a
// shuffled address list: it connects to one replica at a time, the
// replicas of a mesh are spread over its proxies, and when the connected
// replica goes away the next attempt (the xDS stream's jittered backoff,
// or a certificate renewal) connects to the next address that answers.
// Both the xDS stream and the CA calls of a proxy go through such
// channels, so both fail over.
const Scheme = "weft-control"

// The resolver is stateless (each channel's addresses are in its target),
// so registering it once, as gRPC's own schemes are, holds no mutable
// state of weft's.
func init() { resolver.Register(replicasBuilder{}) }

// ParseAddresses parses a comma-separated list of control-plane xDS
// addresses ("host:port,host:port"), refusing an empty list, an entry that
// is not host:port and duplicates.
func ParseAddresses(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return nil, fmt.Errorf("control plane addresses %q: empty entry", list)
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("control plane address %q: want host:port: %w", a, err)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("control plane address %q: %q is not a port", a, port)
		}
		if host == "" {
			return nil, fmt.Errorf("control plane address %q: no host", a)
		}
		if seen[a] {
			return nil, fmt.Errorf("control plane address %q is listed twice", a)
		}
		seen[a] = true
		out = append(out, a)
	}
	return out, nil
}

// Target is the gRPC target that reaches addrs: the address itself when
// there is one (as before: gRPC's default resolver), a Scheme target when
// there are several.
func Target(addrs []string) string {
	if len(addrs) == 1 {
		return addrs[0]
	}
	return Scheme + ":///" + strings.Join(addrs, ",")
}

// replicaServiceConfig makes pick_first shuffle the address list, so that
// the proxies of a mesh do not all connect to the first replica.
const replicaServiceConfig = `{"loadBalancingConfig":[{"pick_first":{"shuffleAddressList":true}}]}`

type replicasBuilder struct{}

func (replicasBuilder) Scheme() string { return Scheme }

func (replicasBuilder) Build(t resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	addrs, err := ParseAddresses(strings.TrimPrefix(t.Endpoint(), "/"))
	if err != nil {
		return nil, err
	}
	r := &replicasResolver{cc: cc}
	for _, a := range addrs {
		r.state.Endpoints = append(r.state.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}})
		r.state.Addresses = append(r.state.Addresses, resolver.Address{Addr: a})
	}
	r.state.ServiceConfig = cc.ParseServiceConfig(replicaServiceConfig)
	if err := cc.UpdateState(r.state); err != nil {
		return nil, fmt.Errorf("control plane addresses: %w", err)
	}
	return r, nil
}

// replicasResolver reports the fixed addresses of its target.
type replicasResolver struct {
	cc    resolver.ClientConn
	state resolver.State
}

// ResolveNow reports the addresses again: pick_first shuffles them anew.
func (r *replicasResolver) ResolveNow(resolver.ResolveNowOptions) { _ = r.cc.UpdateState(r.state) }

func (r *replicasResolver) Close() {}
