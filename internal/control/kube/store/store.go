// Package store is weft's configuration store on a Kubernetes cluster: the
// resources are the cluster's own objects — weft.dev custom resources,
// Gateway API routes and gateways, core Services and TLS Secrets — read
// through client-go informers and written through the API server; blobs
// (CA root, join tokens, the workload registry) are Secrets in the control
// plane's namespace. It implements store.Store and store.Shared, so several
// `weft control` replicas can serve one cluster.
//
// Revision is the largest resourceVersion the store has seen (or, for a
// change that one kind's watch delivers after a newer change of another
// kind, one more than the previous revision). kube-apiserver
// hands out resourceVersions from etcd's revision counter, which is one
// counter for the whole cluster and grows with every write, so the largest
// seen grows with every change the informers deliver and two replicas that
// have seen the same writes report the same revision. (The API asks clients
// to treat resourceVersions as opaque; this store relies only on their
// being decimal and growing, which holds for every kube-apiserver backed by
// etcd.)
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"weft.dev/weft/internal/api"
	weftstore "weft.dev/weft/internal/control/store"
)

var (
	_ weftstore.Store  = (*Store)(nil)
	_ weftstore.Shared = (*Store)(nil)
)

// DefaultSystemNamespace is the namespace of the control plane's blobs when
// Options and the pod's service account name none.
const DefaultSystemNamespace = "weft-system"

// inClusterNamespaceFile holds the namespace of the pod a process runs in.
const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Options configure Open.
type Options struct {
	// Namespace, if set, limits the namespaced resources the store reads
	// and writes to that namespace; empty means every namespace. MeshConfig
	// is cluster-scoped and always read.
	Namespace string
	// SystemNamespace holds the blobs and the replicas' Leases. Default:
	// the pod's namespace when running in a cluster, else weft-system.
	SystemNamespace string
	// ReplicaID names this replica among those sharing the cluster.
	// Default: the host name (the pod name) and a random suffix.
	ReplicaID string
	// LeaseTTL is how long leased keys outlive a replica that stopped
	// renewing its Lease (default 15s).
	LeaseTTL time.Duration
	// SyncTimeout bounds the informers' first list (default 60s).
	SyncTimeout time.Duration
	// WriteTimeout bounds one Apply, Delete or blob write, including the
	// wait until the informers have seen it (default 30s).
	WriteTimeout time.Duration
	// NoEndpointSlices turns off the EndpointSlice informer.
	NoEndpointSlices bool
	// Logger receives the store's logs (default slog.Default()).
	Logger *slog.Logger
}

// kindClient is one kind's informer and API client.
type kindClient struct {
	info     api.KindInfo
	gvr      schema.GroupVersionResource
	informer cache.SharedIndexInformer
}

// Rejection is an object in the cluster that the store ignores because it
// is not valid weft configuration (written around `weft apply`, e.g. with
// kubectl).
type Rejection struct {
	Key             api.Key
	ResourceVersion string
	Err             error
}

// Store is weft's configuration store over the Kubernetes API. It is safe
// for concurrent use.
type Store struct {
	opts    Options
	log     *slog.Logger
	dyn     dynamic.Interface
	kube    kubernetes.Interface
	kinds   map[string]*kindClient
	blobInf cache.SharedIndexInformer
	eps     *endpointSlices
	replica string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	objs     map[api.Key]api.Object
	rejected map[api.Key]Rejection
	rev      uint64
	kindRV   map[string]uint64 // largest resourceVersion each informer delivered
	set      *api.Set          // cached Set of rev, nil when stale
	changed  chan struct{}     // closed and replaced on every event
	subs     map[chan struct{}]struct{}

	blobs    blobCache
	leaseMu  sync.Mutex
	lease    *leaseState
	closeErr error
	closed   sync.Once
}

// Open connects to the API server cfg names, checks that it serves every
// kind weft stores (the CRDs are installed), starts the informers and
// returns once their caches are filled.
func Open(ctx context.Context, cfg *rest.Config, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SystemNamespace == "" {
		opts.SystemNamespace = podNamespace()
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 15 * time.Second
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = 60 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	if opts.ReplicaID == "" {
		opts.ReplicaID = defaultReplicaID()
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "weft-control"
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if err := checkServed(kube.Discovery()); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		opts: opts, log: opts.Logger, dyn: dyn, kube: kube, replica: opts.ReplicaID,
		kinds: map[string]*kindClient{}, ctx: sctx, cancel: cancel,
		objs: map[api.Key]api.Object{}, rejected: map[api.Key]Rejection{}, kindRV: map[string]uint64{},
		changed: make(chan struct{}), subs: map[chan struct{}]struct{}{},
		blobs: newBlobCache(),
	}
	var synced []cache.InformerSynced
	for _, info := range api.Kinds() {
		kc := &kindClient{info: info, gvr: gvrOf(info)}
		ns := ""
		if info.Namespaced {
			ns = opts.Namespace
		}
		var tweak dynamicinformer.TweakListOptionsFunc
		if info.Kind == api.KindSecret {
			// Only TLS Secrets are weft configuration (Gateway listener
			// certificates); the store does not read any other Secret.
			tweak = func(o *metav1.ListOptions) { o.FieldSelector = "type=kubernetes.io/tls" }
		}
		kc.informer = dynamicinformer.NewFilteredDynamicInformer(dyn, kc.gvr, ns, 0, cache.Indexers{}, tweak).Informer()
		if _, err := kc.informer.AddEventHandler(s.objectHandler(kc)); err != nil {
			cancel()
			return nil, fmt.Errorf("watching %s: %w", info.Plural, err)
		}
		s.kinds[info.Kind] = kc
		synced = append(synced, kc.informer.HasSynced)
	}
	s.blobInf = s.newBlobInformer()
	synced = append(synced, s.blobInf.HasSynced)
	if !opts.NoEndpointSlices {
		s.eps = newEndpointSlices(kube, opts.Namespace)
		if err := s.eps.watchChanges(); err != nil {
			cancel()
			return nil, err
		}
		synced = append(synced, s.eps.informer.HasSynced)
	}
	run := func(inf cache.SharedIndexInformer) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			inf.RunWithContext(sctx)
		}()
	}
	for _, kc := range s.kinds {
		run(kc.informer)
	}
	run(s.blobInf)
	if s.eps != nil {
		run(s.eps.informer)
	}
	syncCtx, syncCancel := context.WithTimeout(ctx, opts.SyncTimeout)
	defer syncCancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), synced...) {
		s.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("listing weft's resources from the API server did not finish within %v (does the control plane's service account may list and watch them? see docs/kubernetes/store.md)", opts.SyncTimeout)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sweepLoop(sctx)
	}()
	s.log.Info("kubernetes store ready", "revision", s.Revision(), "objects", len(s.objs), "namespace", opts.Namespace,
		"systemNamespace", opts.SystemNamespace, "replica", s.replica)
	return s, nil
}

// checkServed reports the kinds the API server does not serve, naming the
// CRDs to install.
func checkServed(d discovery.DiscoveryInterface) error {
	var missing []string
	byGV := map[string][]api.KindInfo{}
	var gvs []string
	for _, k := range api.Kinds() {
		if _, ok := byGV[k.APIVersion]; !ok {
			gvs = append(gvs, k.APIVersion)
		}
		byGV[k.APIVersion] = append(byGV[k.APIVersion], k)
	}
	for _, gv := range gvs {
		list, err := d.ServerResourcesForGroupVersion(gv)
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("asking the API server which resources it serves in %s: %w", gv, err)
		}
		for _, k := range byGV[gv] {
			found := false
			if list != nil {
				for _, r := range list.APIResources {
					if r.Name == k.Plural {
						found = true
					}
				}
			}
			if !found {
				missing = append(missing, k.Plural+"."+k.Group()+"/"+strings.TrimPrefix(gv, k.Group()+"/"))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the API server does not serve %s: install weft's CRDs and the Gateway API CRDs (weft install --kubernetes)", strings.Join(missing, ", "))
	}
	return nil
}

func gvrOf(k api.KindInfo) schema.GroupVersionResource {
	gv, _ := schema.ParseGroupVersion(k.APIVersion)
	return gv.WithResource(k.Plural)
}

// podNamespace is the namespace of the pod this process runs in, or
// DefaultSystemNamespace outside a cluster.
func podNamespace() string {
	if b, err := os.ReadFile(inClusterNamespaceFile); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return DefaultSystemNamespace
}

func defaultReplicaID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "weft"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// Close stops the informers and removes this replica's leased keys and
// Lease. The store must not be used afterwards.
func (s *Store) Close() error {
	s.closed.Do(func() {
		s.closeErr = s.releaseLease()
		s.cancel()
		s.wg.Wait()
		s.mu.Lock()
		for ch := range s.subs {
			delete(s.subs, ch)
		}
		s.mu.Unlock()
	})
	return s.closeErr
}

// Revision is the largest resourceVersion the informers delivered.
func (s *Store) Revision() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev
}

// Subscribe returns a channel that receives after every change of the
// configuration the store serves and after it starts ignoring an object
// (a new Rejected entry), coalesced (it has a buffer of one), and a
// function that ends the subscription.
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

// Get returns the object with key k from the informers' cache; the error
// wraps store.ErrNotFound if there is none (or it is not valid).
func (s *Store) Get(k api.Key) (api.Object, error) {
	if _, ok := api.LookupKind(k.Kind); !ok {
		return nil, fmt.Errorf("unknown kind %q", k.Kind)
	}
	s.mu.Lock()
	o, ok := s.objs[k]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", k, weftstore.ErrNotFound)
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

// Set returns every valid object the informers hold, as of one revision.
// Kubernetes has no transactions across objects; the Set is what the store
// had seen of each kind's watch at that revision.
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

// Rejected lists the objects in the cluster that the store ignores because
// they are not valid weft configuration, sorted by key.
func (s *Store) Rejected() []Rejection {
	s.mu.Lock()
	out := make([]Rejection, 0, len(s.rejected))
	for _, r := range s.rejected {
		out = append(out, r)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Rejection) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	return out
}

// ReplicaID names this replica.
func (s *Store) ReplicaID() string { return s.replica }

// objectHandler turns one kind's informer events into cache updates.
func (s *Store) objectHandler(kc *kindClient) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.upsert(kc, obj) },
		UpdateFunc: func(_, obj any) { s.upsert(kc, obj) },
		DeleteFunc: func(obj any) { s.remove(kc, obj) },
	}
}

func (s *Store) upsert(kc *kindClient, obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	k := api.Key{Kind: kc.info.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
	if u.GetDeletionTimestamp() != nil {
		// Going away (finalizers pending): no longer configuration.
		s.remove(kc, obj)
		return
	}
	rv := parseRV(u.GetResourceVersion())
	if kc.info.Group() == "" && kc.info.Kind == api.KindService && !selectsPods(u) {
		// A Service without a selector (the API server's own
		// default/kubernetes, ExternalName ones, hand-made endpoints) is
		// none of the mesh's business: not configuration, not an error.
		s.mu.Lock()
		defer s.mu.Unlock()
		_, had := s.objs[k]
		delete(s.objs, k)
		delete(s.rejected, k)
		s.advance(kc, rv, had)
		return
	}
	o, err := convert(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	if err != nil {
		prev, had := s.rejected[k]
		s.rejected[k] = Rejection{Key: k, ResourceVersion: u.GetResourceVersion(), Err: err}
		if _, had := s.objs[k]; had {
			delete(s.objs, k)
			changed = true
		}
		if !had || prev.ResourceVersion != u.GetResourceVersion() {
			s.log.Log(s.ctx, slog.LevelWarn, "ignoring an object that is not valid weft configuration", "object", k.String(),
				"resourceVersion", u.GetResourceVersion(), "reason", err)
			if !changed {
				// Nothing served changed, but the status writer reports
				// the rejection.
				s.notify()
			}
		}
	} else {
		delete(s.rejected, k)
		prev, had := s.objs[k]
		// A relist hands over objects the store already has.
		changed = !had || prev.GetResourceVersion() != o.GetResourceVersion() || prev.GetUID() != o.GetUID()
		s.objs[k] = o
	}
	s.advance(kc, rv, changed)
}

func (s *Store) remove(kc *kindClient, obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	k := api.Key{Kind: kc.info.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
	// A watch's DELETED event carries the revision of the deletion; a
	// deletion found by a relist carries the object's last one, but the
	// relist's own revision is newer.
	rv := max(parseRV(u.GetResourceVersion()), parseRV(kc.informer.LastSyncResourceVersion()))
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rejected, k)
	_, had := s.objs[k]
	delete(s.objs, k)
	s.advance(kc, rv, had)
}

// advance records rv for kc and, if the cache changed, invalidates the Set
// and notifies subscribers. s.mu is held.
func (s *Store) advance(kc *kindClient, rv uint64, changed bool) {
	if rv > s.kindRV[kc.info.Kind] {
		s.kindRV[kc.info.Kind] = rv
	}
	if changed {
		if rv > s.rev {
			s.rev = rv
		} else {
			// Each kind has its own watch, so a change of one kind can
			// arrive after a newer change of another: Revision still
			// grows with every change the store serves.
			s.rev++
		}
		s.set = nil
		s.notify()
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// notify wakes every subscriber. s.mu is held.
func (s *Store) notify() {
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// waitFor blocks until cond (called with s.mu held) holds, the write
// timeout expires or the store closes.
func (s *Store) waitFor(ctx context.Context, what string, cond func() bool) error {
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the informers to see %s: %w", what, ctx.Err())
		case <-s.ctx.Done():
			return errors.New("store closed")
		}
	}
}

// convert reads an object from the API server as weft's typed object,
// applies weft's defaults and validates it.
func convert(u *unstructured.Unstructured) (api.Object, error) {
	b, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	o, err := api.Unmarshal(b)
	if err != nil {
		return nil, err
	}
	if d, ok := o.(interface{ Default() }); ok {
		d.Default()
	}
	if err := api.Validate(o); err != nil {
		return nil, err
	}
	if err := api.CheckSupported(o); err != nil {
		return nil, err
	}
	// Statuses are the control plane's to compute (and write back); the
	// configuration is the rest, as in the bbolt store.
	api.ClearStatus(o)
	return o, nil
}

func parseRV(s string) uint64 {
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}

// selectsPods reports whether the core Service u has a non-empty selector
// and is not an ExternalName Service.
func selectsPods(u *unstructured.Unstructured) bool {
	if t, _, _ := unstructured.NestedString(u.Object, "spec", "type"); t == "ExternalName" {
		return false
	}
	sel, _, _ := unstructured.NestedMap(u.Object, "spec", "selector")
	return len(sel) > 0
}

// SystemNamespace is the namespace of the control plane's Secrets and
// Leases.
func (s *Store) SystemNamespace() string { return s.opts.SystemNamespace }
