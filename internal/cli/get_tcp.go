package cli

import (
	"fmt"
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
)

// tcpRouteColumns are the `weft get tcproute` columns: the parents (with
// their port) and the backends with their weights.
func tcpRouteColumns(o api.Object) []string {
	if o == nil {
		return []string{"PARENTS", "BACKENDS"}
	}
	r := o.(*gatewayv1.TCPRoute)
	var parents, backends []string
	for _, p := range r.Spec.ParentRefs {
		kind := "Gateway"
		if p.Kind != nil {
			kind = string(*p.Kind)
		}
		s := kind + "/" + string(p.Name)
		switch {
		case p.Port != nil:
			s += fmt.Sprintf(":%d", *p.Port)
		case p.SectionName != nil:
			s += "/" + string(*p.SectionName)
		}
		parents = append(parents, s)
	}
	for _, rule := range r.Spec.Rules {
		for _, b := range rule.BackendRefs {
			w := int32(1)
			if b.Weight != nil {
				w = *b.Weight
			}
			backends = append(backends, fmt.Sprintf("%s=%d", b.Name, w))
		}
	}
	return []string{getOr(strings.Join(parents, ","), "<none>"), getOr(strings.Join(backends, ","), "<none>")}
}
