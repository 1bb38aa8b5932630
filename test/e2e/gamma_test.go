package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// evilConsumerRoute is a consumer route: an HTTPRoute in namespace evil
// attached to default/backend, sending everything to backend-v2.
const evilConsumerRoute = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: hijack
  namespace: evil
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: backend
    namespace: default
  rules:
  - backendRefs:
    - name: backend-v2
      namespace: default
      port: 80
`

// allToV1Route is a producer route sending all traffic for backend to
// backend-v1.
const allToV1Route = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: backend-to-v1
  namespace: default
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: backend
  rules:
  - backendRefs:
    - name: backend-v1
      port: 80
`

// wantStreak polls until n requests in a row from client reach version.
func wantStreak(t *testing.T, client *workload, version string, n int, what string) {
	t.Helper()
	eventually(t, 5*time.Second, 20*time.Millisecond, what, func() error {
		for i := range n {
			br, err := client.getBackend("http://backend.default/")
			if err != nil {
				return err
			}
			if br.Version != version {
				return fmt.Errorf("request %d from %s reached %s, want %s", i, client.spiffeID(), br.Version, version)
			}
		}
		return nil
	})
}

// TestGAMMAConsumerRouteScoped: an HTTPRoute in namespace evil whose parent
// is default/backend (a consumer route) routes the calls of evil's
// workloads only; a caller in default is unaffected, and a producer route
// in default then applies to it but not to evil's callers, for whom the
// consumer route wins.
func TestGAMMAConsumerRouteScoped(t *testing.T) {
	c := startControl(t)
	startBackend(t, c, "v1")
	startBackend(t, c, "v2")
	client := startClient(t, c, "client")
	evil := startWorkload(t, c, wlOpts{service: "client", namespace: "evil", cmd: []string{"sleep", "3600"}})
	waitBothVersions(t, client)

	c.apply(versionServices + "---" + evilConsumerRoute)
	wantStreak(t, evil, "v2", 10, "consumer route in effect for its namespace")
	// The default caller has the route in its configuration...
	eventually(t, 5*time.Second, 20*time.Millisecond, "default caller has received the consumer route", func() error {
		d, err := client.configDump()
		if err != nil {
			return err
		}
		if !strings.Contains(d, "evil/hijack/0") {
			return fmt.Errorf("evil/hijack/0 not in the config dump")
		}
		return nil
	})
	// ... and it does not apply: its traffic still spreads over both
	// versions.
	waitBothVersions(t, client)

	c.apply(allToV1Route)
	wantStreak(t, client, "v1", 10, "producer route in effect for the default caller")
	wantStreak(t, evil, "v2", 10, "consumer route still wins for its namespace")
}
