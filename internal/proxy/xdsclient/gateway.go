package xdsclient

import (
	"fmt"
	"maps"
	"strings"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// gatewayState is the Gateway resource of an ingress gateway proxy.
type gatewayState struct {
	cfg     *config.Gateway // nil until the first one compiled, or once removed
	changed chan struct{}   // closed and replaced on every change
}

// gatewaySubscriptionLocked adds the subscription to the proxy's own
// Gateway resource, if it is a gateway.
func (c *Client) gatewaySubscriptionLocked(reqs []*discoveryv3.DeltaDiscoveryRequest) []*discoveryv3.DeltaDiscoveryRequest {
	if c.opts.Gateway == "" {
		return reqs
	}
	return append(reqs, &discoveryv3.DeltaDiscoveryRequest{
		TypeUrl:                 weftv1.GatewayType,
		ResourceNamesSubscribe:  []string{c.opts.Gateway},
		InitialResourceVersions: maps.Clone(c.versions[weftv1.GatewayType]),
	})
}

// handleGatewayLocked applies a Gateway response and fills in its ACK or
// NACK: a Gateway that does not compile keeps the last good one.
func (c *Client) handleGatewayLocked(ack *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	got, versions, bad := decode(resp, func() *weftv1.Gateway { return &weftv1.Gateway{} })
	known := c.versions[weftv1.GatewayType]
	var next *config.Gateway
	changed := false
	for _, name := range resp.GetRemovedResources() {
		if name == c.opts.Gateway {
			delete(known, name)
			changed = true
		}
	}
	for name, g := range got {
		if name != c.opts.Gateway {
			bad = append(bad, fmt.Sprintf("resource %q: not this gateway's (%q)", name, c.opts.Gateway))
			continue
		}
		cg, err := config.BuildGateway(g)
		if err != nil {
			bad = append(bad, fmt.Sprintf("gateway %q: %v", name, err))
			continue
		}
		next, changed = cg, true
		known[name] = versions[name]
	}
	if len(bad) > 0 {
		c.nackLocked(ack, weftv1.GatewayType, strings.Join(bad, "; "))
	} else {
		c.acks++
	}
	if !changed {
		return
	}
	c.gateway.cfg = next
	if c.gateway.changed != nil {
		close(c.gateway.changed)
	}
	c.gateway.changed = make(chan struct{})
}

// Gateway returns the proxy's current Gateway (nil before the first one
// or after it was deleted) and a channel closed when it changes.
func (c *Client) Gateway() (*config.Gateway, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gateway.changed == nil {
		c.gateway.changed = make(chan struct{})
	}
	return c.gateway.cfg, c.gateway.changed
}

// gatewayDump is the config dump's view of the Gateway: its listeners and
// what they route, never its private keys.
type gatewayDump struct {
	Name      string                `json:"name"`
	Listeners []gatewayListenerDump `json:"listeners"`
}

type gatewayListenerDump struct {
	Name     string   `json:"name"`
	Port     uint32   `json:"port"`
	Protocol string   `json:"protocol"`
	Hostname string   `json:"hostname,omitempty"`
	Hosts    []string `json:"hosts,omitempty"`
	Streams  []string `json:"streams,omitempty"`
}

// gatewayDumpLocked is nil for a proxy that is no gateway or has none yet.
func (c *Client) gatewayDumpLocked() *gatewayDump {
	g := c.gateway.cfg
	if g == nil {
		return nil
	}
	d := &gatewayDump{Name: c.opts.Gateway}
	for _, l := range g.Listeners {
		ld := gatewayListenerDump{Name: l.Name, Port: l.Port, Protocol: l.Protocol, Hostname: l.Hostname}
		for _, h := range l.Hosts {
			ld.Hosts = append(ld.Hosts, h.Hostname)
		}
		for _, s := range l.Streams {
			ld.Streams = append(ld.Streams, s.Name+" "+s.Hostname)
		}
		d.Listeners = append(d.Listeners, ld)
	}
	return d
}
