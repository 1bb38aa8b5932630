package config

import (
	"context"
	"fmt"
	"sync/atomic"
)

// Provider gives the data plane the current Config. The xDS client implements
// it; tests use Static.
type Provider interface {
	// Load returns the current snapshot. It never returns nil.
	Load() *Config
	// Endpoints returns the endpoints of the service with the given key,
	// subscribing to them on first use and waiting, bounded by ctx, until
	// they arrive.
	Endpoints(ctx context.Context, key string) ([]Endpoint, error)
}

// Static is a Provider over a Config that tests replace by hand.
type Static struct{ cfg atomic.Pointer[Config] }

// NewStatic returns a Static serving c.
func NewStatic(c *Config) *Static {
	s := &Static{}
	s.Store(c)
	return s
}

// Store swaps in a new Config.
func (s *Static) Store(c *Config) { s.cfg.Store(c) }

// Load implements Provider.
func (s *Static) Load() *Config { return s.cfg.Load() }

// Endpoints implements Provider; it never waits.
func (s *Static) Endpoints(_ context.Context, key string) ([]Endpoint, error) {
	eps, ok := s.cfg.Load().Endpoints[key]
	if !ok {
		return nil, fmt.Errorf("no endpoints known for %s", key)
	}
	return eps, nil
}
