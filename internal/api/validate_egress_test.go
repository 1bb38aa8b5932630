package api

import (
	"strings"
	"testing"
)

// TestValidateExternalService decodes ExternalService documents that are
// each wrong in one way and checks that the error names the field.
func TestValidateExternalService(t *testing.T) {
	const head = "apiVersion: weft.dev/v1alpha1\nkind: ExternalService\nmetadata: {name: x, namespace: default}\nspec:\n"
	const ca = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIBATAKBggqhkjOPQQDAjAeMRwwGgYDVQQDExNub3QgdGhl\n-----END CERTIFICATE-----\n"
	tests := []struct {
		name, spec, want string
	}{
		{"ok exact", "  hosts: [api.example.com]\n", ""},
		{"ok wildcard ports", "  hosts: [\"*.example.com\", localhost]\n  ports: [{number: 443, protocol: HTTPS}, {number: 80}]\n", ""},
		{"ok originate", "  hosts: [api.example.com]\n  ports: [{number: 80, protocol: HTTP}]\n  tls: {mode: ORIGINATE, sni: api.example.com}\n", ""},
		{"no hosts", "  ports: [{number: 443}]\n", "spec.hosts: required"},
		{"match all", "  hosts: [\"*\"]\n", `spec.hosts[0]: "*" would match every host`},
		{"tld wildcard", "  hosts: [\"*.com\"]\n", `spec.hosts[0]: "*.com" would match every name under a top-level domain`},
		{"inner wildcard", "  hosts: [\"api.*.com\"]\n", `spec.hosts[0]: "api.*.com": a wildcard is allowed only as the whole first label`},
		{"partial wildcard", "  hosts: [\"a*.example.com\"]\n", `spec.hosts[0]: "a*.example.com": a wildcard is allowed only`},
		{"mesh domain", "  hosts: [orders.shop.svc.cluster.local]\n", `spec.hosts[0]: "orders.shop.svc.cluster.local" is a mesh service name`},
		{"upper case", "  hosts: [API.example.com]\n", `spec.hosts[0]: a lowercase RFC 1123 subdomain`},
		{"duplicate host", "  hosts: [a.example.com, a.example.com]\n", `spec.hosts[1]: duplicate host`},
		{"port range", "  hosts: [a.example.com]\n  ports: [{number: 70000}]\n", "spec.ports[0].number: must be 1-65535, got 70000"},
		{"duplicate port", "  hosts: [a.example.com]\n  ports: [{number: 80}, {number: 80}]\n", "spec.ports[1].number: duplicate port 80"},
		{"protocol", "  hosts: [a.example.com]\n  ports: [{number: 80, protocol: UDP}]\n", `spec.ports[0].protocol: must be HTTP, HTTPS, TLS or TCP, got "UDP"`},
		{"tls mode", "  hosts: [a.example.com]\n  tls: {mode: SIMPLE}\n", `spec.tls.mode: must be ORIGINATE, got "SIMPLE"`},
		{"insecure", "  hosts: [a.example.com]\n  tls: {mode: ORIGINATE, insecureSkipVerify: true}\n", "spec.tls.insecureSkipVerify: must be false"},
		{"ca not pem", "  hosts: [a.example.com]\n  tls: {mode: ORIGINATE, caCertificates: /etc/ca.pem}\n", "spec.tls.caCertificates: no PEM certificate found"},
		{"ca broken", "  hosts: [a.example.com]\n  tls:\n    mode: ORIGINATE\n    caCertificates: |\n      " + strings.ReplaceAll(ca, "\n", "\n      ") + "\n", "spec.tls.caCertificates: certificate 0:"},
		{"originate https port", "  hosts: [a.example.com]\n  ports: [{number: 443, protocol: HTTPS}]\n  tls: {mode: ORIGINATE}\n", `spec.ports[0].protocol: must be HTTP with tls.mode ORIGINATE`},
		{"ok egress gateway", "  hosts: [a.example.com]\n  egressGateway: egress-gw\n", ""},
		{"egress gateway name", "  hosts: [a.example.com]\n  egressGateway: egress.gw\n", "spec.egressGateway: must not contain dots"},
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

func TestValidateOutboundTrafficPolicy(t *testing.T) {
	const head = "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec:\n"
	for spec, want := range map[string]string{
		"  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n":                               "",
		"  outboundTrafficPolicy: {mode: ALLOW_ANY}\n":                                   "",
		"  outboundTrafficPolicy: {mode: DENY}\n":                                        `spec.outboundTrafficPolicy.mode: must be ALLOW_ANY or REGISTRY_ONLY, got "DENY"`,
		"  outboundTrafficPolicy: {egressGateway: {name: egress-gw, namespace: edge}}\n": "",
		"  outboundTrafficPolicy: {egressGateway: {namespace: edge}}\n":                  "spec.outboundTrafficPolicy.egressGateway.name: required",
		"  outboundTrafficPolicy: {egressGateway: {name: Egress_GW}}\n":                  "spec.outboundTrafficPolicy.egressGateway.name: a lowercase RFC 1123 label",
	} {
		_, err := Decode([]byte(head + spec))
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: err = %v, want %q", spec, err, want)
		}
	}
}
