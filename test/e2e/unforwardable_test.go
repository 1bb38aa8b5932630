package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// brokenRoute has a rule whose backend does not exist and a rule without
// backendRefs next to a rule that works.
const brokenRoute = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: backend-broken
  namespace: default
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: backend
  rules:
  - matches:
    - path: {type: PathPrefix, value: /missing}
    backendRefs:
    - name: nosuch
      port: 80
  - matches:
    - path: {type: PathPrefix, value: /empty}
  - backendRefs:
    - name: backend
      port: 80
`

// TestUnforwardableRules: from outside, a route with a rule whose backend
// does not exist and a rule without backendRefs is accepted; the requests
// those rules match are answered 500 at once, every other request is
// served, a proxy started afterwards becomes ready and is served too, and
// `weft get httproute -o yaml` says why (ResolvedRefs False,
// BackendNotFound).
func TestUnforwardableRules(t *testing.T) {
	c := startControl(t)
	startBackend(t, c, "v1")
	client := startClient(t, c, "client")
	c.apply(brokenRoute)

	check := func(w *workload) {
		t.Helper()
		eventually(t, 10*time.Second, 50*time.Millisecond, "the route's rules take effect", func() error {
			for _, tc := range []struct {
				path string
				code int
			}{{"/missing/x", 500}, {"/empty", 500}, {"/healthz", 200}, {"/", 200}} {
				start := time.Now()
				r, err := w.get("http://backend" + tc.path)
				if err != nil {
					return err
				}
				if r.code != tc.code {
					return fmt.Errorf("GET %s = %d %q, want %d", tc.path, r.code, r.body, tc.code)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("GET %s took %s, want an answer at once", tc.path, d)
				}
			}
			return nil
		})
	}
	check(client)
	// A proxy that starts with this configuration becomes ready (its
	// first config is not NACKed) and is served.
	check(startClient(t, c, "late-client"))

	g := c.cli("get", "httproute", "backend-broken", "-o", "yaml")
	if g.code != 0 {
		t.Fatalf("weft get httproute:\n%s", g)
	}
	for _, want := range []string{"type: ResolvedRefs", "reason: BackendNotFound", `no Service "nosuch" in namespace "default"`,
		"spec.rules[1] has no backendRefs", "type: Accepted", "controllerName: weft.dev/mesh"} {
		// YAML folds long messages: compare with whitespace runs as one space.
		if !strings.Contains(strings.Join(strings.Fields(g.stdout), " "), want) {
			t.Errorf("weft get httproute -o yaml does not show %q:\n%s", want, g.stdout)
		}
	}
}
