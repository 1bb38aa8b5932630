package demo

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
)

// canaryConfig is what the demo applies: per-version Services over the
// backend's workloads and an HTTPRoute that sends 20% of the calls to
// backend, and every call marked x-canary: 1, to v2 — the way users route
// on Kubernetes (Gateway API, GAMMA).
const canaryConfig = `apiVersion: v1
kind: Service
metadata: {name: backend-v1}
spec:
  selector: {app: backend, version: v1}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: backend-v2}
spec:
  selector: {app: backend, version: v2}
  ports: [{name: http, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend-canary}
spec:
  parentRefs: [{group: "", kind: Service, name: backend}]
  rules:
  - matches: [{headers: [{name: x-canary, value: "1"}]}]
    backendRefs: [{name: backend-v2}]
  - backendRefs:
    - {name: backend-v1, weight: 80}
    - {name: backend-v2, weight: 20}
`

// applyConfig applies canaryConfig with `weft apply`, as a user would.
func applyConfig(ctx context.Context, exe, dataDir string) error {
	cmd := exec.CommandContext(ctx, exe, "apply", "--data-dir", dataDir, "-f", "-")
	cmd.Stdin = bytes.NewBufferString(canaryConfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("applying the demo's routes: %w: %s", err, out)
	}
	return nil
}
