package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// Blobs are Secrets in the system namespace, one per key: whatever a
// component keeps there (the CA's root key, join tokens) may be key
// material, so none is a ConfigMap.
const (
	// LabelBlob marks the Secrets that hold blobs; the store watches only
	// those.
	LabelBlob = "weft.dev/blob"
	// LabelReplica on a blob Secret names (by hash) the replica whose
	// Lease it lives as long as: a key written with PutLeased.
	LabelReplica = "weft.dev/replica"
	// LabelReplicaLease marks the replicas' Leases.
	LabelReplicaLease = "weft.dev/replica-lease"
	// AnnotationBlobKey holds the blob's key (Secret names cannot hold
	// every key).
	AnnotationBlobKey = "weft.dev/blob-key"
	// AnnotationReplicaID holds the replica ID on its Lease.
	AnnotationReplicaID = "weft.dev/replica-id"
	// SecretTypeBlob is the type of blob Secrets.
	SecretTypeBlob corev1.SecretType = "weft.dev/blob"
	// blobDataKey is the data key of a blob's value.
	blobDataKey = "value"
)

// blobName maps a key to its Secret's name: a readable part of the key and
// a hash of all of it, so distinct keys never share a name.
func blobName(key string) string {
	sum := sha256.Sum256([]byte(key))
	var b strings.Builder
	for _, r := range strings.ToLower(key) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	slug := strings.Trim(b.String(), "-")
	if len(slug) > 200 {
		slug = strings.TrimRight(slug[:200], "-")
	}
	if slug == "" {
		return "weft-blob-" + hex.EncodeToString(sum[:8])
	}
	return "weft-blob-" + slug + "-" + hex.EncodeToString(sum[:8])
}

// replicaLabel is the label value (and Lease name suffix) of a replica ID.
func replicaLabel(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:10])
}

type blobEntry struct {
	val     []byte
	name    string
	replica string // LabelReplica, "" for a plain blob
	created metav1.Time
}

type blobEvent struct {
	key string
	val []byte // nil: deleted
}

type blobWatcher struct {
	prefix string
	mu     sync.Mutex
	queue  []blobEvent
	wake   chan struct{}
}

func (w *blobWatcher) push(ev blobEvent) {
	w.mu.Lock()
	w.queue = append(w.queue, ev)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// blobCache is the informer's view of the blob Secrets. Its fields are
// guarded by Store.mu.
type blobCache struct {
	byKey    map[string]blobEntry
	keyOf    map[string]string // Secret name -> key
	rv       uint64
	watchers map[*blobWatcher]struct{}
}

func newBlobCache() blobCache {
	return blobCache{byKey: map[string]blobEntry{}, keyOf: map[string]string{}, watchers: map[*blobWatcher]struct{}{}}
}

func (s *Store) newBlobInformer() cache.SharedIndexInformer {
	lw := cache.NewFilteredListWatchFromClient(s.kube.CoreV1().RESTClient(), "secrets", s.opts.SystemNamespace,
		func(o *metav1.ListOptions) { o.LabelSelector = LabelBlob + "=true" })
	inf := cache.NewSharedIndexInformer(lw, &corev1.Secret{}, 0, cache.Indexers{})
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.blobUpsert(obj) },
		UpdateFunc: func(_, obj any) { s.blobUpsert(obj) },
		DeleteFunc: func(obj any) { s.blobRemove(inf, obj) },
	})
	return inf
}

func (s *Store) blobUpsert(obj any) {
	sec, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	key, ok := sec.Annotations[AnnotationBlobKey]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobAdvance(parseRV(sec.ResourceVersion))
	if !ok || sec.DeletionTimestamp != nil {
		if !ok {
			s.log.Warn("ignoring a blob Secret without its key annotation", "secret", sec.Namespace+"/"+sec.Name, "annotation", AnnotationBlobKey)
		}
		s.blobDrop(sec.Name)
		return
	}
	if old, had := s.blobs.keyOf[sec.Name]; had && old != key {
		s.blobDrop(sec.Name)
	}
	val := sec.Data[blobDataKey]
	if val == nil {
		val = []byte{}
	}
	prev, had := s.blobs.byKey[key]
	s.blobs.byKey[key] = blobEntry{val: val, name: sec.Name, replica: sec.Labels[LabelReplica], created: sec.CreationTimestamp}
	s.blobs.keyOf[sec.Name] = key
	if had && bytes.Equal(prev.val, val) {
		return
	}
	s.blobNotify(blobEvent{key: key, val: bytes.Clone(val)})
}

func (s *Store) blobRemove(inf cache.SharedIndexInformer, obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	sec, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobAdvance(max(parseRV(sec.ResourceVersion), parseRV(inf.LastSyncResourceVersion())))
	s.blobDrop(sec.Name)
}

// blobDrop forgets the blob of Secret name. s.mu is held.
func (s *Store) blobDrop(name string) {
	key, ok := s.blobs.keyOf[name]
	if !ok {
		return
	}
	delete(s.blobs.keyOf, name)
	if e, ok := s.blobs.byKey[key]; ok && e.name == name {
		delete(s.blobs.byKey, key)
		s.blobNotify(blobEvent{key: key})
	}
}

// blobAdvance records rv and wakes writers waiting for it. s.mu is held.
func (s *Store) blobAdvance(rv uint64) {
	if rv > s.blobs.rv {
		s.blobs.rv = rv
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Store) blobNotify(ev blobEvent) {
	for w := range s.blobs.watchers {
		if strings.HasPrefix(ev.key, w.prefix) {
			w.push(ev)
		}
	}
}

// GetBlob returns the blob under key, or nil, nil if there is none.
func (s *Store) GetBlob(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.blobs.byKey[key]; ok {
		return bytes.Clone(e.val), nil
	}
	return nil, nil
}

// BlobsWithPrefix returns every blob whose key starts with prefix.
func (s *Store) BlobsWithPrefix(prefix string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for k, e := range s.blobs.byKey {
		if strings.HasPrefix(k, prefix) {
			out[k] = bytes.Clone(e.val)
		}
	}
	return out, nil
}

// PutBlob stores val under key (a Secret) and returns once the informer has
// seen it. Blobs do not change the Revision.
func (s *Store) PutBlob(key string, val []byte) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.WriteTimeout)
	defer cancel()
	return s.putBlob(ctx, key, val, nil)
}

// UpdateBlobs stores put and deletes del. Each key is one Secret and
// Kubernetes has no transactions across objects: the puts are written (in
// key order) before the deletions, and a failure leaves the writes before
// it in place.
func (s *Store) UpdateBlobs(put map[string][]byte, del []string) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.WriteTimeout)
	defer cancel()
	for _, k := range slices.Sorted(maps.Keys(put)) {
		if err := s.putBlob(ctx, k, put[k], nil); err != nil {
			return err
		}
	}
	for _, k := range del {
		if err := s.deleteBlob(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// CreateBlob stores val under key only if there is no such key and returns
// the value stored afterwards: val, or the value another replica created
// first.
func (s *Store) CreateBlob(key string, val []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.WriteTimeout)
	defer cancel()
	secrets := s.kube.CoreV1().Secrets(s.opts.SystemNamespace)
	out, err := secrets.Create(ctx, s.blobSecret(key, val, nil), metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		cur, err := secrets.Get(ctx, blobName(key), metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("reading blob %q: %w", key, hint(err))
		}
		if got := cur.Annotations[AnnotationBlobKey]; got != key {
			return nil, fmt.Errorf("secret %s/%s holds blob %q, not %q", cur.Namespace, cur.Name, got, key)
		}
		v := cur.Data[blobDataKey]
		if v == nil {
			v = []byte{}
		}
		return v, s.waitBlobRV(ctx, key, parseRV(cur.ResourceVersion))
	}
	if err != nil {
		return nil, fmt.Errorf("creating blob %q: %w", key, hint(err))
	}
	return bytes.Clone(val), s.waitBlobRV(ctx, key, parseRV(out.ResourceVersion))
}

// blobSecret is the Secret that holds val under key; owner, if set, is the
// Lease it lives as long as.
func (s *Store) blobSecret(key string, val []byte, owner *leaseState) *corev1.Secret {
	if val == nil {
		val = []byte{}
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        blobName(key),
			Namespace:   s.opts.SystemNamespace,
			Labels:      map[string]string{LabelBlob: "true", "app.kubernetes.io/managed-by": "weft"},
			Annotations: map[string]string{AnnotationBlobKey: key},
		},
		Type: SecretTypeBlob,
		Data: map[string][]byte{blobDataKey: val},
	}
	if owner != nil {
		sec.Labels[LabelReplica] = owner.label
		sec.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "coordination.k8s.io/v1", Kind: "Lease", Name: owner.name, UID: owner.uid,
		}}
	}
	return sec
}

// putBlob creates or replaces the Secret of key and waits until the
// informer has seen it.
func (s *Store) putBlob(ctx context.Context, key string, val []byte, owner *leaseState) error {
	secrets := s.kube.CoreV1().Secrets(s.opts.SystemNamespace)
	want := s.blobSecret(key, val, owner)
	for attempt := 1; ; attempt++ {
		cur, err := secrets.Get(ctx, want.Name, metav1.GetOptions{})
		var out *corev1.Secret
		switch {
		case apierrors.IsNotFound(err):
			out, err = secrets.Create(ctx, want.DeepCopy(), metav1.CreateOptions{FieldManager: FieldManager})
			if apierrors.IsAlreadyExists(err) && attempt < maxWriteAttempts {
				continue
			}
		case err != nil:
			return fmt.Errorf("reading blob %q: %w", key, hint(err))
		default:
			if got, ok := cur.Annotations[AnnotationBlobKey]; ok && got != key {
				return fmt.Errorf("secret %s/%s holds blob %q, not %q", cur.Namespace, cur.Name, got, key)
			}
			in := want.DeepCopy()
			in.ResourceVersion = cur.ResourceVersion
			out, err = secrets.Update(ctx, in, metav1.UpdateOptions{FieldManager: FieldManager})
			if apierrors.IsConflict(err) && attempt < maxWriteAttempts {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("writing blob %q: %w", key, hint(err))
		}
		return s.waitBlobRV(ctx, key, parseRV(out.ResourceVersion))
	}
}

func (s *Store) deleteBlob(ctx context.Context, key string) error {
	err := s.kube.CoreV1().Secrets(s.opts.SystemNamespace).Delete(ctx, blobName(key), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting blob %q: %w", key, hint(err))
	}
	return s.waitFor(ctx, "blob "+key+" deleted", func() bool {
		_, ok := s.blobs.byKey[key]
		return !ok
	})
}

func (s *Store) waitBlobRV(ctx context.Context, key string, rv uint64) error {
	return s.waitFor(ctx, "blob "+key, func() bool { return s.blobs.rv >= rv })
}

// WatchBlobs calls fn with every blob under prefix, then with every change
// (nil val: deleted) in the order the informer saw them, until ctx ends or
// the store closes. fn runs on this goroutine.
func (s *Store) WatchBlobs(ctx context.Context, prefix string, fn func(key string, val []byte)) error {
	w := &blobWatcher{prefix: prefix, wake: make(chan struct{}, 1)}
	s.mu.Lock()
	for _, k := range slices.Sorted(maps.Keys(s.blobs.byKey)) {
		if strings.HasPrefix(k, prefix) {
			w.queue = append(w.queue, blobEvent{key: k, val: bytes.Clone(s.blobs.byKey[k].val)})
		}
	}
	s.blobs.watchers[w] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.blobs.watchers, w)
		s.mu.Unlock()
	}()
	for {
		w.mu.Lock()
		q := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, ev := range q {
			fn(ev.key, ev.val)
		}
		select {
		case <-w.wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return errors.New("store closed")
		}
	}
}
