package mesh

import (
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"weft.dev/weft/internal/api"
)

// ApplyConfig derives the next snapshot from the latest one with cfg (nil
// is an empty configuration) in place of its configuration, and returns it
// with what changed. Of the configuration a snapshot holds only the trust
// domain and the services that Service resources declare, so only the
// services whose Service resource was added, removed or changed are
// redefined: each becomes the declared service, the implicit one of its
// registered workloads, or nothing, and gets its endpoints from the
// indexes. The cost is one pass over the Service resources of both
// configurations plus the work on the services that changed.
func (b *Builder) ApplyConfig(cfg *api.Set) (*Snapshot, Changes) {
	if cfg == nil {
		cfg = &api.Set{}
	}
	prev := b.snap
	next := *prev
	next.Config = cfg
	b.snap = &next

	// decls maps the key of every service whose Service resource changed
	// to its (name, namespace) and its declaration in cfg, if any.
	type decl struct {
		nn  [2]string
		svc *corev1.Service
	}
	old, cur := api.Changed(prev.Config.Services, cfg.Services)
	if len(old)+len(cur) == 0 {
		return &next, Changes{}
	}
	decls := make(map[string]decl, len(old)+len(cur))
	for _, svc := range old {
		decls[serviceKey(svc.Name, svc.Namespace)] = decl{nn: [2]string{svc.Name, svc.Namespace}}
	}
	for _, svc := range cur {
		decls[serviceKey(svc.Name, svc.Namespace)] = decl{[2]string{svc.Name, svc.Namespace}, svc}
	}

	var ch Changes
	next.Services = maps.Clone(prev.Services)
	next.Endpoints = maps.Clone(prev.Endpoints)
	for key, d := range decls {
		before := prev.Services[key]
		var after *Service
		switch {
		case d.svc != nil:
			after = declaredService(d.svc)
		case b.implicit[d.nn] > 0:
			after = implicitService(d.nn[0], d.nn[1])
		}
		switch {
		case before == nil && after == nil:
			continue
		case before == nil:
			ch.Added = append(ch.Added, key)
		case after == nil:
			ch.Removed = append(ch.Removed, key)
			b.indexService(key, before, false)
			delete(next.Services, key)
			delete(next.Endpoints, key)
			continue
		case sameService(before, after):
			// E.g. only the resource's labels changed: nothing to
			// report, but the snapshot refers to the current resource.
			next.Services[key] = after
			continue
		default:
			ch.Redefined = append(ch.Redefined, key)
			b.indexService(key, before, false)
		}
		next.Services[key] = after
		b.indexService(key, after, true)
		if before == nil {
			next.Endpoints[key] = b.endpointsOf(after)
		} else if !maps.Equal(before.Selector, after.Selector) {
			if eps := b.endpointsOf(after); !slices.Equal(prev.Endpoints[key], eps) {
				next.Endpoints[key] = eps
				ch.Endpoints = append(ch.Endpoints, key)
			}
		}
	}
	slices.Sort(ch.Added)
	slices.Sort(ch.Removed)
	slices.Sort(ch.Redefined)
	slices.Sort(ch.Endpoints)
	if len(ch.Added)+len(ch.Removed) > 0 {
		removed := setOf(ch.Removed)
		next.Keys = merge(prev.Keys, func(k string) bool { return !removed[k] }, ch.Added, strings.Compare)
	}
	return &next, ch
}
