package mesh

import (
	"maps"
	"slices"
	"strings"

	"weft.dev/weft/internal/api"
)

// Changes says which services differ between two consecutive snapshots.
type Changes struct {
	// Added and Removed are the sorted keys of the services that appeared
	// and disappeared.
	Added, Removed []string
	// Redefined are the sorted keys of the services present in both
	// snapshots whose definition (selector, ports, declared or implicit)
	// changed; only a configuration change redefines a service.
	Redefined []string
	// Endpoints are the sorted keys of the services present in both
	// snapshots whose endpoints changed.
	Endpoints []string
}

// Diff compares two snapshots. Services are compared by value; endpoint
// lists by workload pointer: the registry replaces a workload whenever it
// changes, so the same pointers in the same order are the same endpoints.
// Diff costs time proportional to the whole mesh; Builder.Apply and
// Builder.ApplyConfig report the same Changes in time proportional to the
// change.
func Diff(prev, next *Snapshot) Changes {
	var c Changes
	for _, key := range next.Keys {
		old, ok := prev.Services[key]
		if !ok {
			c.Added = append(c.Added, key)
			continue
		}
		if !sameService(old, next.Services[key]) {
			c.Redefined = append(c.Redefined, key)
		}
		if !slices.Equal(prev.Endpoints[key], next.Endpoints[key]) {
			c.Endpoints = append(c.Endpoints, key)
		}
	}
	for _, key := range prev.Keys {
		if _, ok := next.Services[key]; !ok {
			c.Removed = append(c.Removed, key)
		}
	}
	return c
}

// Builder derives each snapshot from the previous one and what changed
// since — the workloads (Apply) or the configuration (ApplyConfig) — in time
// proportional to the change instead of to the mesh, and keeps the indexes
// this needs. Build stays the reference: Apply and ApplyConfig return what
// Build would return for the same configuration and workloads.
//
// A Builder is owned by one goroutine (the xDS update loop). The snapshots it
// returns are immutable and may be shared: Apply and ApplyConfig copy every
// map and slice they change and share the rest with the previous snapshot.
type Builder struct {
	snap *Snapshot
	// byID holds the workloads of snap by ID.
	byID map[string]*Workload
	// byApp indexes the workloads that have an inbound address by
	// (namespace, app label), in no particular order; byNS indexes them by
	// namespace and ID.
	byApp map[[2]string][]*Workload
	byNS  map[string]map[string]*Workload
	// implicit counts, by (name, namespace), the workloads whose --service
	// names that service.
	implicit map[[2]string]int
	// selectByApp holds the keys of the services whose selector names an
	// app, by (namespace, app); selectByNS the keys of the other services
	// with a non-empty selector, by namespace. A workload can be selected
	// only by the services found there.
	selectByApp map[[2]string]map[string]bool
	selectByNS  map[string]map[string]bool
}

// NewBuilder builds the first snapshot of cfg and workloads with Build and
// indexes it.
func NewBuilder(cfg *api.Set, workloads []*Workload) *Builder {
	snap := Build(cfg, workloads)
	b := &Builder{
		snap:        snap,
		byID:        make(map[string]*Workload, len(snap.Workloads)),
		byApp:       make(map[[2]string][]*Workload, len(snap.Services)),
		byNS:        map[string]map[string]*Workload{},
		implicit:    make(map[[2]string]int, len(snap.Services)),
		selectByApp: map[[2]string]map[string]bool{},
		selectByNS:  map[string]map[string]bool{},
	}
	for _, w := range b.snap.Workloads {
		b.addWorkload(w)
	}
	for key, s := range b.snap.Services {
		b.indexService(key, s, true)
	}
	return b
}

// Snapshot is the latest snapshot.
func (b *Builder) Snapshot() *Snapshot { return b.snap }

// change is one workload replaced (old and cur set), added (old nil) or
// removed (cur nil).
type change struct {
	id       string
	old, cur *Workload
}

// Apply derives the next snapshot from the latest one with changed applied:
// by workload ID, the workload's current version, or nil for a workload
// that left. It returns the snapshot and what changed. A change whose
// workload is already current is ignored, so changes that a snapshot
// already includes can be applied again harmlessly.
func (b *Builder) Apply(changed map[string]*Workload) (*Snapshot, Changes) {
	prev := b.snap
	var changes []change
	// touched holds the (name, namespace) of the implicit services whose
	// workload count changed.
	touched := map[[2]string]bool{}
	for id, cur := range changed {
		old := b.byID[id]
		if old == cur {
			continue
		}
		if old != nil {
			b.removeWorkload(old)
			touched[implicitKey(old)] = true
		}
		if cur != nil {
			b.addWorkload(cur)
			touched[implicitKey(cur)] = true
		}
		changes = append(changes, change{id, old, cur})
	}
	if len(changes) == 0 {
		return prev, Changes{}
	}
	slices.SortFunc(changes, func(a, b change) int { return strings.Compare(a.id, b.id) })

	next := *prev
	next.Workloads = patchWorkloads(prev.Workloads, changes)
	// endpoints copies the endpoint map on first use.
	cloned := false
	endpoints := func() map[string][]*Workload {
		if !cloned {
			next.Endpoints, cloned = maps.Clone(prev.Endpoints), true
		}
		return next.Endpoints
	}

	ch := b.applyServices(prev, &next, touched, endpoints)
	b.applyEndpoints(prev, &next, changes, &ch, endpoints)
	b.snap = &next
	return &next, ch
}

// applyServices adds and removes the implicit services that gained their
// first workload or lost their last one, and gives new ones their
// endpoints.
func (b *Builder) applyServices(prev, next *Snapshot, touched map[[2]string]bool, endpoints func() map[string][]*Workload) Changes {
	var ch Changes
	// names maps the key of each touched service to its (name, namespace).
	names := map[string][2]string{}
	for nn := range touched {
		key := serviceKey(nn[0], nn[1])
		s, before := prev.Services[key]
		after := b.implicit[nn] > 0 || (before && s.Declared)
		names[key] = nn
		switch {
		case !before && after:
			ch.Added = append(ch.Added, key)
		case before && !after:
			ch.Removed = append(ch.Removed, key)
		}
	}
	if len(ch.Added) == 0 && len(ch.Removed) == 0 {
		return ch
	}
	slices.Sort(ch.Added)
	slices.Sort(ch.Removed)
	next.Services = maps.Clone(prev.Services)
	eps := endpoints()
	for _, key := range ch.Removed {
		b.indexService(key, next.Services[key], false)
		delete(next.Services, key)
		delete(eps, key)
	}
	for _, key := range ch.Added {
		nn := names[key]
		s := implicitService(nn[0], nn[1])
		next.Services[key] = s
		b.indexService(key, s, true)
		eps[key] = b.endpointsOf(s)
	}
	removed := setOf(ch.Removed)
	next.Keys = merge(prev.Keys, func(k string) bool { return !removed[k] }, ch.Added, strings.Compare)
	return ch
}

// applyEndpoints updates the endpoints of the services, other than new
// ones, that selected a changed workload before or select it now.
func (b *Builder) applyEndpoints(prev, next *Snapshot, changes []change, ch *Changes, endpoints func() map[string][]*Workload) {
	added := setOf(ch.Added)
	ids := make(map[string]bool, len(changes))
	// adds holds, by service key, the current workloads the service selects.
	adds := map[string][]*Workload{}
	for _, c := range changes {
		ids[c.id] = true
		if c.old != nil {
			// The services that selected the old version lose it; the
			// key is recorded even if nothing replaces it.
			b.selecting(next.Services, c.old, func(key string) {
				if _, ok := adds[key]; !ok && !added[key] {
					adds[key] = nil
				}
			})
		}
		if c.cur != nil {
			b.selecting(next.Services, c.cur, func(key string) {
				if !added[key] {
					adds[key] = append(adds[key], c.cur)
				}
			})
		}
	}
	for key, add := range adds {
		slices.SortFunc(add, endpointOrder)
		old := prev.Endpoints[key]
		list := merge(old, func(w *Workload) bool { return !ids[w.ID] }, add, endpointOrder)
		if !slices.Equal(old, list) {
			endpoints()[key] = list
			ch.Endpoints = append(ch.Endpoints, key)
		}
	}
	slices.Sort(ch.Endpoints)
}

// selecting calls f with the key of every service of services that
// selects w.
func (b *Builder) selecting(services map[string]*Service, w *Workload, f func(key string)) {
	if w.Address == "" {
		return
	}
	check := func(keys map[string]bool) {
		for key := range keys {
			if selects(services[key].Selector, w.Labels) {
				f(key)
			}
		}
	}
	if app, ok := w.Labels["app"]; ok {
		check(b.selectByApp[[2]string{w.Namespace, app}])
	}
	check(b.selectByNS[w.Namespace])
}

// endpointsOf selects the endpoints of s from the indexes, as Build does.
func (b *Builder) endpointsOf(s *Service) []*Workload {
	var eps []*Workload
	add := func(w *Workload) {
		if selects(s.Selector, w.Labels) {
			eps = append(eps, w)
		}
	}
	if app, ok := s.Selector["app"]; ok {
		for _, w := range b.byApp[[2]string{s.Namespace, app}] {
			add(w)
		}
	} else if len(s.Selector) > 0 {
		for _, w := range b.byNS[s.Namespace] {
			add(w)
		}
	}
	slices.SortFunc(eps, endpointOrder)
	return eps
}

func (b *Builder) addWorkload(w *Workload) {
	b.byID[w.ID] = w
	b.implicit[implicitKey(w)]++
	if k, ok := appIndex(w); ok {
		b.byApp[k] = append(b.byApp[k], w)
	}
	if w.Address != "" {
		if b.byNS[w.Namespace] == nil {
			b.byNS[w.Namespace] = map[string]*Workload{}
		}
		b.byNS[w.Namespace][w.ID] = w
	}
}

func (b *Builder) removeWorkload(w *Workload) {
	delete(b.byID, w.ID)
	key := implicitKey(w)
	if b.implicit[key]--; b.implicit[key] <= 0 {
		delete(b.implicit, key)
	}
	if w.Address != "" {
		delete(b.byNS[w.Namespace], w.ID)
		if len(b.byNS[w.Namespace]) == 0 {
			delete(b.byNS, w.Namespace)
		}
	}
	if k, ok := appIndex(w); ok {
		// The slice is the builder's own, never handed out: remove in
		// place, swapping the last element into the hole.
		ws := b.byApp[k]
		if i := slices.Index(ws, w); i >= 0 {
			ws[i] = ws[len(ws)-1]
			ws[len(ws)-1] = nil
			ws = ws[:len(ws)-1]
		}
		if len(ws) == 0 {
			delete(b.byApp, k)
		} else {
			b.byApp[k] = ws
		}
	}
}

// implicitKey is the (name, namespace) of the implicit service of w.
func implicitKey(w *Workload) [2]string { return [2]string{w.Service, w.Namespace} }

// appIndex is the byApp key of w, if it has an inbound address and an app
// label.
func appIndex(w *Workload) ([2]string, bool) {
	app, ok := w.Labels["app"]
	return [2]string{w.Namespace, app}, ok && w.Address != ""
}

// indexService adds (or, when add is false, removes) service s under key
// in the selector indexes.
func (b *Builder) indexService(key string, s *Service, add bool) {
	if len(s.Selector) == 0 {
		return // selects nothing
	}
	if app, ok := s.Selector["app"]; ok {
		indexKey(b.selectByApp, [2]string{s.Namespace, app}, key, add)
	} else {
		indexKey(b.selectByNS, s.Namespace, key, add)
	}
}

func indexKey[K comparable](index map[K]map[string]bool, k K, key string, add bool) {
	if add {
		if index[k] == nil {
			index[k] = map[string]bool{}
		}
		index[k][key] = true
		return
	}
	delete(index[k], key)
	if len(index[k]) == 0 {
		delete(index, k)
	}
}

// endpointOrder orders endpoints as Build does: by address, then ID.
func endpointOrder(a, b *Workload) int {
	if c := strings.Compare(a.Address, b.Address); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// patchWorkloads returns ws, sorted by ID, with changes (sorted by ID)
// applied. It copies the unchanged runs of ws in bulk, so it costs one copy
// of the slice plus a binary search per change.
func patchWorkloads(ws []*Workload, changes []change) []*Workload {
	out := make([]*Workload, 0, len(ws)+len(changes))
	start := 0
	for _, c := range changes {
		i, found := slices.BinarySearchFunc(ws[start:], c.id, func(w *Workload, id string) int { return strings.Compare(w.ID, id) })
		i += start
		out = append(out, ws[start:i]...)
		if c.cur != nil {
			out = append(out, c.cur)
		}
		start = i
		if found {
			start++
		}
	}
	out = append(out, ws[start:]...)
	if len(out) == 0 {
		return nil
	}
	return out
}

// merge returns the elements of base that keep accepts with add merged in;
// base and add are sorted by cmp. An empty result is nil, as in Build.
func merge[T any](base []T, keep func(T) bool, add []T, cmp func(a, b T) int) []T {
	out := make([]T, 0, len(base)+len(add))
	i := 0
	for _, x := range base {
		if !keep(x) {
			continue
		}
		for i < len(add) && cmp(add[i], x) < 0 {
			out = append(out, add[i])
			i++
		}
		out = append(out, x)
	}
	out = append(out, add[i:]...)
	if len(out) == 0 {
		return nil
	}
	return out
}

func setOf(keys []string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}
