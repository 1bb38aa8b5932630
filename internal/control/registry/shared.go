package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	"weft.dev/weft/internal/control/mesh"
)

// livePrefix prefixes the keys under which each replica publishes the
// workloads connected to it: registry/live/<replica>/<workload ID>.
const livePrefix = "registry/live/"

// DefaultHandover is how long a workload stays in the mesh after the
// replica it was connected to stopped publishing it (the replica stopped
// or its lease expired), so that its proxy has time to reconnect to
// another replica before its endpoints are withdrawn.
const DefaultHandover = 5 * time.Second

// Replicas is what a shared store (store.Shared) offers the registry.
type Replicas interface {
	// ReplicaID names this replica among those sharing the store.
	ReplicaID() string
	// PutLeased stores a key that disappears when the replica is gone.
	PutLeased(ctx context.Context, key string, val []byte) error
	// DeleteLeased deletes a key stored with PutLeased.
	DeleteLeased(ctx context.Context, key string) error
	// WatchBlobs reports every key under prefix, then every change.
	WatchBlobs(ctx context.Context, prefix string, fn func(key string, val []byte)) error
}

// replication is the registry's view of the other replicas. Every method
// is safe on a nil *replication (a store of one replica) and runs with the
// registry's lock held, except where noted.
type replication struct {
	store    Replicas
	me       string
	handover time.Duration

	// remote maps a workload ID to the workloads published under it, by
	// replica, and raw to their encoding (to skip repeats).
	remote map[string]map[string]*mesh.Workload
	raw    map[string][]byte // full key -> value
	// held are workloads no replica publishes any more, kept until their
	// time (the handover).
	held map[string]heldWorkload
	// pub holds the IDs of local workloads to publish or unpublish.
	pub  map[string]bool
	kick chan struct{}
	// stale are the keys reported before the watch restarted and not
	// since; they are dropped when the handover passes.
	stale map[string]bool
}

type heldWorkload struct {
	w     *mesh.Workload
	until time.Time
}

// Replicate makes the registry share its workloads with the other
// replicas of s (call it before Run): each workload connected to this
// replica is published under a key leased to the replica, and the
// workloads the others publish join the registry. A workload no replica
// publishes any more stays for handover (DefaultHandover if 0) unless its
// proxy reconnects somewhere.
func (r *Registry) Replicate(s Replicas, handover time.Duration) {
	if handover <= 0 {
		handover = DefaultHandover
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shared = &replication{
		store: s, me: s.ReplicaID(), handover: handover,
		remote: map[string]map[string]*mesh.Workload{}, raw: map[string][]byte{},
		held: map[string]heldWorkload{}, pub: map[string]bool{}, kick: make(chan struct{}, 1),
	}
	for id, e := range r.entries {
		if e.expires.IsZero() {
			r.shared.localChanged(id)
		}
	}
}

// checkOwner refuses w if another replica publishes its ID or its address
// for another identity.
func (p *replication) checkOwner(w mesh.Workload) error {
	if p == nil {
		return nil
	}
	for replica, o := range p.remote[w.ID] {
		if o.Identity != w.Identity {
			return fmt.Errorf("registering %q as %s: %w (%s, on replica %s)", w.ID, w.Identity, ErrIDOwned, o.Identity, replica)
		}
	}
	if w.Address == "" {
		return nil
	}
	for id, byReplica := range p.remote {
		if id == w.ID {
			continue
		}
		for replica, o := range byReplica {
			if o.Address == w.Address && o.Identity != w.Identity {
				return fmt.Errorf("registering %q at %s as %s: %w (%q, %s, on replica %s)", w.ID, w.Address, w.Identity, ErrAddressHeld, id, o.Identity, replica)
			}
		}
	}
	return nil
}

// workload is the workload another replica publishes under id (the most
// recently connected if several do), else one held for the handover.
func (p *replication) workload(id string) *mesh.Workload {
	if p == nil {
		return nil
	}
	var best *mesh.Workload
	for _, w := range p.remote[id] {
		if best == nil || w.Connected.After(best.Connected) {
			best = w
		}
	}
	if best != nil {
		return best
	}
	if h, ok := p.held[id]; ok {
		return h.w
	}
	return nil
}

// ids are the IDs other replicas publish or that are held.
func (p *replication) ids() map[string]bool {
	out := map[string]bool{}
	if p == nil {
		return out
	}
	for id := range p.remote {
		out[id] = true
	}
	for id := range p.held {
		out[id] = true
	}
	return out
}

// localChanged queues the local workload id for publishing.
func (p *replication) localChanged(id string) {
	if p == nil {
		return
	}
	p.pub[id] = true
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// expire drops the held workloads whose handover passed and returns their
// IDs.
func (p *replication) expire(now time.Time) []string {
	if p == nil {
		return nil
	}
	var out []string
	for id, h := range p.held {
		if now.After(h.until) {
			delete(p.held, id)
			out = append(out, id)
		}
	}
	return out
}

func liveKey(replica, id string) string { return livePrefix + replica + "/" + id }

// publish writes the queued local workloads: the ones connected here are
// put under this replica's lease, the others deleted. Failures stay queued
// for the next round. It runs on Run's goroutine without the lock.
func (r *Registry) publish(ctx context.Context) {
	r.mu.Lock()
	p := r.shared
	if p == nil || len(p.pub) == 0 {
		r.mu.Unlock()
		return
	}
	ids := p.pub
	p.pub = map[string]bool{}
	put := map[string][]byte{}
	var del []string
	for id := range ids {
		if e, ok := r.entries[id]; ok && e.expires.IsZero() {
			b, err := json.Marshal(e.w)
			if err != nil {
				r.logger.Error("encoding workload", "workload", id, "err", err)
				continue
			}
			put[id] = b
		} else {
			del = append(del, id)
		}
	}
	r.mu.Unlock()
	var failed []string
	var lastErr error
	for id, b := range put {
		if err := p.store.PutLeased(ctx, liveKey(p.me, id), b); err != nil {
			failed, lastErr = append(failed, id), err
		}
	}
	for _, id := range del {
		if err := p.store.DeleteLeased(ctx, liveKey(p.me, id)); err != nil {
			failed, lastErr = append(failed, id), err
		}
	}
	if len(failed) > 0 && ctx.Err() == nil {
		r.logger.Warn("publishing workloads to the other replicas; retrying", "workloads", len(failed), "err", lastErr)
		r.mu.Lock()
		if r.shared == p {
			for _, id := range failed {
				p.pub[id] = true
			}
		}
		r.mu.Unlock()
	}
}

// follow watches what the other replicas publish until ctx ends,
// restarting the watch when it fails. A restarted watch reports every key
// again; the keys it does not report again within the handover are gone.
func (r *Registry) follow(ctx context.Context) {
	r.mu.Lock()
	p := r.shared
	r.mu.Unlock()
	if p == nil {
		return
	}
	wait := 100 * time.Millisecond
	for {
		started := time.Now()
		err := p.store.WatchBlobs(ctx, livePrefix, func(key string, val []byte) { r.remoteChanged(p, key, val) })
		if ctx.Err() != nil {
			return
		}
		r.logger.Warn("watching the other replicas' workloads; restarting the watch", "err", err)
		if time.Since(started) > 10*time.Second {
			wait = 100 * time.Millisecond
		}
		r.mu.Lock()
		p.stale = map[string]bool{}
		for k := range p.raw {
			p.stale[k] = true
		}
		r.mu.Unlock()
		time.AfterFunc(p.handover, func() { r.dropStale(p) })
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// dropStale removes the keys a restarted watch did not report again.
func (r *Registry) dropStale(p *replication) {
	r.mu.Lock()
	stale := p.stale
	p.stale = nil
	r.mu.Unlock()
	for k := range stale {
		r.remoteChanged(p, k, nil)
	}
}

// remoteChanged applies one reported key: a workload another replica
// published (val) or withdrew (nil), or one of this replica's own keys,
// which is published again if it vanished while its workload is still
// connected here (the replica's lease was lost and renewed).
func (r *Registry) remoteChanged(p *replication, key string, val []byte) {
	replica, id, ok := strings.Cut(strings.TrimPrefix(key, livePrefix), "/")
	if !ok || replica == "" || id == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shared != p {
		return // frozen
	}
	delete(p.stale, key)
	if replica == p.me {
		if e, ok := r.entries[id]; val == nil && ok && e.expires.IsZero() {
			p.localChanged(id)
		}
		return
	}
	if val == nil {
		old := p.remote[id][replica]
		if old == nil {
			return
		}
		delete(p.raw, key)
		delete(p.remote[id], replica)
		if len(p.remote[id]) == 0 {
			delete(p.remote, id)
			p.held[id] = heldWorkload{w: old, until: r.now().Add(p.handover)}
		}
		r.notifyLocked(id)
		return
	}
	if bytes.Equal(p.raw[key], val) {
		return
	}
	var w mesh.Workload
	if err := json.Unmarshal(val, &w); err != nil || w.ID != id {
		r.logger.Warn("ignoring a malformed workload published by another replica", "key", key, "err", err)
		return
	}
	r.revision++
	w.Revision = r.revision
	p.raw[key] = bytes.Clone(val)
	if p.remote[id] == nil {
		p.remote[id] = map[string]*mesh.Workload{}
	}
	p.remote[id][replica] = &w
	delete(p.held, id)
	r.notifyLocked(id)
}

// Remote reports, for tests and status, the IDs other replicas publish by
// replica.
func (r *Registry) Remote() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	if r.shared == nil {
		return out
	}
	for id, byReplica := range r.shared.remote {
		for replica := range maps.Keys(byReplica) {
			out[replica] = append(out[replica], id)
		}
	}
	return out
}
