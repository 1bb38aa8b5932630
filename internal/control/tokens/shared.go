package tokens

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"crypto/sha256"
)

// Watcher is what a store shared by several control-plane replicas offers
// (store.Shared): a watch of the blobs under a prefix.
type Watcher interface {
	// WatchBlobs reports every key under prefix, then every change (nil
	// for a deletion), until ctx ends or the watch fails.
	WatchBlobs(ctx context.Context, prefix string, fn func(key string, val []byte)) error
}

// blobGetter is the optional single-key read of a Persistence: with it a
// token that another replica created a moment ago, before the watch
// delivered it, is read from the store on first use.
type blobGetter interface {
	GetBlob(key string) ([]byte, error)
}

// Follow keeps the tokens in step with the store until ctx ends, for a
// store that other control-plane replicas write too: a token created or
// revoked on any replica is known (or refused) on this one. A failed
// watch is restarted.
func (s *Store) Follow(ctx context.Context, w Watcher) {
	wait := 100 * time.Millisecond
	for {
		err := w.WatchBlobs(ctx, blobPrefix, s.apply)
		if ctx.Err() != nil {
			return
		}
		s.logger.Warn("watching join tokens; restarting the watch", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// apply records one reported blob: a token another replica stored (or
// this one), or deleted.
func (s *Store) apply(key string, val []byte) {
	id := strings.TrimPrefix(key, blobPrefix)
	if val == nil {
		s.mu.Lock()
		delete(s.byID, id)
		s.mu.Unlock()
		return
	}
	r, err := decodeRecord(key, val)
	if err != nil {
		s.logger.Warn("ignoring a malformed join token in the store", "key", key, "err", err)
		return
	}
	s.mu.Lock()
	s.byID[id] = r
	s.mu.Unlock()
}

// lookup returns the record of id: the cached one, else the store's if
// the Persistence can read one key (and caches it).
func (s *Store) lookup(id string) (*record, bool) {
	s.mu.RLock()
	r, ok := s.byID[id]
	s.mu.RUnlock()
	if ok {
		return r, true
	}
	g, can := s.p.(blobGetter)
	if !can || !isLowerHex(id) {
		return nil, false
	}
	b, err := g.GetBlob(blobPrefix + id)
	if err != nil || b == nil {
		return nil, false
	}
	r, err = decodeRecord(blobPrefix+id, b)
	if err != nil {
		return nil, false
	}
	s.mu.Lock()
	if cur, ok := s.byID[id]; ok {
		r = cur
	} else {
		s.byID[id] = r
	}
	s.mu.Unlock()
	return r, true
}

// decodeRecord decodes and checks the token record stored under key.
func decodeRecord(key string, b []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("tokens: decoding %q: %w", key, err)
	}
	if r.ID != strings.TrimPrefix(key, blobPrefix) || len(r.SecretHash) != sha256.Size {
		return nil, fmt.Errorf("tokens: %q is not a valid token record", key)
	}
	return &r, nil
}
