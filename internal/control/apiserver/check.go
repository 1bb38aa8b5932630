package apiserver

import (
	"fmt"
	"strings"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/control/xdsgen"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// check decides whether objs may be applied: each is supported and valid,
// a MeshConfig keeps the CA's trust domain, and the configuration they make
// with what is stored generates only xDS resources the proxies compile —
// checked with the proxies' own validation, weftv1.ValidateService, so an
// accepted configuration is never NACKed. Errors name the document, the
// object and the field.
func (h *handler) check(objs []api.Located) error {
	for _, o := range objs {
		if err := api.CheckSupported(o.Object); err != nil {
			return fmt.Errorf("%s: %w", o.Where, err)
		}
		if err := api.Validate(o.Object); err != nil {
			return fmt.Errorf("%s: %w", o.Where, err)
		}
		if err := CheckTrustDomain(o.Object, h.opts.TrustDomain); err != nil {
			return fmt.Errorf("%s: %w", o.Where, err)
		}
	}
	return h.checkCompiles(objs)
}

// CheckTrustDomain refuses a MeshConfig o whose trust domain is not td,
// the CA's: the trust domain is in the CA's root and in every certificate
// it issued, so it cannot change under a running mesh. An empty one is
// set to td. Other kinds, and an empty td, pass. The Kubernetes store
// applies it to what it reads (kubestore.Store.SetCheck), for objects
// written around the validating webhook.
func CheckTrustDomain(o api.Object, td string) error {
	mc, ok := o.(*api.MeshConfig)
	if !ok || td == "" {
		return nil
	}
	switch mc.Spec.TrustDomain {
	case "":
		mc.Spec.TrustDomain = td
	case td:
	default:
		return &api.InvalidError{Kind: api.KindMeshConfig, Name: mc.Name, Errors: []api.FieldError{{
			Field: "spec.trustDomain",
			Detail: fmt.Sprintf("is %q, but the control plane's CA was created for trust domain %q, which is in every certificate it issued; "+
				"the trust domain cannot change after the CA exists (leave it empty or set %q; a new trust domain needs a new control plane data dir started with --trust-domain)",
				mc.Spec.TrustDomain, td, td),
		}}}
	}
	return nil
}

// checkCompiles generates the Service resources that the candidate
// configuration — the stored one with objs applied — changes, over the
// current workloads, and validates each as a proxy would.
func (h *handler) checkCompiles(objs []api.Located) error {
	cur, err := h.st.Set()
	if err != nil {
		return fmt.Errorf("reading stored configuration: %w", err)
	}
	cand, err := candidate(cur, objs)
	if err != nil {
		return err
	}
	var workloads []*mesh.Workload
	if snap := h.snapshot(); snap != nil {
		workloads = snap.Workloads
	}
	if err := checkGateways(objs, cand); err != nil { // gateway_status.go
		return err
	}
	snap := mesh.Build(cand, workloads)
	for _, o := range objs {
		if x, ok := o.Object.(*api.ExternalService); ok {
			if err := checkExternalHosts(x, snap); err != nil { // egress.go
				return fmt.Errorf("%s: %w", o.Where, err)
			}
		}
	}
	routing, keys, all := xdsgen.NewRouting(cur).Update(cand)
	if all {
		keys = snap.Keys
	}
	for _, o := range objs {
		if k := api.KeyOf(o.Object); k.Kind == api.KindService {
			keys = append(keys, weftv1.ResourceName(k.Name, k.Namespace))
		}
	}
	for _, key := range keys {
		s := snap.Services[key]
		if s == nil {
			continue // a route to a missing parent generates nothing
		}
		res := routing.Service(s)
		if err := weftv1.ValidateService(res); err != nil {
			return attribute(objs, key, res, err)
		}
	}
	return nil
}

// candidate is cur with objs applied.
func candidate(cur *api.Set, objs []api.Located) (*api.Set, error) {
	byKey := map[api.Key]api.Object{}
	var order []api.Key
	add := func(o api.Object) {
		k := api.KeyOf(o)
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = o
	}
	for _, o := range setObjects(cur) {
		add(o)
	}
	for _, o := range objs {
		add(o.Object)
	}
	all := make([]api.Object, len(order))
	for i, k := range order {
		all[i] = byKey[k]
	}
	set, err := api.NewSet(all)
	if err != nil {
		return nil, fmt.Errorf("the stored configuration with these objects: %w", err)
	}
	return set, nil
}

// setObjects lists every object of s.
func setObjects(s *api.Set) []api.Object {
	var out []api.Object
	for _, o := range s.Services {
		out = append(out, o)
	}
	for _, o := range s.HTTPRoutes {
		out = append(out, o)
	}
	for _, o := range s.GRPCRoutes {
		out = append(out, o)
	}
	if s.MeshConfig != nil {
		out = append(out, s.MeshConfig)
	}
	for _, o := range s.DestinationPolicies {
		out = append(out, o)
	}
	for _, o := range s.AuthorizationPolicies {
		out = append(out, o)
	}
	for _, o := range s.FaultInjections {
		out = append(out, o)
	}
	for _, o := range s.TCPRoutes {
		out = append(out, o)
	}
	for _, o := range s.RequestAuthentications {
		out = append(out, o)
	}
	for _, o := range s.ExternalServices {
		out = append(out, o)
	}
	return out
}

// attribute turns the failure to validate the Service resource res (of
// service key) into an error naming the applied object it comes from: the
// route of the rule whose compiled route is wrong, or the Service.
func attribute(objs []api.Located, key string, res *weftv1.Service, err error) error {
	detail := fmt.Sprintf("generates Service resource %q, which proxies would reject: %v", key, err)
	var n int
	if _, serr := fmt.Sscanf(err.Error(), "routes[%d]:", &n); serr == nil && n >= 0 && n < len(res.Routes) {
		// Route names are "<namespace>/<route>/<rule index>".
		parts := strings.Split(res.Routes[n].Name, "/")
		if len(parts) == 3 {
			for _, o := range objs {
				k := api.KeyOf(o.Object)
				if (k.Kind == api.KindHTTPRoute || k.Kind == api.KindGRPCRoute) && k.Namespace == parts[0] && k.Name == parts[1] {
					return fmt.Errorf("%s: %w", o.Where, &api.InvalidError{Kind: k.Kind, Name: k.Name, Errors: []api.FieldError{{Field: "spec.rules[" + parts[2] + "]", Detail: detail}}})
				}
			}
		}
	}
	for _, o := range objs {
		if k := api.KeyOf(o.Object); k.Kind == api.KindService && weftv1.ResourceName(k.Name, k.Namespace) == key {
			return fmt.Errorf("%s: %w", o.Where, &api.InvalidError{Kind: k.Kind, Name: k.Name, Errors: []api.FieldError{{Field: "spec", Detail: detail}}})
		}
	}
	return &api.InvalidError{Kind: "configuration", Errors: []api.FieldError{{Field: "spec", Detail: detail}}}
}

func (h *handler) snapshot() *mesh.Snapshot {
	if h.opts.Snapshot == nil {
		return nil
	}
	return h.opts.Snapshot()
}
