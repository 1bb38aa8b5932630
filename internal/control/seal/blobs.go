package seal

import (
	"fmt"
	"strings"
)

// Store is the part of the control plane's store that Blobs wraps.
type Store interface {
	GetBlob(key string) ([]byte, error)
	PutBlob(key string, val []byte) error
	// CreateBlob stores val under key only if there is none and returns
	// what is stored afterwards (store.Shared).
	CreateBlob(key string, val []byte) ([]byte, error)
}

// Blobs seals the blobs under Prefix on their way into Store and opens
// them on their way out; other keys pass through. The CA keeps its root
// (certificate and key) through it when several replicas share the store.
type Blobs struct {
	Store  Store
	Sealer *Sealer
	// Prefix selects the sealed keys ("ca/").
	Prefix string
}

func (b *Blobs) sealed(key string) bool { return strings.HasPrefix(key, b.Prefix) }

// GetBlob returns the opened value under key, or nil, nil if there is
// none. An empty value (a cleared rotation) passes as it is.
func (b *Blobs) GetBlob(key string) ([]byte, error) {
	v, err := b.Store.GetBlob(key)
	if err != nil || v == nil || len(v) == 0 || !b.sealed(key) {
		return v, err
	}
	return b.Sealer.Open(key, v)
}

// PutBlob seals val and stores it under key.
func (b *Blobs) PutBlob(key string, val []byte) error {
	if !b.sealed(key) || len(val) == 0 {
		return b.Store.PutBlob(key, val)
	}
	s, err := b.Sealer.Seal(key, val)
	if err != nil {
		return err
	}
	return b.Store.PutBlob(key, s)
}

// CreateBlob seals val and stores it under key if there is none; it
// returns the opened value stored afterwards (another replica's if it got
// there first).
func (b *Blobs) CreateBlob(key string, val []byte) ([]byte, error) {
	if !b.sealed(key) {
		return b.Store.CreateBlob(key, val)
	}
	s, err := b.Sealer.Seal(key, val)
	if err != nil {
		return nil, err
	}
	got, err := b.Store.CreateBlob(key, s)
	if err != nil {
		return nil, fmt.Errorf("creating %q: %w", key, err)
	}
	return b.Sealer.Open(key, got)
}
