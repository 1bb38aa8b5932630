package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/store"
)

// maxConflicts is how often Apply re-reads and retries when another writer
// changed one of its objects between its read and its write.
const maxConflicts = 10

// Apply validates objs and stores them in one etcd transaction: if any
// object is invalid or anything fails, nothing is stored. Server-managed
// metadata in objs is ignored. At most MaxApplyObjects objects fit in one
// Apply (etcd's limit on a transaction's operations); more is refused, not
// split, since a split Apply would not be all or nothing.
func (s *Store) Apply(objs []api.Object) ([]store.Change, error) {
	if len(objs) > MaxApplyObjects {
		return nil, fmt.Errorf("%d objects in one apply: the etcd store takes at most %d (etcd allows %d operations per transaction); apply them in smaller batches", len(objs), MaxApplyObjects, MaxTxnOps)
	}
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
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.RequestTimeout)
	defer cancel()
	for attempt, conflicts := 0, 0; conflicts < maxConflicts; attempt++ {
		changes, rev, done, err := s.tryApply(ctx, objs)
		if err != nil {
			// A leader election: the write may or may not have gone
			// in; the next attempt reads again and finds out.
			if transient(err) && pause(ctx, attempt) {
				continue
			}
			return nil, err
		}
		if !done {
			conflicts++
			continue
		}
		if err := s.waitSeen(ctx, rev); err != nil {
			return nil, fmt.Errorf("etcd store: %w", err)
		}
		return changes, nil
	}
	return nil, fmt.Errorf("etcd store: apply conflicted with other writers %d times; try again", maxConflicts)
}

// tryApply reads the current objects and writes the changed ones if none
// of them changed in between. done is false on such a conflict; rev is the
// revision the cache must reach before Apply returns.
func (s *Store) tryApply(ctx context.Context, objs []api.Object) (changes []store.Change, rev int64, done bool, err error) {
	gets := make([]clientv3.Op, len(objs))
	for i, o := range objs {
		gets[i] = clientv3.OpGet(s.objectKey(api.KeyOf(o)))
	}
	read, err := s.cli.Txn(ctx).Then(gets...).Commit()
	if err != nil {
		return nil, 0, false, fmt.Errorf("etcd store: reading the current objects: %w", hint(err))
	}
	var cmps []clientv3.Cmp
	var puts []clientv3.Op
	for i, in := range objs {
		k := api.KeyOf(in)
		key := s.objectKey(k)
		o := in.DeepCopyObject().(api.Object)
		store.ClearServerFields(o)
		action := store.Created
		gen := int64(1)
		var modRev int64
		if kvs := read.Responses[i].GetResponseRange().Kvs; len(kvs) == 1 {
			modRev = kvs[0].ModRevision
			rev = max(rev, modRev)
			prev, perr := api.Unmarshal(kvs[0].Value)
			if perr != nil {
				// An unreadable object written around the store: the
				// new one replaces it.
				s.log.Warn("replacing an unreadable object in etcd", "key", key, "err", perr)
				prev = nil
			}
			if prev != nil {
				same, err := store.SameContent(prev, o)
				if err != nil {
					return nil, 0, false, err
				}
				if same {
					cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", modRev))
					changes = append(changes, store.Change{Key: k, Action: store.Unchanged})
					continue
				}
				action = store.Configured
				o.SetUID(prev.GetUID())
				o.SetCreationTimestamp(prev.GetCreationTimestamp())
				gen = prev.GetGeneration() + 1
			}
		}
		if action == store.Created {
			o.SetUID(store.NewUID())
			o.SetCreationTimestamp(metav1.NewTime(time.Now().UTC().Truncate(time.Second)))
		}
		o.SetGeneration(gen)
		data, err := api.Marshal(o)
		if err != nil {
			return nil, 0, false, fmt.Errorf("encoding %s: %w", k, err)
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", modRev))
		puts = append(puts, clientv3.OpPut(key, string(data)))
		changes = append(changes, store.Change{Key: k, Action: action})
	}
	if len(puts) == 0 {
		// Nothing to write; the cache must hold what was read.
		return changes, rev, true, nil
	}
	puts = append(puts, clientv3.OpPut(s.metaKey, s.replica))
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
	if err != nil {
		return nil, 0, false, fmt.Errorf("etcd store: writing %d objects: %w", len(puts)-1, hint(err))
	}
	if !resp.Succeeded {
		return nil, 0, false, nil
	}
	return changes, resp.Header.Revision, true, nil
}

// Delete removes the object with key k; the error wraps store.ErrNotFound
// if there is none.
func (s *Store) Delete(k api.Key) error {
	if _, ok := api.LookupKind(k.Kind); !ok {
		return fmt.Errorf("unknown kind %q", k.Kind)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.RequestTimeout)
	defer cancel()
	key := s.objectKey(k)
	var resp *clientv3.TxnResponse
	var err error
	for attempt := 0; ; attempt++ {
		resp, err = s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), ">", 0)).
			Then(clientv3.OpDelete(key), clientv3.OpPut(s.metaKey, s.replica)).
			Commit()
		if err == nil || !transient(err) || !pause(ctx, attempt) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("etcd store: deleting %s: %w", k, hint(err))
	}
	if !resp.Succeeded {
		return fmt.Errorf("%s: %w", k, store.ErrNotFound)
	}
	if err := s.waitSeen(ctx, resp.Header.Revision); err != nil {
		return fmt.Errorf("etcd store: %w", err)
	}
	return nil
}

var errClosed = errors.New("etcd store closed")

// transient reports whether err is etcd electing a leader or a member
// going away: worth trying again within the request's time.
func transient(err error) bool {
	for _, e := range []error{rpctypes.ErrLeaderChanged, rpctypes.ErrNoLeader, rpctypes.ErrTimeoutDueToLeaderFail,
		rpctypes.ErrTimeoutDueToConnectionLost, rpctypes.ErrTimeout} {
		if errors.Is(err, e) {
			return true
		}
	}
	return status.Code(errors.Unwrap(err)) == codes.Unavailable || status.Code(err) == codes.Unavailable
}

// pause waits before the next attempt (50ms, 100ms, … up to 1s); false if
// ctx ends first.
func pause(ctx context.Context, attempt int) bool {
	d := min(50*time.Millisecond<<min(attempt, 5), time.Second)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
