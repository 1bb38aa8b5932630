package xdsgen

import (
	"slices"
	"strings"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// authzPolicies is the compiled AuthorizationPolicies of a configuration,
// indexed by what they govern. A policy with a targetRef governs that
// Service; one without governs every service of its namespace, or of the
// mesh in api.RootNamespace; selectors are left to the proxies, which
// know their workload's labels. Per-Service lists (instead of a resource
// type of their own) give every proxy its service's policies in the
// resource it already receives, in the same push as its routes.
type authzPolicies struct {
	byTarget    map[string][]*weftv1.AuthzPolicy
	byNamespace map[string][]*weftv1.AuthzPolicy
	defaultDeny bool
}

func compileAuthz(cfg *api.Set) authzPolicies {
	a := authzPolicies{byTarget: map[string][]*weftv1.AuthzPolicy{}, byNamespace: map[string][]*weftv1.AuthzPolicy{}}
	if mc := cfg.MeshConfig; mc != nil && mc.Spec.Authorization != nil {
		a.defaultDeny = mc.Spec.Authorization.DefaultAction == api.ActionDeny
	}
	ps := slices.Clone(cfg.AuthorizationPolicies)
	slices.SortFunc(ps, func(x, y *api.AuthorizationPolicy) int {
		return strings.Compare(x.Namespace+"/"+x.Name, y.Namespace+"/"+y.Name)
	})
	for _, p := range ps {
		c := AuthzPolicy(p)
		if t := p.Spec.TargetRef.Name; t != "" {
			key := weftv1.ResourceName(t, p.Namespace)
			a.byTarget[key] = append(a.byTarget[key], c)
			continue
		}
		a.byNamespace[p.Namespace] = append(a.byNamespace[p.Namespace], c)
	}
	return a
}

// forService returns the policies that may govern the service (name,
// namespace): its targeted ones, its namespace's and the root
// namespace's.
func (a *authzPolicies) forService(name, ns string) []*weftv1.AuthzPolicy {
	out := slices.Concat(a.byTarget[weftv1.ResourceName(name, ns)], a.byNamespace[ns])
	if ns != api.RootNamespace {
		out = append(out, a.byNamespace[api.RootNamespace]...)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// AuthzPolicy translates one validated AuthorizationPolicy.
func AuthzPolicy(p *api.AuthorizationPolicy) *weftv1.AuthzPolicy {
	out := &weftv1.AuthzPolicy{Name: p.Namespace + "/" + p.Name}
	switch p.Spec.Action {
	case api.ActionDeny:
		out.Action = weftv1.AuthzPolicy_DENY
	case api.ActionAudit:
		out.Action = weftv1.AuthzPolicy_AUDIT
	}
	if p.Spec.Selector != nil && len(p.Spec.Selector.MatchLabels) > 0 {
		out.Selector = p.Spec.Selector.MatchLabels
	}
	for _, r := range p.Spec.Rules {
		cr := &weftv1.AuthzRule{}
		for _, f := range r.From {
			cr.From = append(cr.From, &weftv1.AuthzFrom{
				Identities: f.Identities, NotIdentities: f.NotIdentities,
				Namespaces: f.Namespaces, NotNamespaces: f.NotNamespaces,
				IpBlocks: f.IPBlocks, NotIpBlocks: f.NotIPBlocks,
				RequestPrincipals: f.RequestPrincipals, NotRequestPrincipals: f.NotRequestPrincipals,
			})
		}
		for _, t := range r.To {
			ct := &weftv1.AuthzTo{Methods: t.Methods, NotMethods: t.NotMethods, Paths: t.Paths, NotPaths: t.NotPaths, Hosts: t.Hosts, NotHosts: t.NotHosts}
			for _, port := range t.Ports {
				ct.Ports = append(ct.Ports, uint32(port))
			}
			cr.To = append(cr.To, ct)
		}
		for _, w := range r.When {
			key := w.Key
			if w.Header != "" {
				key = weftv1.AuthzHeaderKeyPrefix + strings.ToLower(w.Header) + "]"
			}
			cr.When = append(cr.When, &weftv1.AuthzCondition{Key: key, Values: w.Values, NotValues: w.NotValues})
		}
		out.Rules = append(out.Rules, cr)
	}
	return out
}
