package etcdstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/store"
	"weft.dev/weft/internal/control/store/storetest"
	"weft.dev/weft/internal/testetcd"
)

var prefixes atomic.Int64

// openOn opens a store on c under a prefix of its own.
func openOn(t *testing.T, c *testetcd.Cluster, prefix string, mod func(*Options)) *Store {
	t.Helper()
	opts := Options{Endpoints: c.Endpoints(), TLS: c.ClientTLS(), Prefix: prefix, LeaseTTL: 2 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newPrefix() string { return fmt.Sprintf("/t%d/", prefixes.Add(1)) }

func rawClient(t *testing.T, c *testetcd.Cluster) *clientv3.Client {
	t.Helper()
	cl, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: c.ClientTLS(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func TestEtcd(t *testing.T) {
	c := testetcd.Start(t, testetcd.Options{})
	t.Run("Contract", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return openOn(t, c, newPrefix(), nil) })
	})
	t.Run("ExternalWrite", func(t *testing.T) { externalWrite(t, c) })
	t.Run("Replicas", func(t *testing.T) { replicas(t, c) })
	t.Run("TxnLimit", func(t *testing.T) { txnLimit(t, c) })
	t.Run("Compaction", func(t *testing.T) { compaction(t, c) })
	t.Run("Reopen", func(t *testing.T) { reopen(t, c) })
	t.Run("LeaseLost", func(t *testing.T) { leaseLost(t, c) })
}

// leaseLost: when etcd drops the replica's lease (here: revoked by
// someone else), the replica grants a new one and writes its keys again.
func leaseLost(t *testing.T, c *testetcd.Cluster) {
	prefix := newPrefix()
	s := openOn(t, c, prefix, nil)
	defer s.Close()
	ctx := t.Context()
	if err := s.PutLeased(ctx, "live/x", []byte("x1")); err != nil {
		t.Fatal(err)
	}
	s.leaseMu.Lock()
	old := s.lease.id
	s.leaseMu.Unlock()
	cl := rawClient(t, c)
	if _, err := cl.Revoke(ctx, old); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := cl.Get(ctx, prefix+"blobs/live/x")
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 1 && resp.Kvs[0].Lease != int64(old) && resp.Kvs[0].Lease != 0 && string(resp.Kvs[0].Value) == "x1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leased key not rewritten on a new lease: %v", resp.Kvs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// externalWrite: objects written around the store (another replica,
// etcdctl) reach Subscribe and Set; invalid ones are ignored and counted.
func externalWrite(t *testing.T, c *testetcd.Cluster) {
	prefix := newPrefix()
	s := openOn(t, c, prefix, nil)
	defer s.Close()
	other := openOn(t, c, prefix, nil)
	defer other.Close()
	ch, cancel := s.Subscribe()
	defer cancel()

	if _, err := other.Apply(storetest.Decode(t, storetest.Service("from-other"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ch, "another replica's apply", func() bool {
		set, _ := s.Set()
		return set != nil && len(set.Services) == 1 && set.Revision == other.Revision()
	})

	cl := rawClient(t, c)
	ctx := t.Context()
	obj := storetest.Decode(t, storetest.Service("from-etcdctl"))[0]
	b, err := api.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Put(ctx, prefix+"objects/Service/default/from-etcdctl", string(b))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, ch, "an etcdctl put", func() bool {
		o, err := s.Get(api.Key{Kind: "Service", Namespace: "default", Name: "from-etcdctl"})
		return err == nil && o.GetResourceVersion() == fmt.Sprint(resp.Header.Revision) && s.Revision() == uint64(resp.Header.Revision)
	})
	if d := time.Since(start); d > time.Second {
		t.Errorf("external write took %v to arrive", d)
	}

	// Invalid data: ignored, counted, never a panic; an invalid update
	// removes the object from what is served.
	before := s.Rejected()
	for key, val := range map[string]string{
		prefix + "objects/Service/default/garbage":      "{not json",
		prefix + "objects/Service/default/wrong-key":    string(b),
		prefix + "objects/Service/default/from-etcdctl": strings.Replace(string(b), `"from-etcdctl"`, `"Not Valid"`, 1),
		prefix + "objects/NoSuchKind/x/y":               string(b),
		prefix + "objects/short":                        "x",
	} {
		if _, err := cl.Put(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ch, "invalid writes", func() bool { return s.Rejected() >= before+5 })
	list, _ := s.List("Service", "")
	if len(list) != 1 || list[0].GetName() != "from-other" {
		t.Errorf("served services = %v, want from-other only", list)
	}
	if _, err := cl.Delete(ctx, prefix+"objects/Service/default/from-other"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ch, "an etcdctl delete", func() bool { l, _ := s.List("Service", ""); return len(l) == 0 })
}

func waitFor(t *testing.T, ch <-chan struct{}, what string, ok func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for !ok() {
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s did not reach the store", what)
		}
	}
}

// replicas: two stores on one prefix share blobs and leased keys.
func replicas(t *testing.T, c *testetcd.Cluster) {
	prefix := newPrefix()
	a := openOn(t, c, prefix, nil)
	defer a.Close()
	b := openOn(t, c, prefix, nil)
	if a.ReplicaID() == b.ReplicaID() || a.ReplicaID() == "" {
		t.Errorf("replica IDs %q and %q", a.ReplicaID(), b.ReplicaID())
	}

	// CreateBlob race: everyone ends up with one value.
	var wg sync.WaitGroup
	results := make([][]byte, 8)
	for i := range results {
		wg.Go(func() {
			s := a
			if i%2 == 1 {
				s = b
			}
			v, err := s.CreateBlob("ca/root", []byte(fmt.Sprint("root-", i)))
			if err != nil {
				t.Error(err)
			}
			results[i] = v
		})
	}
	wg.Wait()
	for _, r := range results {
		if !bytes.Equal(r, results[0]) || len(r) == 0 {
			t.Fatalf("CreateBlob results differ: %q", results)
		}
	}
	if v, _ := b.GetBlob("ca/root"); !bytes.Equal(v, results[0]) {
		t.Errorf("stored root = %q, want %q", v, results[0])
	}

	// WatchBlobs on a sees b's leased keys come and go.
	type ev struct{ key, val string }
	evs := make(chan ev, 100)
	ctx, cancel := context.WithCancel(t.Context())
	watchDone := make(chan error, 1)
	if err := a.PutLeased(ctx, "live/a", []byte("a1")); err != nil {
		t.Fatal(err)
	}
	go func() {
		watchDone <- a.WatchBlobs(ctx, "live/", func(k string, v []byte) { evs <- ev{k, string(v)} })
	}()
	next := func(want ev) {
		t.Helper()
		select {
		case got := <-evs:
			if got != want {
				t.Fatalf("WatchBlobs event %+v, want %+v", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no WatchBlobs event, want %+v", want)
		}
	}
	next(ev{"live/a", "a1"}) // the current value first
	if err := b.PutLeased(ctx, "live/b", []byte("b1")); err != nil {
		t.Fatal(err)
	}
	next(ev{"live/b", "b1"})
	if err := b.PutLeased(ctx, "live/b2", []byte("b2")); err != nil {
		t.Fatal(err)
	}
	next(ev{"live/b2", "b2"})
	if err := b.DeleteLeased(ctx, "live/b2"); err != nil {
		t.Fatal(err)
	}
	next(ev{"live/b2", ""})
	// A clean stop takes b's leased keys with it at once.
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	next(ev{"live/b", ""})
	if d := time.Since(start); d > time.Second {
		t.Errorf("leased key outlived Close by %v", d)
	}

	// A replica that dies (stops renewing without revoking) loses its
	// keys after the TTL, not before.
	d := openOn(t, c, prefix, nil)
	if err := d.PutLeased(ctx, "live/d", []byte("d1")); err != nil {
		t.Fatal(err)
	}
	next(ev{"live/d", "d1"})
	died := time.Now()
	d.die()
	next(ev{"live/d", ""})
	if gone := time.Since(died); gone < time.Second || gone > 5*time.Second {
		t.Errorf("a dead replica's key vanished after %v, want about the 2s TTL", gone)
	}
	// a's own key is still there, kept alive past several TTLs.
	if v, err := a.GetBlob("live/a"); err != nil || string(v) != "a1" {
		t.Errorf("a's leased key = %q, %v", v, err)
	}
	cancel()
	if err := <-watchDone; err == nil {
		t.Error("WatchBlobs returned nil after its context ended")
	}
}

// die stops the store like a killed process would: no lease revocation.
func (s *Store) die() {
	_ = s.releaseLease(false)
	s.cancel()
	s.wg.Wait()
	_ = s.cli.Close()
}

// txnLimit: Apply takes MaxApplyObjects objects in one transaction and
// refuses more with an error saying so.
func txnLimit(t *testing.T, c *testetcd.Cluster) {
	s := openOn(t, c, newPrefix(), nil)
	defer s.Close()
	var docs []string
	for i := range MaxApplyObjects + 1 {
		docs = append(docs, storetest.Service(fmt.Sprintf("s%03d", i)))
	}
	objs := storetest.Decode(t, strings.Join(docs, "---\n"))
	if _, err := s.Apply(objs); err == nil || !strings.Contains(err.Error(), "at most 127") {
		t.Fatalf("Apply of %d objects = %v, want an at-most-127 error", len(objs), err)
	}
	if n, _ := s.List("Service", ""); len(n) != 0 {
		t.Fatalf("a refused apply stored %d objects", len(n))
	}
	changes, err := s.Apply(objs[:MaxApplyObjects])
	if err != nil || len(changes) != MaxApplyObjects {
		t.Fatalf("Apply of %d objects = %d changes, %v", MaxApplyObjects, len(changes), err)
	}
	// Changing all of them again is one transaction too.
	for _, o := range objs[:MaxApplyObjects] {
		o.SetLabels(map[string]string{"v": "2"})
	}
	if _, err := s.Apply(objs[:MaxApplyObjects]); err != nil {
		t.Fatal(err)
	}
}

// compaction: a watch that falls behind a compaction re-reads everything.
func compaction(t *testing.T, c *testetcd.Cluster) {
	prefix := newPrefix()
	s := openOn(t, c, prefix, nil)
	defer s.Close()
	cl := rawClient(t, c)
	ctx := t.Context()
	// Stop the store's watch from seeing the writes: pause it by closing
	// it, write, compact, then reopen a store from an old revision.
	if _, err := s.Apply(storetest.Decode(t, storetest.Service("keep")+"---\n"+storetest.Service("gone"))); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	stale := s.seen
	s.mu.Unlock()
	// A second store whose cache claims the old revision, as if its watch
	// had been disconnected while the cluster moved on and compacted.
	lagging := openOn(t, c, prefix, nil)
	defer lagging.Close()
	lagging.cancel() // stop its watch
	lagging.wg.Wait()
	if err := s.Delete(api.Key{Kind: "Service", Namespace: "default", Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(storetest.Decode(t, storetest.Service("new"))); err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Put(ctx, "/unrelated", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	// Restart the watch from the stale revision.
	lagging.ctx, lagging.cancel = context.WithCancel(context.Background())
	lagging.mu.Lock()
	lagging.seen = stale
	lagging.mu.Unlock()
	ch, unsub := lagging.Subscribe()
	defer unsub()
	lagging.wg.Add(1)
	go lagging.watch()
	waitFor(t, ch, "the relist after compaction", func() bool {
		l, _ := lagging.List("Service", "")
		return len(l) == 2 && l[0].GetName() == "keep" && l[1].GetName() == "new" && lagging.Revision() == s.Revision()
	})
	// And it keeps following changes afterwards.
	if err := s.Delete(api.Key{Kind: "Service", Namespace: "default", Name: "new"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ch, "a change after the relist", func() bool { l, _ := lagging.List("Service", ""); return len(l) == 1 })
}

// reopen: a new store on the same prefix sees the same objects and
// revision.
func reopen(t *testing.T, c *testetcd.Cluster) {
	prefix := newPrefix()
	s := openOn(t, c, prefix, nil)
	if _, err := s.Apply(storetest.Decode(t, storetest.Objects)); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(api.Key{Kind: "MeshConfig", Name: "default"}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Set()
	rev := s.Revision()
	s.Close()
	s = openOn(t, c, prefix, nil)
	defer s.Close()
	after, _ := s.Set()
	if s.Revision() != rev || after.Revision != before.Revision || len(after.Services) != 1 || after.MeshConfig != nil {
		t.Errorf("after reopen: revision %d (want %d), %+v", s.Revision(), rev, after)
	}
}

func TestEtcdThreeMembers(t *testing.T) {
	c := testetcd.Start(t, testetcd.Options{Members: 3})
	s := openOn(t, c, newPrefix(), func(o *Options) { o.RequestTimeout = 3 * time.Second })
	defer s.Close()
	if _, err := s.Apply(storetest.Decode(t, storetest.Service("before"))); err != nil {
		t.Fatal(err)
	}
	// One member of three down: applies go on (the first may meet an
	// election and time out, so allow a few attempts).
	c.Kill(0)
	applyEventually(t, s, "after")
	if _, err := s.Get(api.Key{Kind: "Service", Namespace: "default", Name: "after"}); err != nil {
		t.Fatal(err)
	}

	// Quorum lost: applies fail, reads keep serving the last
	// configuration.
	c.Kill(1)
	rev := s.Revision()
	if _, err := s.Apply(storetest.Decode(t, storetest.Service("no-quorum"))); err == nil {
		t.Fatal("Apply without quorum succeeded")
	}
	set, err := s.Set()
	if err != nil || len(set.Services) != 2 || set.Revision != rev {
		t.Fatalf("Set without quorum = %+v, %v; want the 2 services at revision %d", set, err, rev)
	}

	// Quorum back: applies work again.
	c.Restart(0)
	c.Restart(1)
	applyEventually(t, s, "quorum-back")
	if l, _ := s.List("Service", ""); len(l) != 3 {
		t.Errorf("after quorum returned: %d services, want 3", len(l))
	}
}

func applyEventually(t *testing.T, s *Store, name string) {
	t.Helper()
	var err error
	for range 10 {
		if _, err = s.Apply(storetest.Decode(t, storetest.Service(name))); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("Apply %s: %v", name, err)
}

func TestEtcdTLS(t *testing.T) {
	c := testetcd.Start(t, testetcd.Options{TLS: true})
	s := openOn(t, c, newPrefix(), nil)
	if _, err := s.Apply(storetest.Decode(t, storetest.Service("tls"))); err != nil {
		t.Fatal(err)
	}
	s.Close()

	noCert := c.ClientTLS()
	noCert.Certificates = nil
	untrusted, err := tls.LoadX509KeyPair(c.PKI().OtherCertFile, c.PKI().OtherKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	otherCert := c.ClientTLS()
	otherCert.Certificates = []tls.Certificate{untrusted}
	for name, tc := range map[string]*tls.Config{"no client cert": noCert, "untrusted client cert": otherCert, "no TLS": nil} {
		t.Run(name, func(t *testing.T) {
			eps := c.Endpoints()
			if tc == nil {
				eps = []string{strings.Replace(eps[0], "https://", "http://", 1)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := Open(ctx, Options{Endpoints: eps, TLS: tc, DialTimeout: 2 * time.Second, RequestTimeout: 2 * time.Second, Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), "etcd store") {
				t.Errorf("error = %v, want context", err)
			}
		})
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOpenErrors(t *testing.T) {
	if _, err := Open(t.Context(), Options{}); err == nil || !strings.Contains(err.Error(), "no endpoints") {
		t.Errorf("Open without endpoints = %v", err)
	}
}
