package api

import (
	"strings"
	"testing"
)

// TestValidateFaultInjection decodes FaultInjection documents that are each
// wrong in one way and checks that the error names the field.
func TestValidateFaultInjection(t *testing.T) {
	const head = "apiVersion: weft.dev/v1alpha1\nkind: FaultInjection\nmetadata: {name: f}\nspec:\n"
	tests := []struct {
		name, spec, want string
	}{
		{"ok abort", "  abort: {httpStatus: 503, percentage: 20}\n", ""},
		{"ok fractional", "  abort: {httpStatus: 503, percentage: 0.25}\n  delay: {fixedDelay: 200ms, percentage: 99.5}\n", ""},
		{"ok grpc", "  abort: {grpcStatus: UNAVAILABLE}\n", ""},
		{"ok no percentage", "  delay: {fixedDelay: 1s}\n", ""},
		{"ok headers", "  abort: {httpStatus: 500}\n  match: {headers: [{name: x-chaos, value: \"on\"}]}\n", ""},
		{"nothing", "  match: {headers: [{name: x-chaos, value: \"on\"}]}\n", "spec: set delay, abort or both"},
		{"percentage over", "  abort: {httpStatus: 503, percentage: 120}\n", "spec.abort.percentage: must be between 0 and 100, got 120"},
		{"percentage negative", "  delay: {fixedDelay: 1s, percentage: -0.5}\n", "spec.delay.percentage: must be between 0 and 100, got -0.5"},
		{"percentage string", "  delay: {fixedDelay: 1s, percentage: \"10%\"}\n", "spec.delay.percentage: cannot be string, want a number"},
		{"missing status", "  abort: {percentage: 10}\n", "spec.abort: set one of httpStatus (400-599) and grpcStatus"},
		{"both statuses", "  abort: {httpStatus: 503, grpcStatus: UNAVAILABLE}\n", "spec.abort: set exactly one of httpStatus and grpcStatus, not both"},
		{"status range", "  abort: {httpStatus: 200}\n", "spec.abort.httpStatus: must be between 400 and 599, got 200"},
		{"grpc ok", "  abort: {grpcStatus: OK}\n", `spec.abort.grpcStatus: must be a gRPC status name other than OK, such as UNAVAILABLE or RESOURCE_EXHAUSTED, got "OK"`},
		{"grpc lower case", "  abort: {grpcStatus: unavailable}\n", `spec.abort.grpcStatus: must be a gRPC status name`},
		{"no delay", "  delay: {percentage: 10}\n", `spec.delay.fixedDelay: required`},
		{"bad delay", "  delay: {fixedDelay: soon}\n", `spec.delay.fixedDelay: invalid duration "soon"`},
		{"zero delay", "  delay: {fixedDelay: 0s}\n", `spec.delay.fixedDelay: must be greater than 0`},
		{"long delay", "  delay: {fixedDelay: 2h}\n", `spec.delay.fixedDelay: must be at most 1h`},
		{"sub-ms delay", "  delay: {fixedDelay: 1500us}\n", `spec.delay.fixedDelay: must be a whole number of milliseconds`},
		{"header name", "  abort: {httpStatus: 503}\n  match: {headers: [{name: \"x y\", value: v}]}\n", `spec.match.headers[0].name: invalid header name "x y"`},
		{"unknown field", "  abort: {httpStatus: 503, percent: 10}\n", `spec.abort.percent: unknown field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(head + tt.spec))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestValidateWeftFilters checks the ExtensionRef and RequestMirror filters
// of HTTPRoute and GRPCRoute rules.
func TestValidateWeftFilters(t *testing.T) {
	const head = "metadata: {name: r}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: a}]\n  rules:\n  - backendRefs: [{name: a}]\n    filters:\n"
	http := "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n" + head
	grpc := "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n" + head
	const fault = "    - {type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: f}}\n"
	tests := []struct {
		name, doc, want string
	}{
		{"fault", http + fault, ""},
		{"grpc fault", grpc + fault, ""},
		{"mirror", http + "    - {type: RequestMirror, requestMirror: {backendRef: {name: b, port: 80}, percent: 10}}\n", ""},
		{"mirror fraction", http + "    - {type: RequestMirror, requestMirror: {backendRef: {name: b}, fraction: {numerator: 1, denominator: 3}}}\n", ""},
		{"unknown kind", http + "    - {type: ExtensionRef, extensionRef: {group: example.com, kind: Chaos, name: f}}\n",
			`spec.rules[0].filters[0].extensionRef: unsupported extension filter group "example.com" kind "Chaos": weft supports group "weft.dev" kind "FaultInjection"`},
		{"grpc unknown kind", grpc + "    - {type: ExtensionRef, extensionRef: {group: weft.dev, kind: Chaos, name: f}}\n",
			`spec.rules[0].filters[0].extensionRef: unsupported extension filter group "weft.dev" kind "Chaos"`},
		{"no name", http + "    - {type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: \"\"}}\n", `spec.rules[0].filters[0].extensionRef.name: required`},
		{"two faults", http + fault + fault, `spec.rules[0].filters[1].extensionRef: at most one FaultInjection per rule`},
		{"type without field", http + "    - {type: ExtensionRef}\n", `spec.rules[0].filters[0].extensionRef: must be set exactly when type is ExtensionRef`},
		{"field without type", http + "    - {type: RequestMirror, extensionRef: {group: weft.dev, kind: FaultInjection, name: f}}\n", `spec.rules[0].filters[0].requestMirror: must be set exactly when type is RequestMirror`},
		{"mirror percent", http + "    - {type: RequestMirror, requestMirror: {backendRef: {name: b}, percent: 120}}\n", `spec.rules[0].filters[0].requestMirror.percent: must be between 0 and 100, got 120`},
		{"mirror both shares", http + "    - {type: RequestMirror, requestMirror: {backendRef: {name: b}, percent: 10, fraction: {numerator: 1}}}\n", `spec.rules[0].filters[0].requestMirror: set at most one of percent and fraction`},
		{"mirror fraction over", http + "    - {type: RequestMirror, requestMirror: {backendRef: {name: b}, fraction: {numerator: 4, denominator: 3}}}\n", `spec.rules[0].filters[0].requestMirror.fraction.numerator: must be between 0 and the denominator (3), got 4`},
		{"mirror denominator", http + "    - {type: RequestMirror, requestMirror: {backendRef: {name: b}, fraction: {numerator: 0, denominator: 0}}}\n", `spec.rules[0].filters[0].requestMirror.fraction.denominator: must be at least 1, got 0`},
		{"mirror kind", http + "    - {type: RequestMirror, requestMirror: {backendRef: {name: b, kind: Pod}}}\n", `spec.rules[0].filters[0].requestMirror.backendRef.kind: must be Service, got "Pod"`},
		{"mirror no name", grpc + "    - {type: RequestMirror, requestMirror: {backendRef: {name: \"\"}}}\n", `spec.rules[0].filters[0].requestMirror.backendRef.name: required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.doc))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
