package api

import (
	"strings"
	"testing"
)

// TestValidateCORSExtAuthErrors: every CORS and ExternalAuth field a proxy
// could not enforce as written is refused with its field named.
func TestValidateCORSExtAuthErrors(t *testing.T) {
	const hr = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: web}]\n  rules:\n"
	const ea = `  - filters: [{type: ExternalAuth, externalAuth: `
	tests := []struct{ name, in, want string }{
		{"origin scheme", hr + `  - filters: [{type: CORS, cors: {allowOrigins: ["https://a.example", "ftp://b"]}}]` + "\n", `spec.rules[0].filters[0].cors.allowOrigins[1]: "ftp://b" is not`},
		{"origin path", hr + `  - filters: [{type: CORS, cors: {allowOrigins: ["https://a.example/x"]}}]` + "\n", `spec.rules[0].filters[0].cors.allowOrigins[0]`},
		{"origin wildcard in the middle", hr + `  - filters: [{type: CORS, cors: {allowOrigins: ["https://a.*.example"]}}]` + "\n", `spec.rules[0].filters[0].cors.allowOrigins[0]`},
		{"origin wildcard not alone", hr + `  - filters: [{type: CORS, cors: {allowOrigins: ["*", "https://a.example"]}}]` + "\n", `spec.rules[0].filters[0].cors.allowOrigins[0]: "*" must be the only entry`},
		{"method", hr + `  - filters: [{type: CORS, cors: {allowOrigins: ["*"], allowMethods: [GET, get]}}]` + "\n", `spec.rules[0].filters[0].cors.allowMethods[1]: must be one of`},
		{"method wildcard not alone", hr + `  - filters: [{type: CORS, cors: {allowMethods: [GET, "*"]}}]` + "\n", `spec.rules[0].filters[0].cors.allowMethods[1]: "*" must be the only entry`},
		{"allow header", hr + `  - filters: [{type: CORS, cors: {allowHeaders: ["x a"]}}]` + "\n", `spec.rules[0].filters[0].cors.allowHeaders[0]: invalid header name`},
		{"expose header", hr + `  - filters: [{type: CORS, cors: {exposeHeaders: ["x:"]}}]` + "\n", `spec.rules[0].filters[0].cors.exposeHeaders[0]: invalid header name`},
		{"max age", hr + `  - filters: [{type: CORS, cors: {maxAge: -1}}]` + "\n", `spec.rules[0].filters[0].cors.maxAge: must be at least 1`},
		{"auth protocol", hr + ea + `{protocol: SOAP, backendRef: {name: a, port: 80}}}]` + "\n", `spec.rules[0].filters[0].externalAuth.protocol: must be HTTP or GRPC`},
		{"auth http missing", hr + ea + `{protocol: HTTP, backendRef: {name: a, port: 80}}}]` + "\n", `spec.rules[0].filters[0].externalAuth.http: required when protocol is HTTP`},
		{"auth grpc with http", hr + ea + `{protocol: HTTP, backendRef: {name: a, port: 80}, http: {}, grpc: {}}}]` + "\n", `spec.rules[0].filters[0].externalAuth.grpc: must not be set when protocol is HTTP`},
		{"auth port", hr + ea + `{protocol: HTTP, backendRef: {name: a}, http: {}}}]` + "\n", `spec.rules[0].filters[0].externalAuth.backendRef.port: required`},
		{"auth kind", hr + ea + `{protocol: HTTP, backendRef: {name: a, kind: Pod, port: 80}, http: {}}}]` + "\n", `spec.rules[0].filters[0].externalAuth.backendRef.kind: must be Service`},
		{"auth path", hr + ea + `{protocol: HTTP, backendRef: {name: a, port: 80}, http: {path: "check me"}}}]` + "\n", `spec.rules[0].filters[0].externalAuth.http.path: must be a path`},
		{"auth header", hr + ea + `{protocol: HTTP, backendRef: {name: a, port: 80}, http: {allowedHeaders: ["a b"]}}}]` + "\n", `spec.rules[0].filters[0].externalAuth.http.allowedHeaders[0]: invalid header name`},
		{"auth response header", hr + ea + `{protocol: HTTP, backendRef: {name: a, port: 80}, http: {allowedResponseHeaders: [""]}}}]` + "\n", `spec.rules[0].filters[0].externalAuth.http.allowedResponseHeaders[0]: invalid header name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := Decode([]byte(tt.in))
			if err == nil {
				err = CheckSupported(o[0])
			}
			if err == nil {
				t.Fatalf("accepted, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}
