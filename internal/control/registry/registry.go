// Package registry tracks the workloads of the mesh. A workload is live while
// its proxy's xDS stream is open: a clean shutdown and a killed process both
// close the stream and remove the workload at once, and gRPC keepalives catch
// peers that vanish without closing. The registry is persisted so that after
// a control-plane restart known workloads stay routable for a grace period
// (their lease) while their proxies reconnect, instead of disappearing.
//
// When several control-plane replicas share a store (Replicate, shared.go),
// each publishes the workloads connected to it as keys that live as long
// as the replica, and follows the others': every replica's registry holds
// every workload of the mesh.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"weft.dev/weft/internal/control/mesh"
)

// persistPrefix prefixes the blob keys of persisted workloads, one each, so
// that saving writes only the workloads that changed.
const persistPrefix = "registry/workload/"

// Persistence stores the registry between restarts.
type Persistence interface {
	BlobsWithPrefix(prefix string) (map[string][]byte, error)
	UpdateBlobs(put map[string][]byte, del []string) error
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
	// dirty holds the IDs changed since the last save.
	dirty map[string]bool
	// changed holds the IDs changed since the last TakeChanges.
	changed map[string]bool
	notify  chan struct{}

	// The state below is used when the store is shared (shared.go).
	shared *replication
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
		dirty:   map[string]bool{},
		changed: map[string]bool{},
		notify:  make(chan struct{}, 1),
	}
	blobs, err := p.BlobsWithPrefix(persistPrefix)
	if err != nil {
		return nil, fmt.Errorf("loading workload registry: %w", err)
	}
	if len(blobs) > 0 {
		ws := make([]mesh.Workload, 0, len(blobs))
		for k, b := range blobs {
			var w mesh.Workload
			if err := json.Unmarshal(b, &w); err != nil {
				return nil, fmt.Errorf("decoding workload %s: %w", k, err)
			}
			ws = append(ws, w)
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

// TakeChanges returns the workloads that changed since the previous call and
// forgets them: by ID, the current workload, or nil for one that left. The
// workloads are shared and must not be modified; a workload that changes is
// replaced, so a consumer can tell versions apart by pointer. A consumer
// that starts from List calls TakeChanges first: a change that lands
// between the two calls then shows in both, never in neither.
func (r *Registry) TakeChanges() map[string]*mesh.Workload {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.changed) == 0 {
		return nil
	}
	out := make(map[string]*mesh.Workload, len(r.changed))
	for id := range r.changed {
		out[id] = r.effectiveLocked(id)
	}
	clear(r.changed)
	return out
}

// ErrIDOwned refuses a registration under a workload ID that a workload of
// another identity holds.
var ErrIDOwned = errors.New("workload ID is registered by another identity")

// ErrAddressHeld refuses a registration at an inbound address that a
// workload of another identity holds.
var ErrAddressHeld = errors.New("address is registered by a workload of another identity")

// Connect records an open stream of workload w. A registration is bound to
// the identity (the verified SPIFFE ID in w.Identity) that made it: while a
// workload is known — connected, or restored from persistence and within
// its lease — Connect refuses another identity its ID (ErrIDOwned) and its
// inbound address (ErrAddressHeld), and leaves it untouched. A different
// workload of the same identity at the same address is replaced (a proxy
// restarted with a new node ID): the address now belongs to w.
func (r *Registry) Connect(w mesh.Workload) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[w.ID]
	if ok && e.w.Identity != w.Identity {
		return fmt.Errorf("registering %q as %s: %w (%s)", w.ID, w.Identity, ErrIDOwned, e.w.Identity)
	}
	if err := r.shared.checkOwner(w); err != nil { // shared.go
		return err
	}
	var evict string
	if w.Address != "" {
		if id, held := r.byAddr[w.Address]; held && id != w.ID {
			if owner := r.entries[id].w.Identity; owner != w.Identity {
				return fmt.Errorf("registering %q at %s as %s: %w (%q, %s)", w.ID, w.Address, w.Identity, ErrAddressHeld, id, owner)
			}
			evict = id
		}
	}
	if evict != "" {
		r.removeLocked(evict)
	}
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
	r.changedLocked(w.ID)
	return nil
}

func (r *Registry) removeLocked(id string) {
	if e, ok := r.entries[id]; ok {
		if r.byAddr[e.w.Address] == id {
			delete(r.byAddr, e.w.Address)
		}
		delete(r.entries, id)
		r.dirty[id] = true
		r.changed[id] = true
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
	r.changedLocked(id)
}

// List returns the live workloads sorted by ID: those connected to this
// control plane, or restored within their lease, and with a shared store
// those connected to the other replicas. They are shared and must not be
// modified.
func (r *Registry) List() []*mesh.Workload {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*mesh.Workload, 0, len(r.entries))
	for id := range r.entries {
		if w := r.effectiveLocked(id); w != nil {
			out = append(out, w)
		}
	}
	for id := range r.shared.ids() { // shared.go
		if _, local := r.entries[id]; !local {
			if w := r.effectiveLocked(id); w != nil {
				out = append(out, w)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// effectiveLocked is the workload the mesh sees under id: the one
// connected to this replica, else one connected to another replica (or
// held while it moves, shared.go), else one restored within its lease;
// nil if none.
func (r *Registry) effectiveLocked(id string) *mesh.Workload {
	e, ok := r.entries[id]
	if ok && e.expires.IsZero() {
		return e.w
	}
	if w := r.shared.workload(id); w != nil {
		return w
	}
	if ok {
		return e.w
	}
	return nil
}

func (r *Registry) changedLocked(id string) {
	r.dirty[id] = true
	r.shared.localChanged(id) // shared.go
	r.notifyLocked(id)
}

// notifyLocked records that the workload the mesh sees under id may have
// changed and wakes the consumer.
func (r *Registry) notifyLocked(id string) {
	r.changed[id] = true
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
	var publish <-chan struct{}
	// Freeze clears r.shared under the lock while Run goes on: read it
	// under the lock too.
	r.mu.Lock()
	shared := r.shared
	r.mu.Unlock()
	if shared != nil {
		publish = shared.kick
		go r.follow(ctx) // shared.go
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-publish:
			r.publish(ctx) // shared.go
			continue
		case <-t.C:
		}
		r.expire()
		if err := r.save(); err != nil {
			r.logger.Error("persisting workload registry", "err", err)
		}
		if shared != nil {
			r.publish(ctx) // a no-op once Freeze cleared r.shared
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
	// With a shared store, this replica's published workloads are left
	// to its lease: their proxies move to the other replicas meanwhile.
	r.shared = nil
	r.entries = map[string]*entry{}
	r.byAddr = map[string]string{}
	r.dirty = map[string]bool{}
	// Pending changes are dropped too: the workloads are not gone, so the
	// mesh should not see them leave.
	r.changed = map[string]bool{}
	r.mu.Unlock()
	return err
}

type frozen struct{}

func (frozen) BlobsWithPrefix(string) (map[string][]byte, error) { return nil, nil }
func (frozen) UpdateBlobs(map[string][]byte, []string) error     { return nil }

func (r *Registry) expire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for id, e := range r.entries {
		if !e.expires.IsZero() && now.After(e.expires) {
			r.logger.Info("workload lease expired", "workload", id)
			r.removeLocked(id)
			r.changedLocked(id)
		}
	}
	for _, id := range r.shared.expire(now) { // shared.go
		r.logger.Info("workload gone from every replica", "workload", id)
		r.notifyLocked(id)
	}
}

// save writes the workloads changed since the last save, and deletes the
// ones that left.
func (r *Registry) save() error {
	r.mu.Lock()
	if len(r.dirty) == 0 {
		r.mu.Unlock()
		return nil
	}
	put := map[string][]byte{}
	var del []string
	for id := range r.dirty {
		if e, ok := r.entries[id]; ok {
			b, err := json.Marshal(e.w)
			if err != nil {
				r.mu.Unlock()
				return err
			}
			put[persistPrefix+id] = b
		} else if r.shared.workload(id) == nil {
			// A workload that moved to another replica stays
			// persisted (that replica writes it too).
			del = append(del, persistPrefix+id)
		}
	}
	ids := r.dirty
	r.dirty = map[string]bool{}
	p := r.persist
	r.mu.Unlock()
	if err := p.UpdateBlobs(put, del); err != nil {
		// Keep them dirty for the next attempt.
		r.mu.Lock()
		for id := range ids {
			r.dirty[id] = true
		}
		r.mu.Unlock()
		return err
	}
	return nil
}
