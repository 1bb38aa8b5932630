package store

import "context"

// Shared is implemented by stores that several control-plane replicas use
// at once (etcd, Kubernetes). It lets a replica publish state that lives
// only as long as the replica does, and follow what the other replicas
// publish: the workload registry uses it so that a proxy connected to any
// replica sees the workloads connected to every replica. The embedded bbolt
// store has a single replica and does not implement it.
type Shared interface {
	// ReplicaID names this replica, unique among those sharing the store.
	ReplicaID() string
	// PutLeased stores val under key for as long as this replica is alive:
	// if the replica stops (or is cut off from the store) the key
	// disappears within the store's lease TTL.
	PutLeased(ctx context.Context, key string, val []byte) error
	// DeleteLeased deletes a key stored with PutLeased.
	DeleteLeased(ctx context.Context, key string) error
	// WatchBlobs calls fn once per key under prefix with its current value,
	// then once per change (val is nil for a deletion), in order, until
	// ctx ends or the watch fails; it returns the reason it stopped. fn
	// runs on the watch's goroutine and must not block for long.
	WatchBlobs(ctx context.Context, prefix string, fn func(key string, val []byte)) error
	// CreateBlob stores val under key only if the key does not exist and
	// returns the value that is stored afterwards: val if it won, the
	// existing value if another replica got there first. Replicas racing
	// to create a shared secret (the CA root) all end up with one.
	CreateBlob(key string, val []byte) ([]byte, error)
}
