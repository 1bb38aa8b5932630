package api

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// maxHeaderModifications bounds set, add and remove of a header modifier
// (the Gateway API CRD's limit).
const maxHeaderModifications = 16

// validateHTTPFilters checks the filters fs of a rule (rp, rule) or, with
// onBackend, of one of its backendRefs: each filter's type is known and
// carries its own configuration only, a type appears once (RequestMirror
// may repeat), URLRewrite and RequestRedirect are not combined, a
// ReplacePrefixMatch has the rule's one PathPrefix match to replace, and a
// redirect — which answers instead of forwarding — is not given backends
// it would ignore.
func validateHTTPFilters(e *errs, rp fieldPath, rule gatewayv1.HTTPRouteRule, p fieldPath, fs []gatewayv1.HTTPRouteFilter, onBackend bool) {
	seen := map[gatewayv1.HTTPRouteFilterType]bool{}
	for i, f := range fs {
		fp := p.index(i)
		set := map[gatewayv1.HTTPRouteFilterType]bool{
			gatewayv1.HTTPRouteFilterRequestHeaderModifier:  f.RequestHeaderModifier != nil,
			gatewayv1.HTTPRouteFilterResponseHeaderModifier: f.ResponseHeaderModifier != nil,
			gatewayv1.HTTPRouteFilterRequestRedirect:        f.RequestRedirect != nil,
			gatewayv1.HTTPRouteFilterURLRewrite:             f.URLRewrite != nil,
			gatewayv1.HTTPRouteFilterRequestMirror:          f.RequestMirror != nil,
			gatewayv1.HTTPRouteFilterCORS:                   f.CORS != nil,
			gatewayv1.HTTPRouteFilterExternalAuth:           f.ExternalAuth != nil,
			gatewayv1.HTTPRouteFilterExtensionRef:           f.ExtensionRef != nil,
		}
		if f.Type == "" {
			e.add(fp.child("type"), "required")
			continue
		}
		present, known := set[f.Type]
		if !known {
			e.add(fp.child("type"), "unknown filter type %q: must be one of RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite, RequestMirror, CORS, ExternalAuth, ExtensionRef", f.Type)
			continue
		}
		if !present {
			e.add(fp, "type %s requires its configuration field (%s)", f.Type, filterField(f.Type))
		}
		for t, ok := range set {
			if ok && t != f.Type {
				e.add(fp.child(filterField(t)), "must not be set for type %s", f.Type)
			}
		}
		if seen[f.Type] && f.Type != gatewayv1.HTTPRouteFilterRequestMirror {
			e.add(fp.child("type"), "%s may appear only once", f.Type)
		}
		seen[f.Type] = true
		validateHeaderFilter(e, fp.child("requestHeaderModifier"), f.RequestHeaderModifier)
		validateHeaderFilter(e, fp.child("responseHeaderModifier"), f.ResponseHeaderModifier)
		validateCORSExtAuth(e, fp, f) // validate_cors.go
		if rd := f.RequestRedirect; rd != nil {
			rdp := fp.child("requestRedirect")
			if onBackend {
				e.add(rdp, "a RequestRedirect on a backendRef is not supported (it is implementation-specific): put it on the rule")
			}
			if rd.Scheme != nil && *rd.Scheme != "http" && *rd.Scheme != "https" {
				e.add(rdp.child("scheme"), "must be http or https, got %q", *rd.Scheme)
			}
			if rd.Hostname != nil {
				validatePreciseHostname(e, rdp.child("hostname"), string(*rd.Hostname))
			}
			if rd.Port != nil && (*rd.Port < 1 || *rd.Port > 65535) {
				e.add(rdp.child("port"), "must be between 1 and 65535")
			}
			if rd.StatusCode != nil {
				switch *rd.StatusCode {
				case 301, 302, 303, 307, 308:
				default:
					e.add(rdp.child("statusCode"), "must be 301, 302, 303, 307 or 308, got %d", *rd.StatusCode)
				}
			}
			validatePathModifier(e, rp, rule, rdp.child("path"), rd.Path)
			if !onBackend && len(rule.BackendRefs) > 0 {
				e.add(rp.child("backendRefs"), "must be empty in a rule with a RequestRedirect filter: the redirect answers every request the rule matches, so the backends would never receive one")
			}
		}
		if rw := f.URLRewrite; rw != nil {
			rwp := fp.child("urlRewrite")
			if rw.Hostname != nil {
				validatePreciseHostname(e, rwp.child("hostname"), string(*rw.Hostname))
			}
			validatePathModifier(e, rp, rule, rwp.child("path"), rw.Path)
		}
	}
	if seen[gatewayv1.HTTPRouteFilterRequestRedirect] && seen[gatewayv1.HTTPRouteFilterURLRewrite] {
		e.add(p, "URLRewrite and RequestRedirect cannot be combined (Gateway API)")
	}
	if onBackend {
		return
	}
	for j, b := range rule.BackendRefs {
		for k, f := range b.Filters {
			if f.Type == gatewayv1.HTTPRouteFilterURLRewrite && seen[gatewayv1.HTTPRouteFilterRequestRedirect] {
				e.add(rp.child("backendRefs").index(j).child("filters").index(k), "URLRewrite cannot be combined with the rule's RequestRedirect (Gateway API)")
			}
			if f.Type == gatewayv1.HTTPRouteFilterURLRewrite && seen[gatewayv1.HTTPRouteFilterURLRewrite] {
				e.add(rp.child("backendRefs").index(j).child("filters").index(k), "URLRewrite conflicts with the rule's URLRewrite: rewrite on the rule or on its backendRefs, not both")
			}
		}
	}
}

// filterField is the configuration field of a filter type.
func filterField(t gatewayv1.HTTPRouteFilterType) string {
	switch t {
	case gatewayv1.HTTPRouteFilterURLRewrite:
		return "urlRewrite"
	case gatewayv1.HTTPRouteFilterCORS:
		return "cors"
	case gatewayv1.HTTPRouteFilterExternalAuth:
		return "externalAuth"
	case gatewayv1.HTTPRouteFilterExtensionRef:
		return "extensionRef"
	}
	s := string(t)
	return string(s[0]+'a'-'A') + s[1:]
}

// validateGRPCFilters checks the filters of a GRPCRoute rule or backendRef:
// RequestHeaderModifier, ResponseHeaderModifier, RequestMirror and
// ExtensionRef, each once (RequestMirror may repeat), with its own
// configuration only.
func validateGRPCFilters(e *errs, p fieldPath, fs []gatewayv1.GRPCRouteFilter) {
	seen := map[gatewayv1.GRPCRouteFilterType]bool{}
	for i, f := range fs {
		fp := p.index(i)
		set := map[gatewayv1.GRPCRouteFilterType]bool{
			gatewayv1.GRPCRouteFilterRequestHeaderModifier:  f.RequestHeaderModifier != nil,
			gatewayv1.GRPCRouteFilterResponseHeaderModifier: f.ResponseHeaderModifier != nil,
			gatewayv1.GRPCRouteFilterRequestMirror:          f.RequestMirror != nil,
			gatewayv1.GRPCRouteFilterExtensionRef:           f.ExtensionRef != nil,
		}
		if f.Type == "" {
			e.add(fp.child("type"), "required")
			continue
		}
		present, known := set[f.Type]
		if !known {
			e.add(fp.child("type"), "unknown filter type %q: must be one of RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, ExtensionRef", f.Type)
			continue
		}
		if !present {
			e.add(fp, "type %s requires its configuration field (%s)", f.Type, filterField(gatewayv1.HTTPRouteFilterType(f.Type)))
		}
		for t, ok := range set {
			if ok && t != f.Type {
				e.add(fp.child(filterField(gatewayv1.HTTPRouteFilterType(t))), "must not be set for type %s", f.Type)
			}
		}
		if seen[f.Type] && f.Type != gatewayv1.GRPCRouteFilterRequestMirror {
			e.add(fp.child("type"), "%s may appear only once", f.Type)
		}
		seen[f.Type] = true
		validateHeaderFilter(e, fp.child("requestHeaderModifier"), f.RequestHeaderModifier)
		validateHeaderFilter(e, fp.child("responseHeaderModifier"), f.ResponseHeaderModifier)
	}
}

// validateHeaderFilter checks a header modifier: valid names and values,
// at most 16 of each operation, and no name in two operations or twice in
// one (the Gateway API requires unique names).
func validateHeaderFilter(e *errs, p fieldPath, f *gatewayv1.HTTPHeaderFilter) {
	if f == nil {
		return
	}
	names := map[string]string{}
	check := func(op string, i int, name string, value *string) {
		np := p.child(op).index(i)
		if len(name) == 0 || !validHeaderName(name) {
			e.add(np.child("name"), "invalid header name %q", name)
			return
		}
		if value != nil && !validHeaderValue(*value) {
			e.add(np.child("value"), "invalid header value %q", *value)
		}
		key := strings.ToLower(name)
		if prev, dup := names[key]; dup {
			e.add(np.child("name"), "%q is already modified by %s", name, prev)
			return
		}
		names[key] = op
	}
	for op, n := range map[string]int{"set": len(f.Set), "add": len(f.Add), "remove": len(f.Remove)} {
		if n > maxHeaderModifications {
			e.add(p.child(op), "at most %d entries are allowed, got %d", maxHeaderModifications, n)
		}
	}
	for i, h := range f.Set {
		check("set", i, string(h.Name), &h.Value)
	}
	for i, h := range f.Add {
		check("add", i, string(h.Name), &h.Value)
	}
	for i, h := range f.Remove {
		check("remove", i, h, nil)
	}
}

// validatePathModifier checks a redirect's or rewrite's path modifier; a
// ReplacePrefixMatch needs the rule to have exactly one match, a PathPrefix
// one (the Gateway API's rule).
func validatePathModifier(e *errs, rp fieldPath, rule gatewayv1.HTTPRouteRule, p fieldPath, m *gatewayv1.HTTPPathModifier) {
	if m == nil {
		return
	}
	switch m.Type {
	case gatewayv1.FullPathHTTPPathModifier:
		if m.ReplaceFullPath == nil {
			e.add(p.child("replaceFullPath"), "required when type is ReplaceFullPath")
		} else if v := *m.ReplaceFullPath; len(v) == 0 || v[0] != '/' || len(v) > maxPathMatchLength {
			e.add(p.child("replaceFullPath"), "must start with \"/\" and be at most %d characters, got %q", maxPathMatchLength, v)
		}
		if m.ReplacePrefixMatch != nil {
			e.add(p.child("replacePrefixMatch"), "must not be set when type is ReplaceFullPath")
		}
	case gatewayv1.PrefixMatchHTTPPathModifier:
		if m.ReplacePrefixMatch == nil {
			e.add(p.child("replacePrefixMatch"), "required when type is ReplacePrefixMatch")
		} else if v := *m.ReplacePrefixMatch; v != "" && v[0] != '/' || len(v) > maxPathMatchLength {
			e.add(p.child("replacePrefixMatch"), "must be empty or start with \"/\" and be at most %d characters, got %q", maxPathMatchLength, v)
		}
		if m.ReplaceFullPath != nil {
			e.add(p.child("replaceFullPath"), "must not be set when type is ReplacePrefixMatch")
		}
		ms := rule.Matches
		if len(ms) != 1 || ms[0].Path == nil || ms[0].Path.Type != nil && *ms[0].Path.Type != gatewayv1.PathMatchPathPrefix {
			e.add(p.child("type"), "ReplacePrefixMatch requires the rule (%s) to have exactly one match, with a PathPrefix path", rp)
		}
	default:
		e.add(p.child("type"), "must be ReplaceFullPath or ReplacePrefixMatch, got %q", m.Type)
	}
}

// validatePreciseHostname checks a redirect's or rewrite's hostname: a DNS
// subdomain name, no wildcard.
func validatePreciseHostname(e *errs, p fieldPath, h string) {
	for _, msg := range validation.IsDNS1123Subdomain(h) {
		e.add(p, "invalid hostname %q: %s", h, msg)
	}
}

// validHeaderValue reports whether v is a valid field value: no control
// characters but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
