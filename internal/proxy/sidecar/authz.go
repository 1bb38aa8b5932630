package sidecar

import (
	"maps"

	"weft.dev/weft/internal/proxy/authz"
	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/xdsapi/weftv1"
	"weft.dev/weft/internal/xdsmeta"
)

// authzView is the inbound's view of the AuthorizationPolicies of w's
// service, selected by w's labels (those the control plane gives the
// workload: its extra labels, app=<service> and version=<version>).
func authzView(p config.Provider, w xdsmeta.Workload) *authz.View {
	labels := maps.Clone(w.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels["app"] = w.Service
	if w.Version != "" {
		labels["version"] = w.Version
	}
	key := weftv1.ResourceName(w.Service, w.Namespace)
	return authz.NewView(func() *authz.Set {
		if s := p.Load().Services[key]; s != nil {
			return s.Authz
		}
		return nil
	}, labels)
}
