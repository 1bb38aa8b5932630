package xdsgen

import (
	"maps"

	corev1 "k8s.io/api/core/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// mtlsModes returns the mutual-TLS mode of every Service whose
// weft.dev/mtls-mode annotation sets one, by service key, and the
// MeshConfig's mode (STRICT without one) for every other service.
func mtlsModes(cfg *api.Set) (map[string]weftv1.MTLSMode, weftv1.MTLSMode) {
	def := weftv1.MTLSMode_MTLS_STRICT
	if mc := cfg.MeshConfig; mc != nil && mc.Spec.MTLS != nil {
		def = mtlsFromString(mc.Spec.MTLS.Mode, def)
	}
	out := map[string]weftv1.MTLSMode{}
	for _, s := range cfg.Services {
		if m, ok := serviceMTLS(s, def); ok {
			out[weftv1.ResourceName(s.Name, s.Namespace)] = m
		}
	}
	return out, def
}

// serviceMTLS is the mode the annotation of s sets, if it sets one.
func serviceMTLS(s *corev1.Service, def weftv1.MTLSMode) (weftv1.MTLSMode, bool) {
	v, ok := s.Annotations[api.AnnotationMTLSMode]
	if !ok {
		return 0, false
	}
	return mtlsFromString(v, def), true
}

// mtlsFromString maps an API mode (validated by the API) to its xDS value.
func mtlsFromString(s string, def weftv1.MTLSMode) weftv1.MTLSMode {
	switch s {
	case api.MTLSStrict:
		return weftv1.MTLSMode_MTLS_STRICT
	case api.MTLSPermissive:
		return weftv1.MTLSMode_MTLS_PERMISSIVE
	}
	return def
}

// mtlsMode is the mode of the service with the given key.
func (r *Routing) mtlsMode(key string) weftv1.MTLSMode {
	if m, ok := r.modes[key]; ok {
		return m
	}
	return r.defMode
}

// updateMTLS sets n.modes from cfg for the Services that were added,
// removed or changed between r's configuration and cfg, and adds the keys
// of those whose mode changed to affected. The mesh.Builder does not report
// a Service whose annotations alone changed, so this is where an annotation
// edit becomes a changed Service resource.
func (r *Routing) updateMTLS(n *Routing, cfg *api.Set, affected map[serviceRef]bool) {
	old, cur := api.Changed(r.cfg.Services, cfg.Services)
	if len(old)+len(cur) == 0 {
		return
	}
	n.modes = maps.Clone(r.modes)
	changed := map[serviceRef]bool{}
	for _, s := range old {
		ref := serviceRef{s.Name, s.Namespace}
		changed[ref] = true
		delete(n.modes, ref.key())
	}
	for _, s := range cur {
		if m, ok := serviceMTLS(s, n.defMode); ok {
			n.modes[weftv1.ResourceName(s.Name, s.Namespace)] = m
		}
		changed[serviceRef{s.Name, s.Namespace}] = true
	}
	for ref := range changed {
		if r.mtlsMode(ref.key()) != n.mtlsMode(ref.key()) {
			affected[ref] = true
		}
	}
}
