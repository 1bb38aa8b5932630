package xds

import (
	"strconv"
	"sync"

	"weft.dev/weft/internal/xdsmeta"
)

// revisionWindow bounds how many cache versions each type remembers the
// store revision of: a response names the cache's current version, so
// only the latest few can still be on their way to a proxy.
const revisionWindow = 256

// revisions names the store revision behind every version of the
// server's resource caches, so that the system version of each response
// tells the proxy (and proxy-status) which configuration it came from:
// "r<store revision>-<cache version>" (xdsmeta.FormatVersion). Each cache
// is updated by the update loop only, one UpdateResources call per
// version, so the loop knows the version each call creates.
type revisions struct {
	mu     sync.Mutex
	byType map[string]*typeRevisions
	// current is the store revision of the latest configuration the
	// update loop published.
	current uint64
}

type typeRevisions struct {
	// version is the cache's current version.
	version uint64
	// rev maps a recent cache version to its store revision.
	rev map[uint64]uint64
}

func newRevisions() *revisions { return &revisions{byType: map[string]*typeRevisions{}} }

// setCurrent records the store revision of the configuration being
// published.
func (r *revisions) setCurrent(rev uint64) {
	r.mu.Lock()
	r.current = rev
	r.mu.Unlock()
}

// Current is the store revision of the configuration last published.
func (r *revisions) Current() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current
}

// next records that the cache of typeURL is about to take its next
// version, built from the current store revision. Call it just before
// each UpdateResources.
func (r *revisions) next(typeURL string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.byType[typeURL]
	if t == nil {
		t = &typeRevisions{rev: map[uint64]uint64{}}
		r.byType[typeURL] = t
	}
	t.version++
	t.rev[t.version] = r.current
	delete(t.rev, t.version-revisionWindow)
}

// name turns the cache version a response of typeURL carries into its
// system version; a version it does not know (the empty cache's "0", or
// one too old) is left as it is.
func (r *revisions) name(typeURL, cacheVersion string) string {
	n, err := strconv.ParseUint(cacheVersion, 10, 64)
	if err != nil {
		return cacheVersion
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.byType[typeURL]
	if t == nil {
		return cacheVersion
	}
	rev, ok := t.rev[n]
	if !ok {
		return cacheVersion
	}
	return xdsmeta.FormatVersion(rev, n)
}
