package xdsclient

import (
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Make before break: a new version of a Service resource whose routes name
// backends this proxy has no endpoints for would, applied at once, make the
// next requests wait for those endpoints (or fail). So when the proxy
// already calls the service, the client holds the new version back: it
// ACKs and records it, subscribes to the missing backends' endpoints, and
// keeps serving the previous version until they have all arrived (or
// EndpointWait has passed, or the backends turn out not to exist), then
// applies it. Only backends of services known to the mesh are waited for.

// held is a Service version held back until its backends' endpoints
// arrive.
type held struct {
	svc     *weftv1.Service
	missing map[string]bool
	timer   *time.Timer
}

// holdLocked moves out of services, and returns, every resource that must
// wait for endpoints; it subscribes to those and records the resource in
// c.held. A newer version replaces a held one; a removed service is no
// longer held.
func (c *Client) holdLocked(services map[string]*weftv1.Service, removed []string) map[string]*weftv1.Service {
	for _, name := range removed {
		c.releaseLocked(name)
	}
	var out map[string]*weftv1.Service
	cfg := c.cfg.Load()
	for name, s := range services {
		c.releaseLocked(name)
		prev := cfg.Services[name]
		if prev == nil || !c.callsLocked(prev) || weftv1.ValidateService(s) != nil {
			continue
		}
		missing := map[string]bool{}
		for _, r := range s.GetRoutes() {
			for _, b := range r.GetBackends() {
				key := weftv1.ResourceName(b.GetService(), b.GetNamespace())
				if b.GetFailStatus() != 0 || b.GetWeight() == 0 || missing[key] {
					continue
				}
				if _, have := cfg.Endpoints[key]; have {
					continue
				}
				if _, known := c.services[key]; !known && services[key] == nil {
					continue // not a mesh service: the route answers 500 for it
				}
				missing[key] = true
			}
		}
		if len(missing) == 0 {
			continue
		}
		var subscribe []string
		for key := range missing {
			if !c.wanted[key] {
				c.wanted[key] = true
				subscribe = append(subscribe, key)
			}
		}
		if len(subscribe) > 0 && c.stream != nil {
			if err := c.stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: weftv1.EndpointsType, ResourceNamesSubscribe: subscribe}); err != nil {
				c.opts.Logger.Debug("subscribing to endpoints", "services", subscribe, "err", err)
			}
		}
		h := &held{svc: s, missing: missing}
		h.timer = time.AfterFunc(c.opts.EndpointWait, func() { c.expire(name, h) })
		c.held[name] = h
		if out == nil {
			out = map[string]*weftv1.Service{}
		}
		out[name] = s
		delete(services, name)
		c.opts.Logger.Debug("holding a route change until its backends' endpoints arrive", "service", name, "missing", len(missing))
	}
	return out
}

// callsLocked reports whether the proxy calls service s: it has the
// endpoints of s or of a backend of its routes.
func (c *Client) callsLocked(s *config.Service) bool {
	if c.wanted[s.Key] {
		return true
	}
	uses := false
	check := func(rs []config.Route) {
		for i := range rs {
			rs[i].BackendKeys(func(key string) { uses = uses || c.wanted[key] })
		}
	}
	check(s.Routes)
	for _, rs := range s.ConsumerRoutes {
		check(rs)
	}
	return uses
}

// releaseReadyLocked applies to cfg the held versions whose missing
// endpoints cfg now has, and forgets them.
func (c *Client) releaseReadyLocked(cfg *config.Config) *config.Config {
	var ready map[string]*weftv1.Service
	for name, h := range c.held {
		for key := range h.missing {
			if _, ok := cfg.Endpoints[key]; ok {
				delete(h.missing, key)
			}
		}
		if len(h.missing) == 0 {
			if ready == nil {
				ready = map[string]*weftv1.Service{}
			}
			ready[name] = h.svc
			c.releaseLocked(name)
		}
	}
	return c.applyHeld(cfg, ready)
}

// releaseLocked forgets the held version of name, if any.
func (c *Client) releaseLocked(name string) {
	if h := c.held[name]; h != nil {
		h.timer.Stop()
		delete(c.held, name)
	}
}

// expire applies a held version whose endpoints did not arrive within
// EndpointWait: the route change is not lost, its requests wait (bounded)
// for the endpoints as those of a newly called service do.
func (c *Client) expire(name string, h *held) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[name] != h {
		return
	}
	delete(c.held, name)
	c.opts.Logger.Warn("applying a route change before its backends' endpoints arrived", "service", name, "after", c.opts.EndpointWait)
	c.cfg.Store(c.applyHeld(c.cfg.Load(), map[string]*weftv1.Service{name: h.svc}))
	close(c.updated)
	c.updated = make(chan struct{})
}

// applyHeld compiles released held versions into cfg.
func (c *Client) applyHeld(cfg *config.Config, services map[string]*weftv1.Service) *config.Config {
	if len(services) == 0 {
		return cfg
	}
	out, rejected := cfg.UpdateEach(cfg.Version, config.Delta{Services: services})
	if rejected != nil {
		c.opts.Logger.Error("a held route change does not compile; keeping the previous version", "err", rejected)
	}
	return out
}
