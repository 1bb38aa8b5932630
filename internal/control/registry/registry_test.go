package registry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/internal/control/mesh"
)

type memBlobs struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (m *memBlobs) BlobsWithPrefix(prefix string) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range m.m {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out, nil
}

func (m *memBlobs) UpdateBlobs(put map[string][]byte, del []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range put {
		m.m[k] = v
	}
	for _, k := range del {
		delete(m.m, k)
	}
	return nil
}

func ids(ws []*mesh.Workload) []string {
	out := []string{}
	for _, w := range ws {
		out = append(out, w.ID)
	}
	return out
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestConnectDisconnect(t *testing.T) {
	r, err := New(&memBlobs{m: map[string][]byte{}}, time.Minute, quiet)
	if err != nil {
		t.Fatal(err)
	}
	r.Connect(mesh.Workload{ID: "a", Address: "127.0.0.1:1"})
	r.Connect(mesh.Workload{ID: "b", Address: "127.0.0.1:2"})
	select {
	case <-r.Changes():
	default:
		t.Fatal("no change notification")
	}
	// A second stream of the same workload keeps it alive when the first closes.
	r.Connect(mesh.Workload{ID: "a", Address: "127.0.0.1:1"})
	r.Disconnect("a")
	if diff := cmp.Diff([]string{"a", "b"}, ids(r.List())); diff != "" {
		t.Errorf("after one of two streams closed (-want +got):\n%s", diff)
	}
	r.Disconnect("a")
	if diff := cmp.Diff([]string{"b"}, ids(r.List())); diff != "" {
		t.Errorf("after last stream closed (-want +got):\n%s", diff)
	}
	// A new workload at b's address replaces b (its process is gone).
	r.Connect(mesh.Workload{ID: "c", Address: "127.0.0.1:2"})
	if diff := cmp.Diff([]string{"c"}, ids(r.List())); diff != "" {
		t.Errorf("after address reuse (-want +got):\n%s", diff)
	}
	r.Disconnect("unknown") // must not panic or change anything
}

func TestRestoreWithLease(t *testing.T) {
	blobs := &memBlobs{m: map[string][]byte{}}
	r1, err := New(blobs, time.Minute, quiet)
	if err != nil {
		t.Fatal(err)
	}
	r1.Connect(mesh.Workload{ID: "a", Address: "127.0.0.1:1"})
	r1.Connect(mesh.Workload{ID: "b", Address: "127.0.0.1:2"})
	if err := r1.Freeze(); err != nil {
		t.Fatal(err)
	}
	// Streams closing during shutdown do not reach the persisted set.
	r1.Disconnect("a")
	r1.Disconnect("b")

	r2, err := New(blobs, 50*time.Millisecond, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, ids(r2.List())); diff != "" {
		t.Fatalf("restored (-want +got):\n%s", diff)
	}
	// a reconnects and holds its lease; b never does and expires.
	r2.Connect(mesh.Workload{ID: "a", Address: "127.0.0.1:1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r2.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(r2.List()) != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if diff := cmp.Diff([]string{"a"}, ids(r2.List())); diff != "" {
		t.Errorf("after lease expiry (-want +got):\n%s", diff)
	}
}

// countingBlobs counts the blobs each save writes and deletes.
type countingBlobs struct {
	memBlobs
	puts, dels int
}

func (c *countingBlobs) UpdateBlobs(put map[string][]byte, del []string) error {
	c.puts += len(put)
	c.dels += len(del)
	return c.memBlobs.UpdateBlobs(put, del)
}

func TestSaveWritesOnlyChanges(t *testing.T) {
	blobs := &countingBlobs{memBlobs: memBlobs{m: map[string][]byte{}}}
	r, err := New(blobs, time.Minute, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		r.Connect(mesh.Workload{ID: id, Address: "127.0.0.1:" + id})
	}
	if err := r.save(); err != nil {
		t.Fatal(err)
	}
	r.Connect(mesh.Workload{ID: "d", Address: "127.0.0.1:d"})
	r.Disconnect("a")
	if err := r.save(); err != nil {
		t.Fatal(err)
	}
	if blobs.puts != 4 || blobs.dels != 1 {
		t.Errorf("puts=%d dels=%d, want 4 puts (a, b, c, then d) and 1 delete (a)", blobs.puts, blobs.dels)
	}
	r2, err := New(blobs, time.Minute, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b", "c", "d"}, ids(r2.List())); diff != "" {
		t.Errorf("restored (-want +got):\n%s", diff)
	}
}

// TestTakeChanges: each call returns the workloads changed since the
// previous one, current version or nil, and forgets them.
func TestTakeChanges(t *testing.T) {
	r, err := New(&memBlobs{m: map[string][]byte{}}, time.Minute, quiet)
	if err != nil {
		t.Fatal(err)
	}
	// revs renders changes as ID -> revision, 0 for a workload that left.
	revs := func(m map[string]*mesh.Workload) map[string]uint64 {
		out := map[string]uint64{}
		for id, w := range m {
			if w == nil {
				out[id] = 0
			} else {
				out[id] = w.Revision
			}
		}
		return out
	}
	tests := []struct {
		name string
		do   func()
		want map[string]uint64
	}{
		{"nothing yet", func() {}, map[string]uint64{}},
		{"two connect", func() {
			r.Connect(mesh.Workload{ID: "a", Address: "127.0.0.1:1"})
			r.Connect(mesh.Workload{ID: "b", Address: "127.0.0.1:2"})
		}, map[string]uint64{"a": 1, "b": 2}},
		{"taken once", func() {}, map[string]uint64{}},
		{"second stream is a new version", func() {
			r.Connect(mesh.Workload{ID: "a", Address: "127.0.0.1:1"})
		}, map[string]uint64{"a": 3}},
		{"one of two streams closes: no change", func() { r.Disconnect("a") }, map[string]uint64{}},
		{"leave and come back: the last version", func() {
			r.Disconnect("b")
			r.Connect(mesh.Workload{ID: "b", Address: "127.0.0.1:2"})
		}, map[string]uint64{"b": 4}},
		{"address taken over: both change", func() {
			r.Connect(mesh.Workload{ID: "c", Address: "127.0.0.1:2"})
		}, map[string]uint64{"b": 0, "c": 5}},
		{"last stream closes", func() { r.Disconnect("a") }, map[string]uint64{"a": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.do()
			if diff := cmp.Diff(tt.want, revs(r.TakeChanges())); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
	// The last versions taken are the ones List returns.
	r.Connect(mesh.Workload{ID: "d", Address: "127.0.0.1:4"})
	taken := r.TakeChanges()
	if list := r.List(); len(list) != 2 || list[1] != taken["d"] {
		t.Errorf("List %v does not hold the taken version of d", ids(list))
	}
}

// TestOwnership: a workload ID and an inbound address belong to the
// identity that registered them, live or restored after a restart: another
// identity is refused and the owner's entry is unchanged, while the owner
// itself may reconnect or take its address to a new node ID.
func TestOwnership(t *testing.T) {
	const alice, mallory = "spiffe://cluster.local/ns/default/sa/alice", "spiffe://cluster.local/ns/default/sa/mallory"
	owned := mesh.Workload{ID: "a", Service: "alice", Address: "127.0.0.1:1", Identity: alice}
	tests := []struct {
		name string
		w    mesh.Workload
		// wantErr is the refusal, nil if the registration is accepted.
		wantErr error
		// wantIDs are the workloads registered afterwards.
		wantIDs []string
	}{
		{"another identity, same ID", mesh.Workload{ID: "a", Service: "mallory", Address: "127.0.0.1:9", Identity: mallory}, ErrIDOwned, []string{"a"}},
		{"another identity, same ID, no address", mesh.Workload{ID: "a", Service: "mallory", Identity: mallory}, ErrIDOwned, []string{"a"}},
		{"another identity, same address", mesh.Workload{ID: "m", Service: "mallory", Address: "127.0.0.1:1", Identity: mallory}, ErrAddressHeld, []string{"a"}},
		{"another identity, own ID and address", mesh.Workload{ID: "m", Service: "mallory", Address: "127.0.0.1:9", Identity: mallory}, nil, []string{"a", "m"}},
		{"same identity reconnects", owned, nil, []string{"a"}},
		{"same identity, new ID at the address", mesh.Workload{ID: "a2", Service: "alice", Address: "127.0.0.1:1", Identity: alice}, nil, []string{"a2"}},
	}
	for _, restored := range []bool{false, true} {
		for _, tt := range tests {
			name := tt.name
			if restored {
				name += ", after a restart"
			}
			t.Run(name, func(t *testing.T) {
				blobs := &memBlobs{m: map[string][]byte{}}
				r, err := New(blobs, time.Minute, quiet)
				if err != nil {
					t.Fatal(err)
				}
				if err := r.Connect(owned); err != nil {
					t.Fatal(err)
				}
				if restored {
					if err := r.Freeze(); err != nil {
						t.Fatal(err)
					}
					if r, err = New(blobs, time.Minute, quiet); err != nil {
						t.Fatal(err)
					}
				}
				err = r.Connect(tt.w)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Connect(%+v) = %v, want %v", tt.w, err, tt.wantErr)
				}
				if diff := cmp.Diff(tt.wantIDs, ids(r.List())); diff != "" {
					t.Errorf("workloads (-want +got):\n%s", diff)
				}
				if tt.wantErr != nil {
					got := r.List()[0]
					if got.Identity != owned.Identity || got.Address != owned.Address || got.Service != owned.Service {
						t.Errorf("owner's workload became %+v", got)
					}
				}
			})
		}
	}
}
