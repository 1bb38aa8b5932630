package api

import (
	"strings"
	"testing"
)

// TestValidateRouteStageErrors: every route stage field a proxy could not
// enforce as written is refused with its field named.
func TestValidateRouteStageErrors(t *testing.T) {
	const hr = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: web}]\n  rules:\n"
	const gr = "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: g}]\n  rules:\n"
	tests := []struct{ name, in, want string }{
		{"regex anchoring cannot rescue a bad expression", hr + `  - matches: [{path: {type: RegularExpression, value: "a)|(b"}}]` + "\n", `spec.rules[0].matches[0].path.value: invalid regular expression`},
		{"header regex", hr + `  - matches: [{headers: [{type: RegularExpression, name: x, value: "["}]}]` + "\n", `spec.rules[0].matches[0].headers[0].value: invalid regular expression`},
		{"query regex", hr + `  - matches: [{queryParams: [{type: RegularExpression, name: q, value: "*"}]}]` + "\n", `spec.rules[0].matches[0].queryParams[0].value: invalid regular expression`},
		{"grpc regex", gr + `  - matches: [{method: {type: RegularExpression, service: "a(", method: M}}]` + "\n", `spec.rules[0].matches[0].method.service: invalid regular expression`},
		{"unknown filter", hr + `  - filters: [{type: Teleport}]` + "\n", `spec.rules[0].filters[0].type: unknown filter type "Teleport"`},
		{"grpc unknown filter", gr + `  - filters: [{type: URLRewrite}]` + "\n", `spec.rules[0].filters[0].type: unknown filter type "URLRewrite"`},
		{"filter without its field", hr + `  - filters: [{type: RequestHeaderModifier}]` + "\n", `spec.rules[0].filters[0]: type RequestHeaderModifier requires its configuration field (requestHeaderModifier)`},
		{"filter with another's field", hr + `  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {remove: [x]}, urlRewrite: {hostname: a}}]` + "\n", `spec.rules[0].filters[0].urlRewrite: must not be set for type RequestHeaderModifier`},
		{"filter twice", hr + `  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {remove: [x]}}, {type: RequestHeaderModifier, requestHeaderModifier: {remove: [x-y]}}]` + "\n", `spec.rules[0].filters[1].type: RequestHeaderModifier may appear only once`},
		{"rewrite with redirect", hr + `  - filters: [{type: URLRewrite, urlRewrite: {hostname: a}}, {type: RequestRedirect, requestRedirect: {hostname: b}}]` + "\n", `spec.rules[0].filters: URLRewrite and RequestRedirect cannot be combined`},
		{"redirect with backends", hr + `  - filters: [{type: RequestRedirect, requestRedirect: {hostname: b}}]` + "\n    backendRefs: [{name: web}]\n", `spec.rules[0].backendRefs: must be empty in a rule with a RequestRedirect filter`},
		{"redirect on a backendRef", hr + `  - backendRefs: [{name: web, filters: [{type: RequestRedirect, requestRedirect: {hostname: b}}]}]` + "\n", `spec.rules[0].backendRefs[0].filters[0].requestRedirect: a RequestRedirect on a backendRef is not supported`},
		{"redirect status", hr + `  - filters: [{type: RequestRedirect, requestRedirect: {statusCode: 304}}]` + "\n", `spec.rules[0].filters[0].requestRedirect.statusCode: must be 301, 302, 303, 307 or 308, got 304`},
		{"redirect scheme", hr + `  - filters: [{type: RequestRedirect, requestRedirect: {scheme: ftp}}]` + "\n", `spec.rules[0].filters[0].requestRedirect.scheme: must be http or https`},
		{"redirect hostname", hr + `  - filters: [{type: RequestRedirect, requestRedirect: {hostname: "*.x"}}]` + "\n", `spec.rules[0].filters[0].requestRedirect.hostname: invalid hostname`},
		{"prefix rewrite needs a prefix match", hr + `  - matches: [{path: {type: Exact, value: /a}}]` + "\n    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]\n    backendRefs: [{name: web}]\n", `spec.rules[0].filters[0].urlRewrite.path.type: ReplacePrefixMatch requires the rule (spec.rules[0]) to have exactly one match, with a PathPrefix path`},
		{"prefix rewrite on a backendRef needs one match", hr + `  - matches: [{path: {value: /a}}, {path: {value: /b}}]` + "\n    backendRefs: [{name: web, filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]}]\n", `spec.rules[0].backendRefs[0].filters[0].urlRewrite.path.type: ReplacePrefixMatch requires`},
		{"rewrite on rule and backendRef", hr + `  - filters: [{type: URLRewrite, urlRewrite: {hostname: a}}]` + "\n    backendRefs: [{name: web, filters: [{type: URLRewrite, urlRewrite: {hostname: b}}]}]\n", `spec.rules[0].backendRefs[0].filters[0]: URLRewrite conflicts with the rule's URLRewrite`},
		{"full path without value", hr + `  - filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath}}}]` + "\n    backendRefs: [{name: web}]\n", `spec.rules[0].filters[0].urlRewrite.path.replaceFullPath: required when type is ReplaceFullPath`},
		{"path modifier type", hr + `  - filters: [{type: URLRewrite, urlRewrite: {path: {type: Squash}}}]` + "\n    backendRefs: [{name: web}]\n", `spec.rules[0].filters[0].urlRewrite.path.type: must be ReplaceFullPath or ReplacePrefixMatch`},
		{"header modified twice", hr + `  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-A, value: "1"}], remove: [x-a]}}]` + "\n", `spec.rules[0].filters[0].requestHeaderModifier.remove[0].name: "x-a" is already modified by set`},
		{"header value", hr + "  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: x, value: \"a\\nb\"}]}}]\n", `spec.rules[0].filters[0].responseHeaderModifier.add[0].value: invalid header value`},
		{"grpc backend filter", gr + `  - backendRefs: [{name: a, filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: "a b", value: c}]}}]}]` + "\n", `spec.rules[0].backendRefs[0].filters[0].requestHeaderModifier.set[0].name: invalid header name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}
