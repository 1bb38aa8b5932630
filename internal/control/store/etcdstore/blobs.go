package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Blobs live under <prefix>blobs/ and are read from etcd directly (not
// from the cache): they are not configuration and do not change the
// Revision.

func (s *Store) reqCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.opts.RequestTimeout)
}

// GetBlob returns the blob under key, or nil, nil if there is none.
func (s *Store) GetBlob(key string) ([]byte, error) {
	ctx, cancel := s.reqCtx()
	defer cancel()
	resp, err := s.cli.Get(ctx, s.blobPrefix+key)
	if err != nil {
		return nil, fmt.Errorf("etcd store: reading blob %q: %w", key, hint(err))
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0].Value, nil
}

// PutBlob stores val under key.
func (s *Store) PutBlob(key string, val []byte) error {
	ctx, cancel := s.reqCtx()
	defer cancel()
	if _, err := s.cli.Put(ctx, s.blobPrefix+key, string(val)); err != nil {
		return fmt.Errorf("etcd store: writing blob %q: %w", key, hint(err))
	}
	return nil
}

// BlobsWithPrefix returns every blob whose key starts with prefix.
func (s *Store) BlobsWithPrefix(prefix string) (map[string][]byte, error) {
	ctx, cancel := s.reqCtx()
	defer cancel()
	resp, err := s.cli.Get(ctx, s.blobPrefix+prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd store: reading blobs %q: %w", prefix, hint(err))
	}
	out := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), s.blobPrefix)] = kv.Value
	}
	return out, nil
}

// UpdateBlobs stores put and deletes del (a key in both is deleted). Up to
// MaxTxnOps keys change in one transaction; a larger update is written as
// several transactions of MaxTxnOps keys each, in key order, so a failure
// part way leaves the earlier ones written. (The workload registry, which
// makes the large updates, writes every entry independently and retries
// what failed.)
func (s *Store) UpdateBlobs(put map[string][]byte, del []string) error {
	deleted := map[string]bool{}
	var keys []string
	for _, k := range del {
		if !deleted[k] {
			deleted[k] = true
			keys = append(keys, k)
		}
	}
	for k := range put {
		if !deleted[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	ctx, cancel := s.reqCtx()
	defer cancel()
	for chunk := range slices.Chunk(keys, MaxTxnOps) {
		ops := make([]clientv3.Op, len(chunk))
		for i, k := range chunk {
			if deleted[k] {
				ops[i] = clientv3.OpDelete(s.blobPrefix + k)
			} else {
				ops[i] = clientv3.OpPut(s.blobPrefix+k, string(put[k]))
			}
		}
		if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("etcd store: updating %d blobs: %w", len(chunk), hint(err))
		}
	}
	return nil
}

// CreateBlob stores val under key only if the key does not exist, and
// returns the value stored afterwards: val if this call created it, else
// the existing one.
func (s *Store) CreateBlob(key string, val []byte) ([]byte, error) {
	ctx, cancel := s.reqCtx()
	defer cancel()
	k := s.blobPrefix + key
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, string(val))).
		Else(clientv3.OpGet(k)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd store: creating blob %q: %w", key, hint(err))
	}
	if resp.Succeeded {
		return val, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) != 1 {
		return nil, fmt.Errorf("etcd store: creating blob %q: it exists but reads as %d values", key, len(kvs))
	}
	return kvs[0].Value, nil
}

// WatchBlobs calls fn once per blob under prefix with its current value,
// then once per change (val is nil for a deletion), in order, until ctx
// ends or the store closes. When etcd compacted past the watch it reads the
// prefix again and reports what changed meanwhile.
func (s *Store) WatchBlobs(ctx context.Context, prefix string, fn func(key string, val []byte)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	full := s.blobPrefix + prefix
	known := map[string]bool{}
	list := func() (int64, error) {
		rctx, rcancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
		defer rcancel()
		resp, err := s.cli.Get(rctx, full, clientv3.WithPrefix())
		if err != nil {
			return 0, fmt.Errorf("etcd store: reading blobs %q: %w", prefix, hint(err))
		}
		now := map[string]bool{}
		for _, kv := range resp.Kvs {
			k := strings.TrimPrefix(string(kv.Key), s.blobPrefix)
			now[k] = true
			fn(k, kv.Value)
		}
		for k := range known {
			if !now[k] {
				fn(k, nil)
			}
		}
		known = now
		return resp.Header.Revision, nil
	}
	rev, err := list()
	if err != nil {
		return err
	}
	for {
		wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), full, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		relist := false
		for resp := range wch {
			if resp.CompactRevision != 0 || errors.Is(resp.Err(), rpctypes.ErrCompacted) {
				relist = true
				break
			}
			if err := resp.Err(); err != nil {
				break
			}
			for _, ev := range resp.Events {
				k := strings.TrimPrefix(string(ev.Kv.Key), s.blobPrefix)
				rev = ev.Kv.ModRevision
				if ev.Type == clientv3.EventTypeDelete {
					delete(known, k)
					fn(k, nil)
				} else {
					known[k] = true
					fn(k, ev.Kv.Value)
				}
			}
		}
		if s.ctx.Err() != nil {
			return errClosed
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if relist {
			if rev, err = list(); err != nil {
				return err
			}
		}
	}
}
