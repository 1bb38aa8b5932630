package api

import (
	"strings"
	"testing"
)

// TestValidateErrors decodes small documents that are each wrong in one way
// and checks that the error names the field and says why.
func TestValidateErrors(t *testing.T) {
	const svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n"
	const hr = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: web}]\n"
	const gr = "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: g}]\n"
	const mc = "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec:\n"
	const dp = "apiVersion: weft.dev/v1alpha1\nkind: DestinationPolicy\nmetadata: {name: p}\nspec:\n  targetRef: {name: web}\n"
	const ap = "apiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: a}\nspec:\n  targetRef: {name: web}\n"
	many := func(item string, n int) string {
		return "[" + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + "]"
	}

	tests := []struct {
		name, in, want string
	}{
		// Service
		{"svc name", "apiVersion: v1\nkind: Service\nmetadata: {name: Web_1}\nspec: {selector: {app: w}}\n", `Service "Web_1": metadata.name: a lowercase RFC 1123 label`},
		{"svc no name", "apiVersion: v1\nkind: Service\nmetadata: {}\nspec: {selector: {app: w}}\n", `metadata.name: required`},
		{"svc bad namespace", "apiVersion: v1\nkind: Service\nmetadata: {name: w, namespace: A.B}\nspec: {selector: {app: w}}\n", `metadata.namespace: a lowercase RFC 1123 label`},
		{"svc mtls annotation", "apiVersion: v1\nkind: Service\nmetadata: {name: web, annotations: {weft.dev/mtls-mode: DISABLE}}\nspec: {selector: {app: w}}\n", `metadata.annotations[weft.dev/mtls-mode]: must be one of STRICT, PERMISSIVE, got "DISABLE"`},
		{"svc no selector", svc + "  ports: [{port: 80}]\n", `spec.selector: required`},
		{"svc port zero", svc + "  selector: {app: web}\n  ports: [{port: 0}]\n", `spec.ports[0].port: must be between 1 and 65535`},
		{"svc port high", svc + "  selector: {app: web}\n  ports: [{name: a, port: 80}, {name: b, port: 70000}]\n", `spec.ports[1].port: must be between 1 and 65535`},
		{"svc dup port names", svc + "  selector: {app: web}\n  ports: [{name: http, port: 80}, {name: http, port: 81}]\n", `spec.ports[1].name: duplicate port name "http"`},
		{"svc unnamed ports", svc + "  selector: {app: web}\n  ports: [{name: a, port: 80}, {port: 81}]\n", `spec.ports[1].name: required when a Service has more than one port`},
		// HTTPRoute
		{"hr no parents", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web}\nspec: {}\n", `spec.parentRefs: at least one parentRef is required`},
		{"hr parent kind", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web}\nspec:\n  parentRefs: [{kind: Pod, name: x}]\n", `spec.parentRefs[0].kind: must be Service (group "") or Gateway, got "Pod"`},
		{"hr parent service group", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web}\nspec:\n  parentRefs: [{kind: Service, name: x}]\n", `spec.parentRefs[0].group: must be "" (core) for kind Service`},
		{"hr parent name", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web}\nspec:\n  parentRefs: [{name: \"\"}]\n", `spec.parentRefs[0].name: required`},
		{"hr session name", hr + "  rules: [{sessionPersistence: {sessionName: \"a;b\"}}]\n", `spec.rules[0].sessionPersistence.sessionName: must be a valid cookie or header name`},
		{"hr session type", hr + "  rules: [{sessionPersistence: {type: Url}}]\n", `spec.rules[0].sessionPersistence.type: must be Cookie or Header, got "Url"`},
		{"hr session permanent", hr + "  rules: [{sessionPersistence: {cookieConfig: {lifetimeType: Permanent}}}]\n", `spec.rules[0].sessionPersistence.absoluteTimeout: required when cookieConfig.lifetimeType is Permanent`},
		{"hr session lifetime", hr + "  rules: [{sessionPersistence: {cookieConfig: {lifetimeType: Forever}}}]\n", `spec.rules[0].sessionPersistence.cookieConfig.lifetimeType: must be Session or Permanent, got "Forever"`},
		{"hr session header cookie", hr + "  rules: [{sessionPersistence: {type: Header, cookieConfig: {lifetimeType: Session}}}]\n", `spec.rules[0].sessionPersistence.cookieConfig: only applies to type Cookie`},
		{"hr session timeout", hr + "  rules: [{sessionPersistence: {absoluteTimeout: 1d}}]\n", `spec.rules[0].sessionPersistence.absoluteTimeout: invalid duration "1d"`},
		{"hr session too long", hr + "  rules: [{sessionPersistence: {absoluteTimeout: 2000h}}]\n", `spec.rules[0].sessionPersistence.absoluteTimeout: must be at most 1000h0m0s`},
		{"gr session name", gr + "  rules: [{sessionPersistence: {sessionName: \"\"}}]\n", `spec.rules[0].sessionPersistence.sessionName: must be a valid cookie or header name`},
		{"hr too many rules", hr + "  rules: " + many("{}", 17) + "\n", `spec.rules: at most 16 rules are allowed, got 17`},
		{"hr too many matches", hr + "  rules: [{matches: " + many("{}", 9) + "}]\n", `spec.rules[0].matches: at most 8 matches per rule are allowed, got 9`},
		{"hr path", hr + "  rules: [{matches: [{path: {value: api}}]}]\n", `spec.rules[0].matches[0].path.value: must start with "/", got "api"`},
		{"hr exact path", hr + "  rules: [{matches: [{}, {path: {type: Exact, value: x}}]}]\n", `spec.rules[0].matches[1].path.value: must start with "/"`},
		{"hr path regex", hr + "  rules: [{matches: [{path: {type: RegularExpression, value: \"(\"}}]}]\n", `spec.rules[0].matches[0].path.value: invalid regular expression`},
		{"hr path type", hr + "  rules: [{matches: [{path: {type: Glob, value: /x}}]}]\n", `spec.rules[0].matches[0].path.type: must be Exact, PathPrefix or RegularExpression`},
		{"hr header name", hr + "  rules: [{matches: [{headers: [{name: \"x y\", value: a}]}]}]\n", `spec.rules[0].matches[0].headers[0].name: invalid header name "x y"`},
		{"hr method", hr + "  rules: [{matches: [{method: get}]}]\n", `spec.rules[0].matches[0].method: must be one of`},
		{"hr backend name", hr + "  rules: [{backendRefs: [{port: 80}]}]\n", `spec.rules[0].backendRefs[0].name: required`},
		{"hr backend kind", hr + "  rules: [{backendRefs: [{name: a, kind: ServiceImport}]}]\n", `spec.rules[0].backendRefs[0].kind: must be Service, got "ServiceImport"`},
		{"hr backend weight", hr + "  rules: [{backendRefs: [{name: a}, {name: b, weight: 1000001}]}]\n", `spec.rules[0].backendRefs[1].weight: must be between 0 and 1000000`},
		{"hr backend port", hr + "  rules: [{backendRefs: [{name: a, port: 0}]}]\n", `spec.rules[0].backendRefs[0].port: must be between 1 and 65535`},
		{"hr timeout format", hr + "  rules: [{timeouts: {request: 1.5s}}]\n", `spec.rules[0].timeouts.request: invalid duration "1.5s"`},
		{"hr backend timeout longer", hr + "  rules: [{timeouts: {request: 1s, backendRequest: 2s}}]\n", `spec.rules[0].timeouts.backendRequest: must not be longer than timeouts.request`},
		{"hr retry attempts", hr + "  rules: [{retry: {attempts: 11}}]\n", `spec.rules[0].retry.attempts: must be between 1 and 10`},
		{"hr retry code", hr + "  rules: [{retry: {codes: [200]}}]\n", `spec.rules[0].retry.codes[0]: must be an HTTP status code`},
		{"hr filter header", hr + "  rules: [{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: \"a:b\", value: c}]}}]}]\n", `spec.rules[0].filters[0].requestHeaderModifier.set[0].name: invalid header name`},
		// GRPCRoute
		{"gr no parents", "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g}\nspec: {}\n", `spec.parentRefs: at least one parentRef is required`},
		{"gr empty method", gr + "  rules: [{matches: [{method: {}}]}]\n", `spec.rules[0].matches[0].method: at least one of service and method is required`},
		{"gr bad service", gr + "  rules: [{matches: [{method: {service: \"a b\"}}]}]\n", `spec.rules[0].matches[0].method.service: invalid gRPC service name`},
		{"gr header", gr + "  rules: [{matches: [{headers: [{name: \"\", value: x}]}]}]\n", `spec.rules[0].matches[0].headers[0].name: invalid header name`},
		{"gr backend weight", gr + "  rules: [{backendRefs: [{name: a, weight: -1}]}]\n", `spec.rules[0].backendRefs[0].weight: must be between 0 and 1000000`},
		{"gr too many matches", gr + "  rules: [{matches: " + many("{method: {service: a}}", 9) + "}]\n", `spec.rules[0].matches: at most 8 matches`},
		// MeshConfig
		{"mc name", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec: {}\n", `MeshConfig "mesh": metadata.name: must be "default"`},
		{"mc trust domain", mc + "  trustDomain: Not_DNS\n", `spec.trustDomain: a lowercase RFC 1123 subdomain`},
		{"mc mtls", mc + "  mtls: {mode: DISABLE}\n", `spec.mtls.mode: must be one of STRICT, PERMISSIVE, got "DISABLE"`},
		{"mc mtls lower case", mc + "  mtls: {mode: permissive}\n", `spec.mtls.mode: must be one of STRICT, PERMISSIVE, got "permissive"`},
		{"mc lb", mc + "  defaults: {loadBalancer: FASTEST}\n", `spec.defaults.loadBalancer: must be one of P2C_EWMA, ROUND_ROBIN, RANDOM, LEAST_REQUEST, RING_HASH, MAGLEV, got "FASTEST"`},
		{"mc lb hashing", mc + "  defaults: {loadBalancer: MAGLEV}\n", `spec.defaults.loadBalancer: MAGLEV needs a hash key: set it per service in a DestinationPolicy`},
		{"mc outlier", mc + "  defaults: {outlierDetection: {maxEjectionPercent: 200}}\n", `spec.defaults.outlierDetection.maxEjectionPercent: must be between 0 and 100`},
		{"mc unknown", mc + "  trustdomain: x\n", `spec.trustdomain: unknown field`},
		// DestinationPolicy
		{"dp no target", "apiVersion: weft.dev/v1alpha1\nkind: DestinationPolicy\nmetadata: {name: p}\nspec: {}\n", `spec.targetRef.name: required`},
		{"dp target kind", "apiVersion: weft.dev/v1alpha1\nkind: DestinationPolicy\nmetadata: {name: p}\nspec: {targetRef: {kind: Gateway, name: x}}\n", `spec.targetRef.kind: must be Service, got "Gateway"`},
		{"dp lb", dp + "  loadBalancer: round_robin\n", `spec.loadBalancer: must be one of`},
		{"dp 5xx", dp + "  outlierDetection: {consecutive5xx: -1}\n", `spec.outlierDetection.consecutive5xx: must be between 0 and 1000`},
		{"dp gateway errors", dp + "  outlierDetection: {consecutiveGatewayErrors: 1001}\n", `spec.outlierDetection.consecutiveGatewayErrors: must be between 0 and 1000`},
		{"dp connect failures", dp + "  outlierDetection: {consecutiveConnectFailures: -2}\n", `spec.outlierDetection.consecutiveConnectFailures: must be between 0 and 1000`},
		{"dp max ejection time", dp + "  outlierDetection: {baseEjectionTime: 10s, maxEjectionTime: 5s}\n", `spec.outlierDetection.maxEjectionTime: must not be shorter than baseEjectionTime (10s)`},
		{"dp ejection too long", dp + "  outlierDetection: {baseEjectionTime: 2h}\n", `spec.outlierDetection.baseEjectionTime: must be between 1ms and 1h0m0s`},
		{"dp hash missing", dp + "  loadBalancer: RING_HASH\n", `spec.consistentHash: required by loadBalancer RING_HASH`},
		{"dp hash unused", dp + "  loadBalancer: RANDOM\n  consistentHash: {header: x}\n", `spec.consistentHash: only applies to loadBalancer RING_HASH or MAGLEV, got "RANDOM"`},
		{"dp hash two keys", dp + "  loadBalancer: MAGLEV\n  consistentHash: {header: x, sourceIdentity: true}\n", `spec.consistentHash: exactly one of header, cookie, queryParameter and sourceIdentity must be set, got 2`},
		{"dp hash no key", dp + "  loadBalancer: MAGLEV\n  consistentHash: {}\n", `spec.consistentHash: exactly one of header, cookie, queryParameter and sourceIdentity must be set, got 0`},
		{"dp hash header", dp + "  loadBalancer: RING_HASH\n  consistentHash: {header: \"a b\"}\n", `spec.consistentHash.header: invalid header name "a b"`},
		{"dp hash cookie", dp + "  loadBalancer: RING_HASH\n  consistentHash: {cookie: {name: \"\"}}\n", `spec.consistentHash.cookie.name: invalid cookie name ""`},
		{"dp virtual nodes", dp + "  loadBalancer: RING_HASH\n  consistentHash: {header: x, virtualNodes: 5000}\n", `spec.consistentHash.virtualNodes: must be between 1 and 4096`},
		{"dp virtual nodes with maglev", dp + "  loadBalancer: MAGLEV\n  consistentHash: {header: x, virtualNodes: 64}\n", `spec.consistentHash.virtualNodes: must be between 1 and 4096, with loadBalancer RING_HASH`},
		{"dp maglev not prime", dp + "  loadBalancer: MAGLEV\n  consistentHash: {header: x, maglevTableSize: 65536}\n", `spec.consistentHash.maglevTableSize: must be a prime between 251 and 5000011`},
		{"dp interval", dp + "  outlierDetection: {interval: soon}\n", `spec.outlierDetection.interval: invalid duration "soon"`},
		{"dp ejection time", dp + "  outlierDetection: {consecutive5xx: 1, baseEjectionTime: -1s}\n", `spec.outlierDetection.baseEjectionTime: must be greater than 0`},
		{"dp ejection percent", dp + "  outlierDetection: {consecutive5xx: 1, maxEjectionPercent: 101}\n", `spec.outlierDetection.maxEjectionPercent: must be between 0 and 100`},
		{"dp attempts", dp + "  retry: {attempts: 11}\n", `spec.retry.attempts: must be between 0 and 10`},
		{"dp per try", dp + "  retry: {attempts: 1, perTryTimeout: \"5\"}\n", `spec.retry.perTryTimeout: invalid duration "5"`},
		{"dp retry on", dp + "  retry: {attempts: 1, retryOn: [5xx, \"404\"]}\n", `spec.retry.retryOn[1]: must be one of 5xx, gateway-error, reset, connect-failure, retriable-4xx, aborted, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable, unknown, got "404"`},
		{"dp type", dp + "  retry: {attempts: three}\n", `spec.retry.attempts: cannot be string, want an integer`},
		// AuthorizationPolicy
		{"ap action", ap + "  action: REJECT\n", `spec.action: must be ALLOW, DENY or AUDIT, got "REJECT"`},
		{"ap identity", ap + "  rules: [{from: [{identities: [\"orders\"]}]}]\n", `spec.rules[0].from[0].identities[0]: must be a SPIFFE ID`},
		{"ap identity star", ap + "  rules: [{from: [{identities: [\"spiffe://a/*/b\"]}]}]\n", `spec.rules[0].from[0].identities[0]: "*" is allowed only alone, at the start or at the end`},
		{"ap empty from", ap + "  rules: [{from: [{}]}]\n", `spec.rules[0].from[0]: set identities, notIdentities, namespaces`},
		{"ap namespace", ap + "  rules: [{from: [{namespaces: [Shop]}]}]\n", `spec.rules[0].from[0].namespaces[0]: a lowercase RFC 1123 label`},
		{"ap empty to", ap + "  rules: [{to: [{}]}]\n", `spec.rules[0].to[0]: set methods, notMethods, paths, notPaths, ports, hosts or notHosts`},
		{"ap method", ap + "  rules: [{to: [{methods: [get]}]}]\n", `spec.rules[0].to[0].methods[0]: must be an upper-case HTTP method`},
		{"ap path", ap + "  rules: [{to: [{paths: [api]}]}]\n", `spec.rules[0].to[0].paths[0]: must start with "/", be "*" or a suffix`},
		{"ap path star", ap + "  rules: [{to: [{paths: [\"/a/*/b\"]}]}]\n", `spec.rules[0].to[0].paths[0]: "*" is allowed only alone, at the start or at the end`},
		{"ap port", ap + "  rules: [{to: [{ports: [0]}]}]\n", `spec.rules[0].to[0].ports[0]: must be between 1 and 65535`},
		{"ap header", ap + "  rules: [{when: [{header: \"a b\", values: [a]}]}]\n", `spec.rules[0].when[0].header: invalid header name "a b"`},
		{"ap no header", ap + "  rules: [{when: [{values: [a]}]}]\n", `spec.rules[0].when[0].header: required (or key)`},
		{"ap key", ap + "  rules: [{when: [{key: \"request.body\", values: [a]}]}]\n", `spec.rules[0].when[0].key: must be request.headers[<name>]`},
		{"ap key ip", ap + "  rules: [{when: [{key: source.ip, values: [nope]}]}]\n", `spec.rules[0].when[0].values[0]: must be an IP address or CIDR`},
		{"ap ipBlocks", ap + "  rules: [{from: [{ipBlocks: [\"10.0.0.0/33\"]}]}]\n", `spec.rules[0].from[0].ipBlocks[0]: must be an IP address or CIDR`},
		{"ap notPaths", ap + "  rules: [{to: [{notPaths: [\"/a*b*\"]}]}]\n", `spec.rules[0].to[0].notPaths[0]: "*" is allowed only alone`},
		{"ap hosts", ap + "  rules: [{to: [{hosts: [\"*a*\"]}]}]\n", `spec.rules[0].to[0].hosts[0]: "*" is allowed only alone`},
		{"ap notIdentities", ap + "  rules: [{from: [{notIdentities: [\"orders\"]}]}]\n", `spec.rules[0].from[0].notIdentities[0]: must be a SPIFFE ID`},
		{"ap notNamespaces", ap + "  rules: [{from: [{notNamespaces: [Shop]}]}]\n", `spec.rules[0].from[0].notNamespaces[0]: a lowercase RFC 1123 label`},
		{"ap target and selector", ap + "  selector: {matchLabels: {app: web}}\n", `spec.selector: set targetRef or selector, not both`},
		{"ap selector label", "apiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {app: \"a b\"}}\n", `spec.selector.matchLabels: value of "app"`},
		{"mesh default action", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec:\n  authorization: {defaultAction: AUDIT}\n", `spec.authorization.defaultAction: must be ALLOW or DENY, got "AUDIT"`},
		{"ap values", ap + "  rules: [{when: [{header: x-a}]}]\n", `spec.rules[0].when[0].values: at least one value is required`},
		{"ap unknown", ap + "  rules: [{form: []}]\n", `spec.rules[0].form: unknown field`},
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

func TestValidateCollectsAllErrors(t *testing.T) {
	_, err := Decode([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 0}]}\n"))
	var inv *InvalidError
	if !errorsAs(err, &inv) {
		t.Fatalf("error %v is not an *InvalidError", err)
	}
	if len(inv.Errors) != 2 {
		t.Errorf("got %d field errors, want 2: %v", len(inv.Errors), inv)
	}
}

func TestValidateAcceptsGood(t *testing.T) {
	objs, err := Decode(mustRead(t, "testdata/mesh.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := Validate(o); err != nil {
			t.Errorf("Validate(%s) = %v", KeyOf(o), err)
		}
	}
	if err := (&MeshConfig{}).Validate(); err == nil {
		t.Error("MeshConfig without a name accepted")
	}
}

// TestValidateMTLSModes checks that both mutual-TLS modes are accepted on a
// MeshConfig and on a Service annotation.
func TestValidateMTLSModes(t *testing.T) {
	for _, mode := range []string{MTLSStrict, MTLSPermissive} {
		docs := "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {mtls: {mode: " + mode + "}}\n---\n" +
			"apiVersion: v1\nkind: Service\nmetadata: {name: web, annotations: {weft.dev/mtls-mode: " + mode + "}}\nspec: {selector: {app: web}}\n"
		objs, err := Decode([]byte(docs))
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		for _, o := range objs {
			if err := Validate(o); err != nil {
				t.Errorf("%s: Validate(%s) = %v", mode, KeyOf(o), err)
			}
		}
	}
}
