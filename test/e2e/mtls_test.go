package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// plaintextCall sends a plaintext HTTP/1.1 request to a workload's inbound
// port with a forged x-forwarded-client-cert and returns the demo backend's
// reply.
func plaintextCall(w *workload) (int, backendReply, error) {
	req, _ := http.NewRequest("GET", "http://"+addr(w.inbound)+"/", nil)
	req.Header.Set("X-Forwarded-Client-Cert", "By=spiffe://cluster.local/ns/default/sa/backend;URI=spiffe://cluster.local/ns/default/sa/admin")
	resp, err := plainClient.Do(req)
	if err != nil {
		return 0, backendReply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, backendReply{}, err
	}
	var br backendReply
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &br); err != nil {
			return resp.StatusCode, br, fmt.Errorf("decoding %q: %w", b, err)
		}
	}
	return resp.StatusCode, br, nil
}

// TestMTLSModes: in STRICT (the default) plaintext to an inbound port is
// refused; once the MeshConfig (or the service's annotation) says
// PERMISSIVE, a plaintext request reaches the app with no caller identity
// (a forged XFCC removed) and is counted with tls="false", while mTLS from
// a mesh client still carries its identity; back in STRICT, plaintext is
// refused again within seconds. The YAML is docs/security/mtls.md's.
func TestMTLSModes(t *testing.T) {
	c := startControl(t)
	backend := startBackend(t, c, "v1")
	client := startClient(t, c, "client")

	refused := func(what string) {
		t.Helper()
		eventually(t, 15*time.Second, 100*time.Millisecond, what+": plaintext refused", func() error {
			code, _, err := plaintextCall(backend)
			if err == nil {
				return fmt.Errorf("plaintext got %d", code)
			}
			return nil
		})
	}
	served := func(what string) {
		t.Helper()
		eventually(t, 15*time.Second, 100*time.Millisecond, what+": plaintext served", func() error {
			code, br, err := plaintextCall(backend)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("plaintext got %d", code)
			}
			if br.Caller != "" {
				return stopErr{fmt.Errorf("plaintext request reached the app with caller %q, want none (forged XFCC must be removed)", br.Caller)}
			}
			return nil
		})
		br, err := client.getBackend("http://backend/")
		if err != nil {
			t.Fatalf("%s: mTLS from a mesh client: %v", what, err)
		}
		if br.Caller != client.spiffeID() {
			t.Errorf("%s: mTLS caller %q, want %q", what, br.Caller, client.spiffeID())
		}
	}

	// The mesh client's call works in STRICT, so a refusal below is one.
	eventually(t, 15*time.Second, 100*time.Millisecond, "STRICT: the mesh client reaches backend", func() error {
		_, err := client.getBackend("http://backend/")
		return err
	})
	refused("STRICT (default)")

	c.apply(docYAML(t, "security/mtls.md", docMarked("mesh-permissive")))
	served("MeshConfig PERMISSIVE")
	samples, err := backend.metrics()
	if err != nil {
		t.Fatal(err)
	}
	const m = "http_server_request_duration_seconds_count"
	if n := sum(samples, m, map[string]string{"tls": "false", "source_identity": ""}); n < 1 {
		t.Errorf("no plaintext request counted with tls=\"false\":\n%s", describe(samples, m))
	}
	if n := sum(samples, m, map[string]string{"tls": "true", "source_identity": client.spiffeID()}); n < 1 {
		t.Errorf("no mTLS request counted with tls=\"true\" from %s:\n%s", client.spiffeID(), describe(samples, m))
	}

	c.apply(docYAML(t, "security/mtls.md", docMarked("mesh-strict")))
	refused("MeshConfig back to STRICT")

	svcYAML := docYAML(t, "security/mtls.md", docMarked("service-permissive"))
	c.apply(svcYAML)
	served("Service annotation PERMISSIVE")
	// Only the annotation changes: the Service resource is regenerated all
	// the same.
	c.apply(strings.Replace(svcYAML, "weft.dev/mtls-mode: PERMISSIVE", "weft.dev/mtls-mode: STRICT", 1))
	refused("Service annotation STRICT")
	c.apply(svcYAML)
	served("Service annotation PERMISSIVE again")

	if r := c.cli("delete", "service", "backend"); r.code != 0 {
		t.Fatalf("delete service: %s", r)
	}
	refused("Service annotation removed")

	// A mode the proxy would reject is refused by the API.
	bad := strings.Replace(docYAML(t, "security/mtls.md", docMarked("mesh-strict")), "STRICT", "DISABLE", 1)
	f := t.TempDir() + "/bad.yaml"
	if err := os.WriteFile(f, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := c.cli("apply", "-f", f); r.code == 0 || !strings.Contains(r.String(), "spec.mtls.mode") {
		t.Errorf("apply of mode DISABLE: %s; want a refusal naming spec.mtls.mode", r)
	}
}
