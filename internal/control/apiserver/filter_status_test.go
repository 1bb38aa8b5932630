package apiserver

import (
	"strings"
	"testing"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
)

// TestFilterStatus: a route whose ExtensionRef (on the rule or a
// backendRef) names a missing FaultInjection, or whose RequestMirror or
// ExternalAuth names a Service not in the mesh,
// is stored, and its ResolvedRefs condition is False with reason
// BackendNotFound naming each filter; once the FaultInjection exists and
// the mirror is a mesh service, ResolvedRefs is True.
func TestFilterStatus(t *testing.T) {
	srv, _, _ := newMeshServer(t)
	route := func(mirror string) string {
		return routeHead + `  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - filters:
    - {type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: chaos}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: ` + mirror + `}}}
    - {type: ExternalAuth, externalAuth: {protocol: HTTP, backendRef: {name: ` + mirror + `, port: 80}, http: {}}}
    backendRefs: [{name: web, filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: chaos}}]}]
`
	}
	resolved := func() (string, string, string) {
		t.Helper()
		_, body := do(t, srv, "GET", "/api/v1/resources/httproute/shop/web", "", token)
		o, err := api.Unmarshal([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range o.(*gatewayv1.HTTPRoute).Status.Parents[0].Conditions {
			if c.Type == "ResolvedRefs" {
				return string(c.Status), c.Reason, c.Message
			}
		}
		t.Fatalf("no ResolvedRefs condition in %s", body)
		return "", "", ""
	}
	if code, body := do(t, srv, "POST", "/api/v1/apply", route("nosuch"), token); code != 200 {
		t.Fatalf("apply = %d %s", code, body)
	}
	status, reason, msg := resolved()
	for _, want := range []string{`spec.rules[0].filters[0].extensionRef: no FaultInjection "chaos" in namespace "shop": the requests of the rule are answered 500`,
		`spec.rules[0].filters[1].requestMirror.backendRef: no Service "nosuch" in namespace "shop": nothing is mirrored`,
		`spec.rules[0].filters[2].externalAuth.backendRef: no Service "nosuch" in namespace "shop": the requests it checks are refused with 503`,
		`spec.rules[0].backendRefs[0].filters[0].extensionRef: no FaultInjection "chaos" in namespace "shop"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("ResolvedRefs message %q, want it to contain %q", msg, want)
		}
	}
	if status != "False" || reason != "BackendNotFound" {
		t.Errorf("ResolvedRefs %s %s, want False BackendNotFound", status, reason)
	}

	fi := "---\napiVersion: weft.dev/v1alpha1\nkind: FaultInjection\nmetadata: {name: chaos, namespace: shop}\nspec: {abort: {httpStatus: 503, percentage: 1}}\n"
	if code, body := do(t, srv, "POST", "/api/v1/apply", route("api")+fi, token); code != 200 {
		t.Fatalf("apply = %d %s", code, body)
	}
	if status, reason, msg := resolved(); status != "True" || reason != "ResolvedRefs" {
		t.Errorf("ResolvedRefs %s %s %q, want True", status, reason, msg)
	}
	if _, body := do(t, srv, "GET", "/api/v1/resources/faultinjections?namespace=shop", "", token); !strings.Contains(body, `"name": "chaos"`) {
		t.Errorf("list faultinjections = %s", body)
	}
}
