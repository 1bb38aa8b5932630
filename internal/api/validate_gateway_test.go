package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestValidateGateway decodes Gateways that are each wrong in one way and
// checks that the error (validation or CheckSupported) names the field.
func TestValidateGateway(t *testing.T) {
	const head = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: default}\nspec:\n"
	const https = "  - {name: https, protocol: HTTPS, port: 443, tls: {certificateRefs: [{name: c}]}}\n"
	tests := []struct {
		name, spec, want string
	}{
		{"ok", "  gatewayClassName: weft\n  listeners:\n  - {name: http, protocol: HTTP, port: 80}\n" + https, ""},
		{"ok all namespaces", "  gatewayClassName: weft\n  listeners:\n  - {name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: All}}}\n", ""},
		{"no class", "  listeners:\n  - {name: http, protocol: HTTP, port: 80}\n", "spec.gatewayClassName: required"},
		{"no listeners", "  gatewayClassName: weft\n", "spec.listeners: at least one listener is required"},
		{"duplicate name", "  gatewayClassName: weft\n  listeners:\n  - {name: a, protocol: HTTP, port: 80}\n  - {name: a, protocol: HTTP, port: 81}\n", `spec.listeners[1].name: duplicate listener name "a"`},
		{"same port and host", "  gatewayClassName: weft\n  listeners:\n  - {name: a, protocol: HTTP, port: 80}\n  - {name: b, protocol: HTTP, port: 80}\n", `spec.listeners[1]: another listener has port 80`},
		{"bad hostname", "  gatewayClassName: weft\n  listeners:\n  - {name: a, protocol: HTTP, port: 80, hostname: \"a..b\"}\n", `spec.listeners[0].hostname: "a..b"`},
		{"https without tls", "  gatewayClassName: weft\n  listeners:\n  - {name: a, protocol: HTTPS, port: 443}\n", "spec.listeners[0].tls: required for protocol HTTPS"},
		{"https passthrough", "  gatewayClassName: weft\n  listeners:\n  - {name: a, protocol: HTTPS, port: 443, tls: {mode: Passthrough, certificateRefs: [{name: c}]}}\n", "spec.listeners[0].tls.mode: must be Terminate"},
		{"cert kind", "  gatewayClassName: weft\n  listeners:\n  - {name: a, protocol: HTTPS, port: 443, tls: {certificateRefs: [{kind: ConfigMap, name: c}]}}\n", "spec.listeners[0].tls.certificateRefs[0].kind: must be Secret"},
		{"cert namespace", "  gatewayClassName: weft\n  listeners:\n  - {name: a, protocol: HTTPS, port: 443, tls: {certificateRefs: [{name: c, namespace: other}]}}\n", "spec.listeners[0].tls.certificateRefs[0].namespace: must be empty"},
		{"http with tls", "  gatewayClassName: weft\n  listeners:\n  - {name: a, protocol: HTTP, port: 80, tls: {certificateRefs: [{name: c}]}}\n", "spec.listeners[0].tls: must be empty for protocol HTTP"},
		{"bad protocol", "  gatewayClassName: weft\n  listeners:\n  - {name: a, protocol: QUIC, port: 80}\n", `spec.listeners[0].protocol: must be HTTP, HTTPS, TLS or TCP, got "QUIC"`},
		{"udp not yet", "  gatewayClassName: weft\n  listeners:\n  - {name: a, protocol: UDP, port: 80}\n", `spec.listeners[0].protocol: UDP is valid`},
		{"selector not yet", "  gatewayClassName: weft\n  listeners:\n  - {name: a, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: Selector}}}\n", "spec.listeners[0].allowedRoutes.namespaces.from: Selector is valid"},
		{"route kind", "  gatewayClassName: weft\n  listeners:\n  - {name: a, protocol: HTTP, port: 80, allowedRoutes: {kinds: [{kind: UDPRoute}]}}\n", "spec.listeners[0].allowedRoutes.kinds[0]: must be one of HTTPRoute, GRPCRoute"},
		{"ok passthrough and tcp", "  gatewayClassName: weft\n  listeners:\n  - {name: tls, protocol: TLS, port: 443, tls: {mode: Passthrough}}\n  - {name: db, protocol: TCP, port: 5432}\n", ""},
		{"tls terminate", "  gatewayClassName: weft\n  listeners:\n  - {name: tls, protocol: TLS, port: 443, tls: {mode: Terminate, certificateRefs: [{name: c}]}}\n", "spec.listeners[0].tls.mode: must be Passthrough for protocol TLS"},
		{"tcp hostname", "  gatewayClassName: weft\n  listeners:\n  - {name: db, protocol: TCP, port: 5432, hostname: db.example.com}\n", "spec.listeners[0].hostname: must be empty for protocol TCP"},
		{"tcp kinds", "  gatewayClassName: weft\n  listeners:\n  - {name: db, protocol: TCP, port: 5432, allowedRoutes: {kinds: [{kind: HTTPRoute}]}}\n", "must be one of TCPRoute"},
		{"addresses", "  gatewayClassName: weft\n  addresses: [{value: 10.0.0.1}]\n  listeners:\n  - {name: a, protocol: HTTP, port: 80}\n", "spec.addresses: must be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode([]byte(head + tt.spec))
			if err == nil {
				for _, o := range objs {
					if err = CheckSupported(o); err != nil {
						break
					}
				}
			}
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

// TestValidateSecret checks that only kubernetes.io/tls Secrets whose
// certificate and key parse and match are accepted.
func TestValidateSecret(t *testing.T) {
	crt, key := testKeyPair(t)
	_, otherKey := testKeyPair(t)
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	secret := func(typ, data string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: default}\ntype: " + typ + "\ndata:\n" + data
	}
	tests := []struct {
		name, doc, want string
	}{
		{"ok", secret("kubernetes.io/tls", "  tls.crt: "+b64(crt)+"\n  tls.key: "+b64(key)+"\n"), ""},
		{"opaque", secret("Opaque", "  tls.crt: "+b64(crt)+"\n  tls.key: "+b64(key)+"\n"), `type: must be "kubernetes.io/tls"`},
		{"no key", secret("kubernetes.io/tls", "  tls.crt: "+b64(crt)+"\n"), "data[tls.key]: required"},
		{"not PEM", secret("kubernetes.io/tls", "  tls.crt: "+b64([]byte("hello"))+"\n  tls.key: "+b64(key)+"\n"), "data: tls.crt and tls.key are not a PEM certificate and its key"},
		{"mismatched key", secret("kubernetes.io/tls", "  tls.crt: "+b64(crt)+"\n  tls.key: "+b64(otherKey)+"\n"), "data: tls.crt and tls.key are not a PEM certificate and its key"},
		{"extra key", secret("kubernetes.io/tls", "  tls.crt: "+b64(crt)+"\n  tls.key: "+b64(key)+"\n  password: "+b64([]byte("x"))+"\n"), "data.password: unknown key"},
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

// TestRouteHostnamesOnGatewayParents: hostnames are accepted on a route
// whose parents are all Gateways, refused with a Service parent.
func TestRouteHostnamesOnGatewayParents(t *testing.T) {
	const head = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: default}\nspec:\n  hostnames: [shop.example.com]\n  rules: [{backendRefs: [{name: a, port: 80}]}]\n"
	for _, tt := range []struct {
		name, parents string
		refused       bool
	}{
		{"gateway", "  parentRefs: [{name: gw}]\n", false},
		{"gateway and section", "  parentRefs: [{kind: Gateway, name: gw, sectionName: https}]\n", false},
		{"service", "  parentRefs: [{group: \"\", kind: Service, name: a}]\n", true},
		{"both", "  parentRefs: [{name: gw}, {group: \"\", kind: Service, name: a}]\n", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode([]byte(head + tt.parents))
			if err != nil {
				t.Fatal(err)
			}
			err = CheckSupported(objs[0])
			if tt.refused != (err != nil && strings.Contains(err.Error(), "spec.hostnames: must be empty when the route has a Service parent")) {
				t.Fatalf("CheckSupported = %v, refused want %v", err, tt.refused)
			}
		})
	}
}

// testKeyPair makes a self-signed PEM certificate and its key.
func testKeyPair(t *testing.T) (crt, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// TestValidateStreamRoutes checks TLSRoutes and TCPRoutes.
func TestValidateStreamRoutes(t *testing.T) {
	tls := "apiVersion: gateway.networking.k8s.io/v1\nkind: TLSRoute\nmetadata: {name: r, namespace: default}\nspec:\n"
	tcp := "apiVersion: gateway.networking.k8s.io/v1\nkind: TCPRoute\nmetadata: {name: r, namespace: default}\nspec:\n"
	const rule = "  rules: [{backendRefs: [{name: db, port: 5432}]}]\n"
	tests := []struct {
		name, doc, want string
	}{
		{"tls ok", tls + "  parentRefs: [{name: gw}]\n  hostnames: [db.example.com]\n" + rule, ""},
		{"tcp ok", tcp + "  parentRefs: [{name: gw, sectionName: db}]\n" + rule, ""},
		{"service parent of a TLSRoute", tls + "  parentRefs: [{group: \"\", kind: Service, name: db}]\n" + rule, "spec.parentRefs[0]: must be a Gateway"},
		{"a Service after a Gateway", tcp + "  parentRefs: [{name: gw}, {group: \"\", kind: Service, name: db}]\n" + rule, "spec.parentRefs[1]: must be a Gateway"},
		{"two rules", tcp + "  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{name: a, port: 1}]}, {backendRefs: [{name: b, port: 1}]}]\n", "spec.rules: exactly one rule is supported, got 2"},
		{"no backends", tcp + "  parentRefs: [{name: gw}]\n  rules: [{}]\n", "spec.rules[0].backendRefs: between 1 and 16 backendRefs are required, got 0"},
		{"bad sni", tls + "  parentRefs: [{name: gw}]\n  hostnames: [\"a_b\"]\n" + rule, `spec.hostnames[0]: "a_b"`},
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
