package controlplane

import "weft.dev/weft/internal/control/store"

// RevisionStatus is GET /api/v1/revision: where the store and this
// replica's xDS server are, for `weft proxy-status`.
type RevisionStatus struct {
	// Store is the store's current revision.
	Store uint64 `json:"store"`
	// Served is the store revision of the configuration this replica
	// last published to its proxies: a proxy whose revision is lower has
	// not caught up yet.
	Served uint64 `json:"served"`
	// Replica is this replica's ID when the store is shared, else "".
	Replica string `json:"replica,omitempty"`
}

// replicaID is st's replica ID if several replicas share it, else "".
func replicaID(st store.Store) string {
	if sh, ok := st.(store.Shared); ok {
		return sh.ReplicaID()
	}
	return ""
}
