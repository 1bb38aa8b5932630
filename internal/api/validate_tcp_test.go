package api

import (
	"strings"
	"testing"
)

// TestValidateTCPRoute: a valid TCPRoute decodes; every bad field is
// refused with its path.
func TestValidateTCPRoute(t *testing.T) {
	const head = "apiVersion: gateway.networking.k8s.io/v1\nkind: TCPRoute\nmetadata: {name: db}\nspec:\n"
	const parent = "  parentRefs: [{group: \"\", kind: Service, name: db, port: 5432}]\n"
	if _, err := Decode([]byte(head + parent + "  rules: [{backendRefs: [{name: a, port: 1, weight: 80}, {name: b, port: 1, weight: 20}]}]\n")); err != nil {
		t.Fatalf("valid TCPRoute refused: %v", err)
	}
	tests := []struct{ name, in, want string }{
		{"no parent", head + "  rules: [{backendRefs: [{name: a, port: 1}]}]\n", "spec.parentRefs: at least one parentRef is required"},
		{"a Gateway after a Service", head + "  parentRefs: [{group: \"\", kind: Service, name: db}, {name: gw}]\n  rules: [{backendRefs: [{name: a, port: 1}]}]\n", "spec.parentRefs[1].kind: must be Service like the first parentRef"},
		{"parent port", head + "  parentRefs: [{group: \"\", kind: Service, name: db, port: 70000}]\n  rules: [{backendRefs: [{name: a, port: 1}]}]\n", "spec.parentRefs[0].port: must be between 1 and 65535"},
		{"no rule", head + parent + "  rules: []\n", "spec.rules: exactly one rule is required"},
		{"two rules", head + parent + "  rules: [{backendRefs: [{name: a, port: 1}]}, {backendRefs: [{name: b, port: 1}]}]\n", "spec.rules: exactly one rule is allowed"},
		{"no backend", head + parent + "  rules: [{}]\n", "spec.rules[0].backendRefs: at least one backendRef is required"},
		{"backend kind", head + parent + "  rules: [{backendRefs: [{name: a, port: 1, kind: Pod}]}]\n", "spec.rules[0].backendRefs[0].kind: must be Service"},
		{"backend weight", head + parent + "  rules: [{backendRefs: [{name: a, port: 1, weight: 1000001}]}]\n", "spec.rules[0].backendRefs[0].weight: must be between 0 and 1000000"},
		{"backend name", head + parent + "  rules: [{backendRefs: [{port: 1}]}]\n", "spec.rules[0].backendRefs[0].name: required"},
		{"unknown field", head + parent + "  rules: [{backendRefs: [{name: a, port: 1}], matches: []}]\n", "unknown field"},
		{"wrong version", strings.Replace(head, "/v1\n", "/v1alpha2\n", 1) + parent + "  rules: [{backendRefs: [{name: a, port: 1}]}]\n", `TCPRoute is "gateway.networking.k8s.io/v1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
