package xdsgen

import (
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// routeFilters are the compiled filters of a rule, set on each of its
// route entries.
type routeFilters struct {
	request, response *weftv1.HeaderModifier
	redirect          *weftv1.RequestRedirect
	rewrite           *weftv1.URLRewrite
}

func (f routeFilters) setOn(r *weftv1.Route) {
	r.RequestHeaders, r.ResponseHeaders, r.Redirect, r.Rewrite = f.request, f.response, f.redirect, f.rewrite
}

// httpRuleFilters compiles the filters of an HTTPRoute rule and sets those
// of its backendRefs on backends (compiled from rule.BackendRefs, in
// order). RequestMirror and ExtensionRef are other stages' (the API refuses
// them until they are enforced); a ReplacePrefixMatch replaces the prefix of
// the rule's one PathPrefix match, which the API requires.
func httpRuleFilters(rule gatewayv1.HTTPRouteRule, backends []*weftv1.Backend) routeFilters {
	prefix := rulePrefix(rule.Matches)
	f := httpFilters(rule.Filters, prefix)
	if len(rule.BackendRefs) == len(backends) {
		for j, b := range rule.BackendRefs {
			bf := httpFilters(b.Filters, prefix)
			backends[j].RequestHeaders, backends[j].ResponseHeaders, backends[j].Rewrite = bf.request, bf.response, bf.rewrite
		}
	}
	return f
}

// grpcRuleFilters is httpRuleFilters for a GRPCRoute rule: its filters are
// the header modifiers.
func grpcRuleFilters(rule gatewayv1.GRPCRouteRule, backends []*weftv1.Backend) routeFilters {
	f := grpcFilters(rule.Filters)
	if len(rule.BackendRefs) == len(backends) {
		for j, b := range rule.BackendRefs {
			bf := grpcFilters(b.Filters)
			backends[j].RequestHeaders, backends[j].ResponseHeaders = bf.request, bf.response
		}
	}
	return f
}

func grpcFilters(fs []gatewayv1.GRPCRouteFilter) routeFilters {
	var out routeFilters
	for _, f := range fs {
		switch f.Type {
		case gatewayv1.GRPCRouteFilterRequestHeaderModifier:
			out.request = headerModifier(f.RequestHeaderModifier)
		case gatewayv1.GRPCRouteFilterResponseHeaderModifier:
			out.response = headerModifier(f.ResponseHeaderModifier)
		}
	}
	return out
}

// rulePrefix is the path prefix of a rule's only PathPrefix match, or "/".
func rulePrefix(ms []gatewayv1.HTTPRouteMatch) string {
	if len(ms) == 1 && ms[0].Path != nil && ms[0].Path.Value != nil && (ms[0].Path.Type == nil || *ms[0].Path.Type == gatewayv1.PathMatchPathPrefix) {
		return *ms[0].Path.Value
	}
	return "/"
}

func httpFilters(fs []gatewayv1.HTTPRouteFilter, prefix string) routeFilters {
	var out routeFilters
	for _, f := range fs {
		switch f.Type {
		case gatewayv1.HTTPRouteFilterRequestHeaderModifier:
			out.request = headerModifier(f.RequestHeaderModifier)
		case gatewayv1.HTTPRouteFilterResponseHeaderModifier:
			out.response = headerModifier(f.ResponseHeaderModifier)
		case gatewayv1.HTTPRouteFilterRequestRedirect:
			if rd := f.RequestRedirect; rd != nil {
				r := &weftv1.RequestRedirect{Path: pathModifier(rd.Path, prefix)}
				if rd.Scheme != nil {
					r.Scheme = strings.ToLower(*rd.Scheme)
				}
				if rd.Hostname != nil {
					r.Hostname = string(*rd.Hostname)
				}
				if rd.Port != nil {
					r.Port = uint32(*rd.Port)
				}
				if rd.StatusCode != nil {
					r.StatusCode = uint32(*rd.StatusCode)
				}
				out.redirect = r
			}
		case gatewayv1.HTTPRouteFilterURLRewrite:
			if rw := f.URLRewrite; rw != nil {
				r := &weftv1.URLRewrite{Path: pathModifier(rw.Path, prefix)}
				if rw.Hostname != nil {
					r.Hostname = string(*rw.Hostname)
				}
				out.rewrite = r
			}
		}
	}
	return out
}

func headerModifier(f *gatewayv1.HTTPHeaderFilter) *weftv1.HeaderModifier {
	if f == nil {
		return nil
	}
	out := &weftv1.HeaderModifier{Remove: f.Remove}
	for _, h := range f.Set {
		out.Set = append(out.Set, &weftv1.HeaderValue{Name: string(h.Name), Value: h.Value})
	}
	for _, h := range f.Add {
		out.Add = append(out.Add, &weftv1.HeaderValue{Name: string(h.Name), Value: h.Value})
	}
	return out
}

func pathModifier(p *gatewayv1.HTTPPathModifier, prefix string) *weftv1.PathModifier {
	if p == nil {
		return nil
	}
	switch p.Type {
	case gatewayv1.FullPathHTTPPathModifier:
		if p.ReplaceFullPath != nil {
			return &weftv1.PathModifier{Kind: weftv1.PathModifier_FULL, Value: *p.ReplaceFullPath}
		}
	case gatewayv1.PrefixMatchHTTPPathModifier:
		if p.ReplacePrefixMatch != nil {
			return &weftv1.PathModifier{Kind: weftv1.PathModifier_PREFIX, Value: *p.ReplacePrefixMatch, MatchedPrefix: prefix}
		}
	}
	return nil
}
