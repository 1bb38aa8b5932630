// Package registry tracks the workloads of the mesh. A workload is live while
// its proxy's xDS stream is open: a clean shutdown and a killed process both
// close the stream and remove the workload at once, and gRPC keepalives catch
// peers that vanish without closing. The registry is persisted so that after
// a control-plane restart known workloads stay routable for a grace period
// (their lease) while their proxies reconnect, instead of disappearing.
package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"weft.dev/weft/internal/control/mesh"
)

// persistKey is the blob under which the registry is saved.
const persistKey = "registry/workloads"

// Persistence stores the registry between restarts.
type Persistence interface {
	GetBlob(key string) ([]byte, error)
	PutBlob(key string, val []byte) error
}

type entry struct {
	// w is immutable once stored; a new registration replaces it.
	w *mesh.Workload
	// streams counts open xDS streams of this workload.
	streams int
	// expires is set for workloads restored from persistence that have not
	// reconnected yet; zero means the lease is held by an open stream.
	expires time.Time
}

// Registry is the set of known workloads. It is safe for concurrent use.
type Registry struct {
	logger  *slog.Logger
	persist Persistence
	grace   time.Duration
	now     func() time.Time

	mu       sync.Mutex
	entries  map[string]*entry
	byAddr   map[string]string // inbound address -> workload ID
	revision uint64
	dirty    bool
	notify   chan struct{}
}

// New loads the persisted workloads, each with a lease of grace.
func New(p Persistence, grace time.Duration, logger *slog.Logger) (*Registry, error) {
	r := &Registry{
		logger:  logger,
		persist: p,
		grace:   grace,
		now:     time.Now,
		entries: map[string]*entry{},
		byAddr:  map[string]string{},
		notify:  make(chan struct{}, 1),
	}
	b, err := p.GetBlob(persistKey)
	if err != nil {
		return nil, fmt.Errorf("loading workload registry: %w", err)
	}
	if len(b) > 0 {
		var ws []mesh.Workload
		if err := json.Unmarshal(b, &ws); err != nil {
			return nil, fmt.Errorf("decoding workload registry: %w", err)
		}
		exp := r.now().Add(grace)
		for _, w := range ws {
			r.revision++
			w.Revision = r.revision
			r.entries[w.ID] = &entry{w: &w, expires: exp}
			if w.Address != "" {
				r.byAddr[w.Address] = w.ID
			}
		}
		if len(ws) > 0 {
			logger.Info("restored workloads; they keep their endpoints until their proxies reconnect", "count", len(ws), "grace", grace)
		}
	}
	return r, nil
}

// Changes receives a value after the workload set changes.
func (r *Registry) Changes() <-chan struct{} { return r.notify }

// Connect records an open stream of workload w. A different workload
// registered at the same inbound address is replaced: the address now
// belongs to w.
func (r *Registry) Connect(w mesh.Workload) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w.Address != "" {
		if id, ok := r.byAddr[w.Address]; ok && id != w.ID {
			r.removeLocked(id)
		}
	}
	e, ok := r.entries[w.ID]
	if !ok {
		e = &entry{}
		r.entries[w.ID] = e
	} else if e.w.Address != w.Address {
		delete(r.byAddr, e.w.Address)
	}
	r.revision++
	w.Revision = r.revision
	e.w = &w
	if w.Address != "" {
		r.byAddr[w.Address] = w.ID
	}
	e.streams++
	e.expires = time.Time{}
	r.changedLocked()
}

func (r *Registry) removeLocked(id string) {
	if e, ok := r.entries[id]; ok {
		if r.byAddr[e.w.Address] == id {
			delete(r.byAddr, e.w.Address)
		}
		delete(r.entries, id)
	}
}

// Disconnect records that one stream of workload id closed. When it was
// the last one, the workload leaves the mesh.
func (r *Registry) Disconnect(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[id]
	if !ok {
		return
	}
	e.streams--
	if e.streams > 0 {
		return
	}
	r.removeLocked(id)
	r.changedLocked()
}

// List returns the live workloads sorted by ID. They are shared and must
// not be modified.
func (r *Registry) List() []*mesh.Workload {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*mesh.Workload, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e.w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (r *Registry) changedLocked() {
	r.dirty = true
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// Run expires restored leases and persists changes until ctx ends. It
// persists a final time before returning, so a clean stop keeps the set.
func (r *Registry) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		r.expire()
		if err := r.save(); err != nil {
			r.logger.Error("persisting workload registry", "err", err)
		}
	}
}

// Freeze saves the current set and stops recording disconnects, for a
// control plane that is shutting down: its streams are about to close, but
// the workloads behind them are not gone.
func (r *Registry) Freeze() error {
	err := r.save()
	r.mu.Lock()
	r.persist = frozen{}
	r.entries = map[string]*entry{}
	r.byAddr = map[string]string{}
	r.mu.Unlock()
	return err
}

type frozen struct{}

func (frozen) GetBlob(string) ([]byte, error) { return nil, nil }
func (frozen) PutBlob(string, []byte) error   { return nil }

func (r *Registry) expire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for id, e := range r.entries {
		if !e.expires.IsZero() && now.After(e.expires) {
			r.logger.Info("workload lease expired", "workload", id)
			r.removeLocked(id)
			r.changedLocked()
		}
	}
}

func (r *Registry) save() error {
	r.mu.Lock()
	if !r.dirty {
		r.mu.Unlock()
		return nil
	}
	r.dirty = false
	ws := make([]mesh.Workload, 0, len(r.entries))
	for _, e := range r.entries {
		ws = append(ws, *e.w)
	}
	p := r.persist
	r.mu.Unlock()
	sort.Slice(ws, func(i, j int) bool { return ws[i].ID < ws[j].ID })
	b, err := json.Marshal(ws)
	if err != nil {
		return err
	}
	return p.PutBlob(persistKey, b)
}
