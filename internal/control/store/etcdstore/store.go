// Package etcdstore is weft's configuration store on an etcd cluster, for
// several `weft control` replicas sharing one configuration. It implements
// store.Store, store.Blobs and store.Shared.
//
// Layout under Options.Prefix (default "/weft/"):
//
//	objects/<Kind>/<namespace>/<name>  an object as JSON (server metadata
//	                                   but resourceVersion included)
//	meta/revision                      rewritten by every Apply and Delete
//	blobs/<key>                        blobs, leased keys among them
//
// One etcd watch on objects/ and meta/ feeds an in-memory cache, from
// which Get, List and Set are served; Apply and Delete return once the
// cache holds their write, so a replica reads its own writes. Revision is
// the etcd revision of the last change the cache has seen (writes by other
// replicas and by etcdctl included), and an object's resourceVersion is
// the etcd revision that last modified it.
package etcdstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/store"
)

var (
	_ store.Store  = (*Store)(nil)
	_ store.Shared = (*Store)(nil)
)

// MaxTxnOps is etcd's default limit on the operations of one transaction
// (etcd's --max-txn-ops). Apply writes one key per object plus the
// revision key, so it takes at most MaxTxnOps-1 objects.
const MaxTxnOps = 128

// MaxApplyObjects is the most objects one Apply takes.
const MaxApplyObjects = MaxTxnOps - 1

// DefaultPrefix is the key prefix when Options name none.
const DefaultPrefix = "/weft/"

// Options configure Open.
type Options struct {
	// Endpoints are the client URLs of the etcd members
	// (http://host:2379, or https:// with TLS).
	Endpoints []string
	// TLS, if set, is the client's TLS configuration (CA, client
	// certificate).
	TLS *tls.Config
	// Prefix is prepended to every key the store writes (default
	// "/weft/"); replicas sharing one configuration use one prefix.
	Prefix string
	// DialTimeout bounds connecting to the cluster (default 5s).
	DialTimeout time.Duration
	// RequestTimeout bounds one etcd request and the wait until the cache
	// holds a write (default 10s).
	RequestTimeout time.Duration
	// LeaseTTL is how long keys written with PutLeased outlive a replica
	// that stopped without closing its store (default 10s).
	LeaseTTL time.Duration
	// Logger receives the store's logs (default slog.Default()).
	Logger *slog.Logger
}

// Store is weft's configuration store on etcd. It is safe for concurrent
// use.
type Store struct {
	opts       Options
	log        *slog.Logger
	cli        *clientv3.Client
	objPrefix  string
	blobPrefix string
	metaKey    string
	replica    string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	objs    map[api.Key]api.Object
	rev     uint64        // etcd revision of the last change seen
	seen    int64         // the watch has delivered every event up to here
	set     *api.Set      // cached Set of rev, nil when stale
	changed chan struct{} // closed and replaced whenever seen advances
	subs    map[chan struct{}]struct{}

	rejected atomic.Uint64

	leaseMu sync.Mutex
	lease   *leaseState

	closeOnce sync.Once
	closeErr  error
}

// Open connects to the cluster, reads every object under the prefix and
// starts watching it.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("etcd store: no endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 10 * time.Second
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   opts.Endpoints,
		TLS:         opts.TLS,
		DialTimeout: opts.DialTimeout,
		Logger:      zap.NewNop(),
		Context:     context.WithoutCancel(ctx),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd store: connecting to %s: %w", strings.Join(opts.Endpoints, ","), err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		opts: opts, log: opts.Logger, cli: cli,
		objPrefix: opts.Prefix + "objects/", blobPrefix: opts.Prefix + "blobs/", metaKey: opts.Prefix + "meta/revision",
		replica: newReplicaID(), ctx: sctx, cancel: cancel,
		objs: map[api.Key]api.Object{}, changed: make(chan struct{}), subs: map[chan struct{}]struct{}{},
	}
	lctx, lcancel := context.WithTimeout(ctx, opts.DialTimeout+opts.RequestTimeout)
	defer lcancel()
	if err := s.relist(lctx); err != nil {
		cancel()
		cli.Close()
		return nil, fmt.Errorf("etcd store: reading %s: %w", opts.Prefix, hint(err))
	}
	s.wg.Add(1)
	go s.watch()
	return s, nil
}

// newReplicaID is the host name and a random suffix.
func newReplicaID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "weft"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// hint explains the errors of a cluster the store cannot reach.
func hint(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (is etcd reachable, and are the TLS flags right?)", err)
	}
	return err
}

// ReplicaID names this replica: the host name and a random suffix, fixed
// for the Store's life.
func (s *Store) ReplicaID() string { return s.replica }

// Revision is the etcd revision of the last change of the configuration
// the store has seen.
func (s *Store) Revision() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev
}

// Rejected counts the objects written around the store (e.g. with
// etcdctl) that it ignored because they were not valid.
func (s *Store) Rejected() uint64 { return s.rejected.Load() }

// Subscribe returns a channel that receives after every change of the
// configuration, whoever wrote it (coalesced: it has a buffer of one), and
// a function that ends the subscription.
func (s *Store) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.subs, ch)
			s.mu.Unlock()
		})
	}
}

// Close revokes the replica's lease (its leased keys vanish at once),
// stops the watch and disconnects.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.releaseLease(true)
		s.cancel()
		s.wg.Wait()
		if err := s.cli.Close(); err != nil && s.closeErr == nil && !errors.Is(err, context.Canceled) {
			s.closeErr = err
		}
	})
	return s.closeErr
}

// Get returns the object with key k from the cache; the error wraps
// store.ErrNotFound if there is none.
func (s *Store) Get(k api.Key) (api.Object, error) {
	if _, ok := api.LookupKind(k.Kind); !ok {
		return nil, fmt.Errorf("unknown kind %q", k.Kind)
	}
	s.mu.Lock()
	o, ok := s.objs[k]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", k, store.ErrNotFound)
	}
	return o.DeepCopyObject().(api.Object), nil
}

// List returns the objects of kind in namespace ("" for all), sorted by
// namespace and name.
func (s *Store) List(kind, namespace string) ([]api.Object, error) {
	if _, ok := api.LookupKind(kind); !ok {
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	var out []api.Object
	s.mu.Lock()
	for k, o := range s.objs {
		if k.Kind == kind && (namespace == "" || k.Namespace == namespace) {
			out = append(out, o.DeepCopyObject().(api.Object))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b api.Object) int {
		if c := strings.Compare(a.GetNamespace(), b.GetNamespace()); c != 0 {
			return c
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
	return out, nil
}

// Set returns every object in the cache as of Revision. The Set is shared:
// callers must not modify it.
func (s *Store) Set() (*api.Set, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set != nil {
		return s.set, nil
	}
	objs := make([]api.Object, 0, len(s.objs))
	for _, o := range s.objs {
		objs = append(objs, o)
	}
	set, err := api.NewSet(objs)
	if err != nil {
		return nil, err
	}
	set.Revision = s.rev
	s.set = set
	return set, nil
}

// objectKey is the etcd key of k.
func (s *Store) objectKey(k api.Key) string {
	return s.objPrefix + k.Kind + "/" + k.Namespace + "/" + k.Name
}

// parseKey is the api.Key an etcd key under objects/ names.
func (s *Store) parseKey(key string) (api.Key, bool) {
	parts := strings.SplitN(strings.TrimPrefix(key, s.objPrefix), "/", 3)
	if len(parts) != 3 {
		return api.Key{}, false
	}
	return api.Key{Kind: parts[0], Namespace: parts[1], Name: parts[2]}, true
}

// watchRange is the range the cache follows: meta/revision up to the end
// of objects/ (blobs/ sorts before it and is not included).
func (s *Store) watchRange() (start, end string) {
	return s.metaKey, clientv3.GetPrefixRangeEnd(s.objPrefix)
}

// relist replaces the cache with what etcd holds now.
func (s *Store) relist(ctx context.Context) error {
	start, end := s.watchRange()
	resp, err := s.cli.Get(ctx, start, clientv3.WithRange(end))
	if err != nil {
		return err
	}
	objs := map[api.Key]api.Object{}
	var rev uint64
	for _, kv := range resp.Kvs {
		rev = max(rev, uint64(kv.ModRevision))
		if string(kv.Key) == s.metaKey {
			continue
		}
		if k, o, ok := s.decode(kv); ok {
			objs[k] = o
		}
	}
	s.mu.Lock()
	s.objs = objs
	s.rev = max(s.rev, rev)
	s.set = nil
	s.advance(resp.Header.Revision)
	s.notify()
	s.mu.Unlock()
	return nil
}

// decode turns a stored object into the cached one, or logs why it is
// ignored.
func (s *Store) decode(kv *mvccpb.KeyValue) (api.Key, api.Object, bool) {
	k, ok := s.parseKey(string(kv.Key))
	if !ok {
		s.reject(string(kv.Key), errors.New("key is not objects/<kind>/<namespace>/<name>"))
		return k, nil, false
	}
	o, err := api.Unmarshal(kv.Value)
	if err == nil {
		err = api.Validate(o)
	}
	if err == nil && api.KeyOf(o) != k {
		err = fmt.Errorf("the object is %s", api.KeyOf(o))
	}
	if err != nil {
		s.reject(string(kv.Key), err)
		return k, nil, false
	}
	o.SetResourceVersion(fmt.Sprint(kv.ModRevision))
	return k, o, true
}

func (s *Store) reject(key string, err error) {
	s.rejected.Add(1)
	s.log.Warn("ignoring an invalid object in etcd", "key", key, "err", err)
}

// advance records that the watch delivered everything up to rev. Called
// with s.mu held.
func (s *Store) advance(rev int64) {
	if rev > s.seen {
		s.seen = rev
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// notify wakes the subscribers. Called with s.mu held.
func (s *Store) notify() {
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// watch follows the objects and the revision key until the store closes,
// re-reading everything when etcd compacted past the watch.
func (s *Store) watch() {
	defer s.wg.Done()
	start, end := s.watchRange()
	backoff := 100 * time.Millisecond
	for s.ctx.Err() == nil {
		s.mu.Lock()
		from := s.seen + 1
		s.mu.Unlock()
		// WithRequireLeader: a member cut off from the others ends the
		// watch instead of keeping it silently stale, and the client moves
		// to another member.
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
		wch := s.cli.Watch(wctx, start, clientv3.WithRange(end), clientv3.WithRev(from), clientv3.WithProgressNotify())
		relist := false
		for resp := range wch {
			if resp.CompactRevision != 0 || errors.Is(resp.Err(), rpctypes.ErrCompacted) {
				s.log.Info("etcd compacted past the watch; reading everything again", "compacted", resp.CompactRevision)
				relist = true
				break
			}
			if err := resp.Err(); err != nil {
				s.log.Warn("etcd watch failed; watching again", "err", err)
				break
			}
			backoff = 100 * time.Millisecond
			s.apply(resp)
		}
		cancel()
		if s.ctx.Err() != nil {
			return
		}
		if relist {
			rctx, rcancel := context.WithTimeout(s.ctx, s.opts.RequestTimeout)
			err := s.relist(rctx)
			rcancel()
			if err == nil {
				continue
			}
			s.log.Warn("re-reading etcd failed; retrying", "err", err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// apply feeds one watch response into the cache.
func (s *Store) apply(resp clientv3.WatchResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if resp.IsProgressNotify() {
		s.advance(resp.Header.Revision)
		return
	}
	if len(resp.Events) == 0 {
		return
	}
	var last int64
	for _, ev := range resp.Events {
		last = max(last, ev.Kv.ModRevision)
		s.rev = max(s.rev, uint64(ev.Kv.ModRevision))
		if string(ev.Kv.Key) == s.metaKey {
			continue
		}
		k, ok := s.parseKey(string(ev.Kv.Key))
		switch {
		case ev.Type == clientv3.EventTypeDelete:
			if ok {
				delete(s.objs, k)
			}
		default:
			if dk, o, good := s.decode(ev.Kv); good {
				s.objs[dk] = o
			} else if ok {
				delete(s.objs, k)
			}
		}
	}
	s.set = nil
	s.advance(last)
	s.notify()
}

// waitSeen returns once the cache holds every change up to rev.
func (s *Store) waitSeen(ctx context.Context, rev int64) error {
	for {
		s.mu.Lock()
		seen, ch := s.seen, s.changed
		s.mu.Unlock()
		if seen >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the watch to deliver etcd revision %d (at %d): %w", rev, seen, ctx.Err())
		case <-s.ctx.Done():
			return errors.New("etcd store closed")
		}
	}
}
