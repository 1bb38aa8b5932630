package weftv1

import (
	"strings"
	"testing"
)

func TestValidateCORSExtAuth(t *testing.T) {
	auth := func(a *ExternalAuth) *Route {
		if a.Service == "" {
			a.Service, a.Namespace = "authz", "default"
		}
		return &Route{ExternalAuth: a}
	}
	tests := []struct {
		name string
		r    *Route
		want string // "" = valid
	}{
		{"valid cors", &Route{Cors: &CORSPolicy{AllowOrigins: []string{"https://*.a.example", "http://b:8080"}, AllowMethods: []string{"GET"}, AllowHeaders: []string{"*"}}}, ""},
		{"origin", &Route{Cors: &CORSPolicy{AllowOrigins: []string{"https://a/b"}}}, "cors.allow_origins[0]"},
		{"origin wildcard not alone", &Route{Cors: &CORSPolicy{AllowOrigins: []string{"https://a", "*"}}}, `cors.allow_origins[1]: "*" must be the only entry`},
		{"method", &Route{Cors: &CORSPolicy{AllowMethods: []string{"G ET"}}}, "cors.allow_methods[0]"},
		{"expose header", &Route{Cors: &CORSPolicy{ExposeHeaders: []string{"a:b"}}}, "cors.expose_headers[0]"},
		{"valid auth", auth(&ExternalAuth{Path: "/check", AllowedHeaders: []string{"x-user"}, MaxBodyBytes: 10}), ""},
		{"grpc auth", auth(&ExternalAuth{Protocol: ExternalAuth_GRPC}), ""},
		{"unknown protocol", auth(&ExternalAuth{Protocol: 7}), "external_auth.protocol: unknown protocol 7"},
		{"auth service", &Route{ExternalAuth: &ExternalAuth{Service: "a"}}, "external_auth: service and namespace are required"},
		{"auth body", auth(&ExternalAuth{MaxBodyBytes: MaxExternalAuthBody + 1}), "external_auth.max_body_bytes"},
		{"auth timeout", auth(&ExternalAuth{TimeoutMs: MaxExternalAuthTimeoutMs + 1}), "external_auth.timeout_ms"},
		{"auth path", auth(&ExternalAuth{Path: "check"}), "external_auth.path"},
		{"auth header", auth(&ExternalAuth{AllowedResponseHeaders: []string{""}}), "external_auth.allowed_response_headers[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateCORSExtAuth(tt.r)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
