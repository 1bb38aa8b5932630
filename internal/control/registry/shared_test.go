package registry

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"weft.dev/weft/internal/control/mesh"
)

// memShared is an in-memory shared store: leased keys by replica, and
// watches that see every change in order.
type memShared struct {
	mu       sync.Mutex
	m        map[string][]byte
	owner    map[string]string // key -> replica that put it
	watchers map[int]func(string, []byte)
	next     int
	failPuts bool
}

func newMemShared() *memShared {
	return &memShared{m: map[string][]byte{}, owner: map[string]string{}, watchers: map[int]func(string, []byte){}}
}

// replica is one replica's handle on the shared store.
type replicaHandle struct {
	*memShared
	id string
}

func (h replicaHandle) ReplicaID() string { return h.id }

func (h replicaHandle) PutLeased(_ context.Context, key string, val []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failPuts {
		return errors.New("store unavailable")
	}
	h.m[key], h.owner[key] = val, h.id
	for _, fn := range h.watchers {
		fn(key, val)
	}
	return nil
}

func (h replicaHandle) DeleteLeased(_ context.Context, key string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.m[key]; ok {
		delete(h.m, key)
		for _, fn := range h.watchers {
			fn(key, nil)
		}
	}
	return nil
}

func (h replicaHandle) WatchBlobs(ctx context.Context, prefix string, fn func(string, []byte)) error {
	h.mu.Lock()
	for k, v := range h.m {
		if strings.HasPrefix(k, prefix) {
			fn(k, v)
		}
	}
	id := h.next
	h.next++
	h.watchers[id] = func(k string, v []byte) {
		if strings.HasPrefix(k, prefix) {
			fn(k, v)
		}
	}
	h.mu.Unlock()
	<-ctx.Done()
	h.mu.Lock()
	delete(h.watchers, id)
	h.mu.Unlock()
	return ctx.Err()
}

// expireLease deletes every key of replica, as the store does when the
// replica's lease runs out.
func (s *memShared) expireLease(replica string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, o := range s.owner {
		if o == replica {
			delete(s.owner, k)
			if _, ok := s.m[k]; ok {
				delete(s.m, k)
				for _, fn := range s.watchers {
					fn(k, nil)
				}
			}
		}
	}
}

// startReplica runs a registry replicated over s; stop ends it as a
// killed replica ends: its keys stay until its lease expires.
func startReplica(t *testing.T, s *memShared, id string, handover time.Duration) (r *Registry, stop func()) {
	t.Helper()
	r, err := New(&memBlobs{m: map[string][]byte{}}, time.Minute, quiet)
	if err != nil {
		t.Fatal(err)
	}
	r.Replicate(replicaHandle{s, id}, handover)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done; r.Freeze() }
	t.Cleanup(stop)
	return r, stop
}

func waitIDs(t *testing.T, r *Registry, what string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := ids(r.List())
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: workloads %v, want %v", what, got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func wl(id, sa, addr string) mesh.Workload {
	return mesh.Workload{ID: id, Service: sa, Namespace: "default", ServiceAccount: sa, Address: addr,
		Identity: "spiffe://weft.local/ns/default/sa/" + sa, Connected: time.Now()}
}

// TestReplicatedRegistry: a workload connected to one replica is in every
// replica's registry; another identity cannot take its ID or address on
// another replica; when its replica's lease expires it stays for the
// handover and then leaves, unless its proxy reconnects to another
// replica, in which case it never leaves.
func TestReplicatedRegistry(t *testing.T) {
	s := newMemShared()
	a, stopA := startReplica(t, s, "cp-a", 300*time.Millisecond)
	b, _ := startReplica(t, s, "cp-b", 300*time.Millisecond)

	if err := a.Connect(wl("orders-1", "orders", "10.0.0.1:8080")); err != nil {
		t.Fatal(err)
	}
	if err := a.Connect(wl("billing-1", "billing", "10.0.0.2:8080")); err != nil {
		t.Fatal(err)
	}
	waitIDs(t, b, "replica b sees a's workloads", "billing-1", "orders-1")
	changes := b.TakeChanges()
	if w := changes["orders-1"]; w == nil || w.Address != "10.0.0.1:8080" {
		t.Errorf("b's changes carry orders-1 as %+v", w)
	}

	// Hostile registrations on b: another identity under orders-1's ID,
	// or at its address.
	if err := b.Connect(wl("orders-1", "mallory", "10.0.0.9:1")); !errors.Is(err, ErrIDOwned) || !strings.Contains(err.Error(), "cp-a") {
		t.Errorf("another identity under a's workload ID: %v, want ErrIDOwned naming replica cp-a", err)
	}
	if err := b.Connect(wl("mallory-1", "mallory", "10.0.0.1:8080")); !errors.Is(err, ErrAddressHeld) {
		t.Errorf("another identity at a's workload's address: %v, want ErrAddressHeld", err)
	}

	// A workload disconnecting from a leaves b too.
	a.Disconnect("billing-1")
	waitIDs(t, b, "billing-1 left a", "orders-1")

	// a dies: orders-1's proxy reconnects to b before a's lease expires.
	stopA()
	if err := b.Connect(wl("orders-1", "orders", "10.0.0.1:8080")); err != nil {
		t.Fatalf("the same identity moving to b: %v", err)
	}
	s.expireLease("cp-a")
	time.Sleep(400 * time.Millisecond) // past the handover
	waitIDs(t, b, "orders-1 moved to b", "orders-1")

	// A workload of a's that does not reconnect: held, then gone.
	c, stopC := startReplica(t, s, "cp-c", 300*time.Millisecond)
	if err := c.Connect(wl("cart-1", "cart", "10.0.0.3:8080")); err != nil {
		t.Fatal(err)
	}
	waitIDs(t, b, "cart-1 published by c", "cart-1", "orders-1")
	stopC()
	lost := time.Now()
	s.expireLease("cp-c")
	if got := ids(b.List()); !slices.Contains(got, "cart-1") {
		t.Errorf("cart-1 withdrawn at once when c's lease expired: %v; want it held for the handover", got)
	}
	waitIDs(t, b, "cart-1 gone after the handover", "orders-1")
	if d := time.Since(lost); d < 300*time.Millisecond {
		t.Errorf("cart-1 left %v after c's lease expired, before the 300ms handover", d)
	}

	// b's lease is lost while b is alive (then renewed): b publishes its
	// connected workload again, and a new replica sees it.
	d, _ := startReplica(t, s, "cp-d", 300*time.Millisecond)
	waitIDs(t, d, "d sees b's workload", "orders-1")
	s.expireLease("cp-b")
	time.Sleep(400 * time.Millisecond)
	waitIDs(t, d, "b republished orders-1", "orders-1")
}

// TestPublishRetries: a failed publication is retried.
func TestPublishRetries(t *testing.T) {
	s := newMemShared()
	s.failPuts = true
	a, _ := startReplica(t, s, "cp-a", time.Second)
	b, _ := startReplica(t, s, "cp-b", time.Second)
	if err := a.Connect(wl("orders-1", "orders", "10.0.0.1:8080")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if got := ids(b.List()); len(got) != 0 {
		t.Fatalf("b sees %v while a cannot publish", got)
	}
	s.mu.Lock()
	s.failPuts = false
	s.mu.Unlock()
	waitIDs(t, b, "published on retry", "orders-1")
}
