package etcdstore

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Leased keys are blobs attached to one etcd lease per replica, granted on
// the first PutLeased and kept alive by the client. If the lease is lost
// anyway (the replica was cut off from etcd for longer than the TTL), the
// replica grants a new one and writes its leased keys again. Close revokes
// the lease, so a replica that stops cleanly takes its keys with it at
// once; one that dies loses them after the TTL.

// leaseState is this replica's lease and the keys written on it.
type leaseState struct {
	id   clientv3.LeaseID
	keys map[string][]byte
	stop context.CancelFunc
	done chan struct{}
}

func (s *Store) ttlSeconds() int64 {
	return int64(max(1, (s.opts.LeaseTTL+time.Second-1)/time.Second))
}

// PutLeased stores val under key for as long as this replica keeps its
// lease alive: after it dies, the key disappears within LeaseTTL.
func (s *Store) PutLeased(ctx context.Context, key string, val []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if s.ctx.Err() != nil {
		return errClosed
	}
	if s.lease == nil {
		id, err := s.grant(ctx)
		if err != nil {
			return err
		}
		lctx, stop := context.WithCancel(s.ctx)
		s.lease = &leaseState{id: id, keys: map[string][]byte{}, stop: stop, done: make(chan struct{})}
		go s.keepAlive(lctx, s.lease)
	}
	if _, err := s.cli.Put(ctx, s.blobPrefix+key, string(val), clientv3.WithLease(s.lease.id)); err != nil {
		return fmt.Errorf("etcd store: writing leased key %q: %w", key, hint(err))
	}
	s.lease.keys[key] = val
	return nil
}

// DeleteLeased deletes a key stored with PutLeased.
func (s *Store) DeleteLeased(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if s.lease != nil {
		delete(s.lease.keys, key)
	}
	if _, err := s.cli.Delete(ctx, s.blobPrefix+key); err != nil {
		return fmt.Errorf("etcd store: deleting leased key %q: %w", key, hint(err))
	}
	return nil
}

func (s *Store) grant(ctx context.Context) (clientv3.LeaseID, error) {
	resp, err := s.cli.Grant(ctx, s.ttlSeconds())
	if err != nil {
		return 0, fmt.Errorf("etcd store: granting the replica lease: %w", hint(err))
	}
	return resp.ID, nil
}

// keepAlive keeps l alive until ctx ends; when etcd says the lease is gone
// it grants a new one and rewrites the leased keys on it.
func (s *Store) keepAlive(ctx context.Context, l *leaseState) {
	defer close(l.done)
	backoff := 100 * time.Millisecond
	for {
		s.leaseMu.Lock()
		id := l.id
		s.leaseMu.Unlock()
		ka, err := s.cli.KeepAlive(ctx, id)
		if err == nil {
			for range ka {
				backoff = 100 * time.Millisecond
			}
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("the replica lease expired; granting a new one and rewriting the leased keys", "lease", fmt.Sprintf("%x", id), "err", err)
		for ctx.Err() == nil {
			if err := s.regrant(ctx, l); err == nil {
				break
			} else {
				s.log.Warn("re-granting the replica lease failed; retrying", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// regrant moves l's keys onto a new lease.
func (s *Store) regrant(ctx context.Context, l *leaseState) error {
	rctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	id, err := s.grant(rctx)
	if err != nil {
		return err
	}
	var ops []clientv3.Op
	for k, v := range l.keys {
		ops = append(ops, clientv3.OpPut(s.blobPrefix+k, string(v), clientv3.WithLease(id)))
	}
	for len(ops) > 0 {
		n := min(len(ops), MaxTxnOps)
		if _, err := s.cli.Txn(rctx).Then(ops[:n]...).Commit(); err != nil {
			_, _ = s.cli.Revoke(rctx, id)
			return fmt.Errorf("etcd store: rewriting leased keys: %w", err)
		}
		ops = ops[n:]
	}
	l.id = id
	return nil
}

// releaseLease stops keeping the lease alive and, if revoke is set,
// revokes it so that the leased keys vanish now.
func (s *Store) releaseLease(revoke bool) error {
	s.leaseMu.Lock()
	l := s.lease
	s.lease = nil
	s.leaseMu.Unlock()
	if l == nil {
		return nil
	}
	l.stop()
	<-l.done
	if !revoke {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.RequestTimeout)
	defer cancel()
	if _, err := s.cli.Revoke(ctx, l.id); err != nil {
		return fmt.Errorf("etcd store: revoking the replica lease (its keys vanish after %s): %w", s.opts.LeaseTTL, err)
	}
	return nil
}
