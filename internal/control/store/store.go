// Package store keeps weft's configuration resources and opaque blobs for
// other control-plane components (CA root, workload registry). Store is the
// interface every back end implements; Bolt, in this file, is the embedded
// bbolt database that `weft control` uses by default. Every change is one
// transaction: all or nothing.
package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"weft.dev/weft/internal/api"
)

// ErrNotFound is returned (wrapped) by Get and Delete for a missing object.
var ErrNotFound = errors.New("not found")

// Actions reported by Apply.
const (
	Created    = "created"
	Configured = "configured"
	Unchanged  = "unchanged"
)

// Change is what Apply did to one object.
type Change struct {
	Key    api.Key
	Action string
}

var (
	bucketObjects = []byte("objects") // nested bucket per kind; key namespace/name
	bucketBlobs   = []byte("blobs")
	bucketMeta    = []byte("meta")
	keyRevision   = []byte("revision")
)

// Store is a control plane's configuration store. Implementations are safe
// for concurrent use; every Apply and Delete is atomic, and Revision names
// the state that Set and Subscribe observe.
type Store interface {
	// Apply validates objs and stores them in one transaction: if any
	// object is invalid or anything fails, nothing is stored.
	Apply(objs []api.Object) ([]Change, error)
	// Delete removes the object with key k; the error wraps ErrNotFound if
	// there is none.
	Delete(k api.Key) error
	// Get returns the object with key k; the error wraps ErrNotFound if
	// there is none.
	Get(k api.Key) (api.Object, error)
	// List returns the objects of kind in namespace ("" for all), sorted by
	// namespace and name.
	List(kind, namespace string) ([]api.Object, error)
	// Set returns every stored object as of one revision, which it
	// records in the Set's Revision.
	Set() (*api.Set, error)
	// Revision increases on every committed change.
	Revision() uint64
	// Subscribe returns a channel that receives after changes (coalesced)
	// and a function that ends the subscription.
	Subscribe() (<-chan struct{}, func())
	Blobs
	// Close releases the store.
	Close() error
}

// Blobs are opaque values other components keep in the store (the CA's
// root, join tokens, the workload registry).
type Blobs interface {
	// GetBlob returns the blob under key, or nil, nil if there is none.
	GetBlob(key string) ([]byte, error)
	// PutBlob stores val under key. Blobs do not change the Revision.
	PutBlob(key string, val []byte) error
	// BlobsWithPrefix returns every blob whose key starts with prefix.
	BlobsWithPrefix(prefix string) (map[string][]byte, error)
	// UpdateBlobs stores put and deletes del in one transaction.
	UpdateBlobs(put map[string][]byte, del []string) error
}

var _ Store = (*Bolt)(nil)

// Bolt is the embedded configuration store. It is safe for concurrent use.
type Bolt struct {
	db       *bolt.DB
	revision atomic.Uint64
	now      func() time.Time

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// Open opens (creating if needed) the database at path.
func Open(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("opening %s: locked by another process (is another `weft control` using this data dir?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	s := &Bolt{db: db, now: time.Now, subs: map[chan struct{}]struct{}{}}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketObjects, bucketBlobs, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		s.revision.Store(readRevision(tx))
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialising %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Bolt) Close() error { return s.db.Close() }

// Revision increases on every committed change and survives restarts.
func (s *Bolt) Revision() uint64 { return s.revision.Load() }

// Subscribe returns a channel that receives after every committed change
// (coalesced: it has a buffer of one) and a function that ends the
// subscription.
func (s *Bolt) Subscribe() (<-chan struct{}, func()) {
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

func (s *Bolt) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Apply validates objs and stores them in one transaction: if any object is
// invalid or anything fails, nothing is stored. Server-managed metadata in
// objs (uid, resourceVersion, generation, creationTimestamp) is ignored.
func (s *Bolt) Apply(objs []api.Object) ([]Change, error) {
	seen := map[api.Key]bool{}
	for _, o := range objs {
		if err := api.Validate(o); err != nil {
			return nil, err
		}
		k := api.KeyOf(o)
		if seen[k] {
			return nil, fmt.Errorf("%s appears more than once", k)
		}
		seen[k] = true
	}
	changes := make([]Change, 0, len(objs))
	var newRev uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		newRev = readRevision(tx) + 1
		changed := false
		for _, in := range objs {
			k := api.KeyOf(in)
			o := in.DeepCopyObject().(api.Object)
			clearServerFields(o)
			b, err := kindBucket(tx, k.Kind, true)
			if err != nil {
				return err
			}
			action := Created
			gen := int64(1)
			if old := b.Get(objectKey(k)); old != nil {
				prev, err := api.Unmarshal(old)
				if err != nil {
					return fmt.Errorf("reading stored %s: %w", k, err)
				}
				same, err := sameContent(prev, o)
				if err != nil {
					return err
				}
				if same {
					changes = append(changes, Change{Key: k, Action: Unchanged})
					continue
				}
				action = Configured
				o.SetUID(prev.GetUID())
				o.SetCreationTimestamp(prev.GetCreationTimestamp())
				gen = prev.GetGeneration() + 1
			} else {
				o.SetUID(newUID())
				o.SetCreationTimestamp(metav1.NewTime(s.now().UTC().Truncate(time.Second)))
			}
			o.SetGeneration(gen)
			o.SetResourceVersion(fmt.Sprint(newRev))
			data, err := api.Marshal(o)
			if err != nil {
				return fmt.Errorf("encoding %s: %w", k, err)
			}
			if err := b.Put(objectKey(k), data); err != nil {
				return err
			}
			changed = true
			changes = append(changes, Change{Key: k, Action: action})
		}
		if !changed {
			newRev = 0
			return nil
		}
		return writeRevision(tx, newRev)
	})
	if err != nil {
		return nil, err
	}
	if newRev != 0 {
		s.advance(newRev)
		s.notify()
	}
	return changes, nil
}

// Delete removes the object with key k; the error wraps ErrNotFound if there
// is none.
func (s *Bolt) Delete(k api.Key) error {
	var newRev uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := kindBucket(tx, k.Kind, false)
		if err != nil {
			return err
		}
		if b == nil || b.Get(objectKey(k)) == nil {
			return fmt.Errorf("%s: %w", k, ErrNotFound)
		}
		if err := b.Delete(objectKey(k)); err != nil {
			return err
		}
		newRev = readRevision(tx) + 1
		return writeRevision(tx, newRev)
	})
	if err != nil {
		return err
	}
	s.advance(newRev)
	s.notify()
	return nil
}

// advance raises Revision to rev. Two writes commit in order but may
// record their revisions after their transactions in either order: the
// counter never goes back.
func (s *Bolt) advance(rev uint64) {
	for {
		cur := s.revision.Load()
		if rev <= cur || s.revision.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// Get returns the object with key k; the error wraps ErrNotFound if there is
// none.
func (s *Bolt) Get(k api.Key) (api.Object, error) {
	var obj api.Object
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := kindBucket(tx, k.Kind, false)
		if err != nil {
			return err
		}
		var data []byte
		if b != nil {
			data = b.Get(objectKey(k))
		}
		if data == nil {
			return fmt.Errorf("%s: %w", k, ErrNotFound)
		}
		obj, err = api.Unmarshal(data)
		return err
	})
	return obj, err
}

// List returns the objects of kind (a canonical kind name) in namespace, or
// in every namespace when namespace is "", sorted by namespace and name.
func (s *Bolt) List(kind, namespace string) ([]api.Object, error) {
	var out []api.Object
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := kindBucket(tx, kind, false)
		if err != nil || b == nil {
			return err
		}
		c := b.Cursor()
		prefix := []byte(nil)
		if namespace != "" {
			prefix = []byte(namespace + "/")
		}
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			o, err := api.Unmarshal(v)
			if err != nil {
				return fmt.Errorf("reading stored %s %s: %w", kind, k, err)
			}
			out = append(out, o)
		}
		return nil
	})
	return out, err
}

// Set returns every stored object, read in one transaction.
func (s *Bolt) Set() (*api.Set, error) {
	var objs []api.Object
	var rev uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		rev = readRevision(tx)
		return tx.Bucket(bucketObjects).ForEachBucket(func(kind []byte) error {
			return tx.Bucket(bucketObjects).Bucket(kind).ForEach(func(k, v []byte) error {
				o, err := api.Unmarshal(v)
				if err != nil {
					return fmt.Errorf("reading stored %s %s: %w", kind, k, err)
				}
				objs = append(objs, o)
				return nil
			})
		})
	})
	if err != nil {
		return nil, err
	}
	set, err := api.NewSet(objs)
	if err != nil {
		return nil, err
	}
	set.Revision = rev
	return set, nil
}

// GetBlob returns the blob under key, or nil, nil if there is none.
func (s *Bolt) GetBlob(key string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketBlobs).Get([]byte(key)); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	return out, err
}

// PutBlob stores val under key. Blobs do not change the Revision.
func (s *Bolt) PutBlob(key string, val []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlobs).Put([]byte(key), val)
	})
}

// BlobsWithPrefix returns every blob whose key starts with prefix.
func (s *Bolt) BlobsWithPrefix(prefix string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketBlobs).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out[string(k)] = bytes.Clone(v)
		}
		return nil
	})
	return out, err
}

// UpdateBlobs stores put and deletes del in one transaction.
func (s *Bolt) UpdateBlobs(put map[string][]byte, del []string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlobs)
		for k, v := range put {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		for _, k := range del {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// kindBucket returns the bucket for kind, creating it if create is set; nil
// if it does not exist yet.
func kindBucket(tx *bolt.Tx, kind string, create bool) (*bolt.Bucket, error) {
	if _, ok := api.LookupKind(kind); !ok {
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	objects := tx.Bucket(bucketObjects)
	if create {
		return objects.CreateBucketIfNotExists([]byte(kind))
	}
	return objects.Bucket([]byte(kind)), nil
}

func objectKey(k api.Key) []byte { return []byte(k.Namespace + "/" + k.Name) }

func readRevision(tx *bolt.Tx) uint64 {
	v := tx.Bucket(bucketMeta).Get(keyRevision)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func writeRevision(tx *bolt.Tx, rev uint64) error {
	return tx.Bucket(bucketMeta).Put(keyRevision, binary.BigEndian.AppendUint64(nil, rev))
}

// ClearServerFields drops the metadata a store manages (uid,
// resourceVersion, generation, creationTimestamp, managed fields, deletion
// fields) and the status, which the API computes when the object is read.
// Every back end clears these before it stores an object.
func ClearServerFields(o api.Object) { clearServerFields(o) }

func clearServerFields(o api.Object) {
	o.SetUID("")
	o.SetResourceVersion("")
	o.SetGeneration(0)
	o.SetCreationTimestamp(metav1.Time{})
	o.SetManagedFields(nil)
	o.SetSelfLink("")
	o.SetDeletionTimestamp(nil)
	o.SetDeletionGracePeriodSeconds(nil)
	api.ClearStatus(o)
}

// SameContent reports whether stored and incoming (already passed through
// ClearServerFields) differ only in server-managed metadata: applying
// incoming over stored is then not a change.
func SameContent(stored, incoming api.Object) (bool, error) { return sameContent(stored, incoming) }

func sameContent(stored, incoming api.Object) (bool, error) {
	a := stored.DeepCopyObject().(api.Object)
	clearServerFields(a)
	ab, err := api.Marshal(a)
	if err != nil {
		return false, err
	}
	bb, err := api.Marshal(incoming)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ab, bb), nil
}

// NewUID returns a random (version 4) UUID for a newly created object.
func NewUID() types.UID { return newUID() }

func newUID() types.UID {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]))
}
