package cli

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
)

// gatewayColumns are the `weft get` columns of Gateways (listeners and
// whether a gateway proxy serves them), TLS Secrets (never their data),
// TLSRoutes and TCPRoutes (parents).
func gatewayColumns(kind string, o api.Object) []string {
	switch kind {
	case api.KindGateway:
		if o == nil {
			return []string{"CLASS", "LISTENERS", "PROGRAMMED"}
		}
		g := o.(*gatewayv1.Gateway)
		var ls []string
		for _, l := range g.Spec.Listeners {
			ls = append(ls, fmt.Sprintf("%s/%s:%d", l.Name, l.Protocol, l.Port))
		}
		programmed := "Unknown"
		if c := meta.FindStatusCondition(g.Status.Conditions, string(gatewayv1.GatewayConditionProgrammed)); c != nil {
			programmed = string(c.Status)
		}
		return []string{string(g.Spec.GatewayClassName), getOr(strings.Join(ls, ","), "<none>"), programmed}
	case api.KindSecret:
		if o == nil {
			return []string{"TYPE", "DATA"}
		}
		s := o.(*corev1.Secret)
		return []string{string(s.Type), fmt.Sprint(len(s.Data))}
	}
	if o == nil {
		return []string{"PARENTS"}
	}
	var refs []gatewayv1.ParentReference
	switch r := o.(type) {
	case *gatewayv1.TLSRoute:
		refs = r.Spec.ParentRefs
	case *gatewayv1.TCPRoute:
		refs = r.Spec.ParentRefs
	}
	var parents []string
	for _, p := range refs {
		s := "Gateway/" + string(p.Name)
		if p.SectionName != nil {
			s += "/" + string(*p.SectionName)
		}
		parents = append(parents, s)
	}
	return []string{getOr(strings.Join(parents, ","), "<none>")}
}
