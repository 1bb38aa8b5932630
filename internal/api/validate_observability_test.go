package api

import (
	"strings"
	"testing"
)

func TestValidateObservability(t *testing.T) {
	const svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web, annotations: {%s}}\nspec: {selector: {app: w}}\n"
	const mc = "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {accessLog: {mode: %s}}\n"
	tests := []struct {
		name, in, want string // want "" accepts
	}{
		{"mesh errors", strings.Replace(mc, "%s", "errors", 1), ""},
		{"mesh all", strings.Replace(mc, "%s", "all", 1), ""},
		{"mesh bad mode", strings.Replace(mc, "%s", "verbose", 1), `spec.accessLog.mode: must be one of none, all, errors, got "verbose"`},
		{"mesh tracing", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {tracing: {sampling: 0.25}}\n", ""},
		{"mesh tracing 1", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {tracing: {sampling: 1}}\n", ""},
		{"mesh tracing too high", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {tracing: {sampling: 1.5}}\n", "spec.tracing.sampling: must be between 0 and 1, got 1.5"},
		{"mesh otlp endpoint", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {tracing: {otlpEndpoint: \"http://otel-collector:4317\"}}\n", ""},
		{"mesh otlp endpoint https", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {tracing: {otlpEndpoint: \"https://10.0.0.7:4317\"}}\n", ""},
		{"mesh otlp endpoint no scheme", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {tracing: {otlpEndpoint: \"otel:4317\"}}\n", `spec.tracing.otlpEndpoint: "otel:4317": want an http:// or https:// URL`},
		{"mesh otlp endpoint no port", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {tracing: {otlpEndpoint: \"http://otel\"}}\n", `spec.tracing.otlpEndpoint: "http://otel": want host:port`},
		{"mesh otlp endpoint path", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {tracing: {otlpEndpoint: \"http://otel:4317/v1/traces\"}}\n", `want only scheme, host and port`},
		{"svc access log", strings.Replace(svc, "%s", "weft.dev/access-log: errors", 1), ""},
		{"svc bad access log", strings.Replace(svc, "%s", "weft.dev/access-log: ALL", 1), `metadata.annotations[weft.dev/access-log]: must be one of none, all, errors, got "ALL"`},
		{"svc tap bodies", strings.Replace(svc, "%s", `weft.dev/tap-bodies: "true"`, 1), ""},
		{"svc bad tap bodies", strings.Replace(svc, "%s", `weft.dev/tap-bodies: "yes"`, 1), `metadata.annotations[weft.dev/tap-bodies]: must be "true" or "false", got "yes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Decode: %v, want success", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Decode: %v, want error containing %q", err, tt.want)
			}
		})
	}
}
