package apiserver

import (
	"fmt"
	"strings"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
)

// checkExternalHosts refuses an ExternalService host that names a mesh
// service of snap ("orders", "orders.shop", "orders.shop.svc...") or any
// "<name>.<namespace>" of a namespace with services: sidecars resolve
// those in the mesh (config.Config.MeshName), so declaring them as external
// is a mistake that must not pass silently.
func checkExternalHosts(x *api.ExternalService, snap *mesh.Snapshot) error {
	var errs []api.FieldError
	namespaces := map[string]bool{}
	for _, s := range snap.Services {
		namespaces[s.Namespace] = true
	}
	for i, h := range x.Spec.Hosts {
		h = strings.ToLower(h)
		if name, ns, ok := strings.Cut(h, "."); ok && name != "*" && !strings.Contains(ns, ".") && namespaces[ns] {
			errs = append(errs, api.FieldError{
				Field:  fmt.Sprintf("spec.hosts[%d]", i),
				Detail: fmt.Sprintf("%q is a name in mesh namespace %s, which sidecars resolve as a mesh service and never send outside", h, ns),
			})
			continue
		}
		for _, key := range snap.Keys {
			s := snap.Services[key]
			if h == s.Name || h == key || strings.HasPrefix(h, key+".") {
				errs = append(errs, api.FieldError{
					Field:  fmt.Sprintf("spec.hosts[%d]", i),
					Detail: fmt.Sprintf("%q is mesh service %s: call it by name, an ExternalService declares hosts outside the mesh", h, key),
				})
				break
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &api.InvalidError{Kind: api.KindExternalService, Name: x.Name, Errors: errs}
}
