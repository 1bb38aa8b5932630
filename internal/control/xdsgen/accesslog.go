package xdsgen

import (
	corev1 "k8s.io/api/core/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// observability is what Service resources take from the configuration
// for access logs, tap and tracing: each service's access log mode (its
// weft.dev/access-log annotation, else MeshConfig spec.accessLog.mode,
// else off), whether it opted in to tap bodies (weft.dev/tap-bodies), and
// the mesh's trace sampling and collector (MeshConfig spec.tracing.sampling
// and otlpEndpoint, in every Service resource).
type observability struct {
	def      weftv1.AccessLogMode
	sampling *float64
	endpoint string                          // MeshConfig spec.tracing.otlpEndpoint
	settings map[string]serviceObservability // by service key, for annotated Services
}

type serviceObservability struct {
	mode      weftv1.AccessLogMode
	tapBodies bool
}

// compileObservability reads cfg's MeshConfig and Service annotations.
func compileObservability(cfg *api.Set) observability {
	o := observability{def: weftv1.AccessLogMode_ACCESS_LOG_OFF, settings: map[string]serviceObservability{}}
	if mc := cfg.MeshConfig; mc != nil && mc.Spec.AccessLog != nil {
		o.def = accessLogFromString(mc.Spec.AccessLog.Mode, o.def)
	}
	if mc := cfg.MeshConfig; mc != nil && mc.Spec.Tracing != nil {
		o.sampling, o.endpoint = mc.Spec.Tracing.Sampling, mc.Spec.Tracing.OTLPEndpoint
	}
	for _, s := range cfg.Services {
		if so, ok := o.service(s); ok {
			o.settings[weftv1.ResourceName(s.Name, s.Namespace)] = so
		}
	}
	return o
}

// service is what the annotations of s set, if they set anything.
func (o observability) service(s *corev1.Service) (serviceObservability, bool) {
	mode, hasMode := s.Annotations[api.AnnotationAccessLog]
	bodies, hasBodies := s.Annotations[api.AnnotationTapBodies]
	if !hasMode && !hasBodies {
		return serviceObservability{}, false
	}
	return serviceObservability{mode: accessLogFromString(mode, o.def), tapBodies: hasBodies && bodies == "true"}, true
}

// accessLogFromString maps an API mode (validated by the API) to its xDS
// value; "" is def.
func accessLogFromString(s string, def weftv1.AccessLogMode) weftv1.AccessLogMode {
	switch s {
	case api.AccessLogOff:
		return weftv1.AccessLogMode_ACCESS_LOG_OFF
	case api.AccessLogOn:
		return weftv1.AccessLogMode_ACCESS_LOG_ON
	case api.AccessLogErrors:
		return weftv1.AccessLogMode_ACCESS_LOG_ERRORS
	}
	return def
}

// of returns the settings of the service with the given key.
func (o observability) of(key string) serviceObservability {
	if so, ok := o.settings[key]; ok {
		return so
	}
	return serviceObservability{mode: o.def}
}

// apply sets the observability fields of svc, the resource of key.
func (o observability) apply(svc *weftv1.Service, key string) {
	so := o.of(key)
	svc.AccessLog, svc.TapBodies, svc.TraceSampling, svc.TraceOtlpEndpoint = so.mode, so.tapBodies, o.sampling, o.endpoint
}

// updateObservability sets n.obs from cfg for the Services that were
// added, removed or changed between r's configuration and cfg, and adds
// those whose settings changed to affected (like updateMTLS: an
// annotation edit alone is not a mesh change).
func (r *Routing) updateObservability(n *Routing, cfg *api.Set, affected map[serviceRef]bool) {
	old, cur := api.Changed(r.cfg.Services, cfg.Services)
	if len(old)+len(cur) == 0 {
		return
	}
	n.obs = observability{def: r.obs.def, sampling: r.obs.sampling, endpoint: r.obs.endpoint, settings: make(map[string]serviceObservability, len(r.obs.settings))}
	for k, v := range r.obs.settings {
		n.obs.settings[k] = v
	}
	changed := map[serviceRef]bool{}
	for _, s := range old {
		ref := serviceRef{s.Name, s.Namespace}
		changed[ref] = true
		delete(n.obs.settings, ref.key())
	}
	for _, s := range cur {
		if so, ok := n.obs.service(s); ok {
			n.obs.settings[weftv1.ResourceName(s.Name, s.Namespace)] = so
		}
		changed[serviceRef{s.Name, s.Namespace}] = true
	}
	for ref := range changed {
		if r.obs.of(ref.key()) != n.obs.of(ref.key()) {
			affected[ref] = true
		}
	}
}
