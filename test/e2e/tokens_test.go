package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestScopedJoinTokens: a token created for namespace shop and service
// account orders gets exactly that identity; with the same token a
// workload claiming another namespace, another service account or the
// control plane's identity is refused (and counted); the app does not see
// the token in its environment; renewals use the certificate, and once the
// token is revoked renewals and new workloads with it are refused.
func TestScopedJoinTokens(t *testing.T) {
	c := startControl(t, "--cert-ttl", "4s")
	r := c.cli("token", "create", "--namespace", "shop", "--service-account", "orders")
	if r.code != 0 {
		t.Fatalf("token create:\n%s", r)
	}
	token := strings.TrimSpace(r.stdout)
	id, _, ok := strings.Cut(token, ".")
	if !ok || !strings.Contains(r.stderr, "Created join token "+id) {
		t.Fatalf("token create printed %q / %q", r.stdout, r.stderr)
	}
	tokenEnv := []string{"WEFT_JOIN_TOKEN=" + token, "WEFT_ADMIN_TOKEN=not-for-the-app"}

	// The token's own identity works, and its app does not inherit the
	// token.
	envFile := filepath.Join(t.TempDir(), "app.env")
	admin := freePort(t)
	orders := startProc(t, "orders", tokenEnv, weftBin, "run", "--data-dir", c.dataDir, "--namespace", "shop", "--service", "orders",
		"--admin-port", strconv.Itoa(admin), "--", "sh", "-c", "env > "+envFile+"; exec sleep 3600")
	eventually(t, 20*time.Second, 100*time.Millisecond, "orders ready", func() error {
		if orders.exited() {
			return stopErr{fmt.Errorf("weft run exited: %v", orders.err)}
		}
		code, body, err := plainGet("http://" + addr(admin) + "/ready")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/ready: %d %s", code, body)
		}
		return err
	})
	eventually(t, 10*time.Second, 50*time.Millisecond, "app environment written", func() error {
		b, err := os.ReadFile(envFile)
		if err == nil && !strings.Contains(string(b), "WEFT_SERVICE=orders") {
			err = fmt.Errorf("incomplete env file")
		}
		return err
	})
	appEnv, _ := os.ReadFile(envFile)
	for _, secret := range []string{"WEFT_JOIN_TOKEN", "WEFT_ADMIN_TOKEN", token, "not-for-the-app"} {
		if strings.Contains(string(appEnv), secret) {
			t.Errorf("the app's environment contains %q:\n%s", secret, appEnv)
		}
	}

	// Other identities with the same token are refused by the CA.
	refusals := []struct {
		name, reason, want string
		args               []string
	}{
		{name: "another namespace", reason: "namespace", want: `allows namespace "shop" only`, args: []string{"--namespace", "default", "--service", "orders"}},
		{name: "another service account", reason: "service_account", want: `allows service account "orders" only`, args: []string{"--namespace", "shop", "--service", "payments"}},
		{name: "control plane identity", reason: "control_identity", want: "control plane's namespace", args: []string{"--namespace", "weft-system", "--service", "weft-control"}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			before := c.metric(t, "weft_ca_refusals_total", "reason", tt.reason)
			p := startProc(t, "refused", tokenEnv, append(append([]string{weftBin, "run", "--data-dir", c.dataDir}, tt.args...), "--", "sleep", "3600")...)
			code, err := p.wait(20 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if _, stderr := p.output(); code == 0 || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "PermissionDenied") {
				t.Errorf("weft run %v with a shop/orders token: exit %d, want refused with %q; stderr:\n%s", tt.args, code, tt.want, stderr)
			}
			if after := c.metric(t, "weft_ca_refusals_total", "reason", tt.reason); after != before+1 {
				t.Errorf("weft_ca_refusals_total{reason=%q} went from %v to %v, want +1", tt.reason, before, after)
			}
		})
	}

	// Renewals (every 2 s) work without the token...
	eventually(t, 10*time.Second, 100*time.Millisecond, "orders renewed its certificate", func() error {
		if _, stderr := orders.output(); !strings.Contains(stderr, "certificate renewed") {
			return fmt.Errorf("no renewal logged yet")
		}
		return nil
	})
	if n := c.metric(t, "weft_ca_certificates_issued_total", "credential", "certificate"); n < 1 {
		t.Errorf("weft_ca_certificates_issued_total{credential=certificate} = %v, want renewals counted", n)
	}

	// ...until the token is revoked.
	if r := c.cli("token", "revoke", id); r.code != 0 || !strings.Contains(r.stdout, "revoked") {
		t.Fatalf("token revoke:\n%s", r)
	}
	if r := c.cli("token", "list"); !strings.Contains(r.stdout, "revoked") || strings.Contains(r.stdout, token[len(id)+1:]) {
		t.Errorf("token list after revoke (want the token revoked, no secret):\n%s", r)
	}
	eventually(t, 10*time.Second, 100*time.Millisecond, "renewal refused after revocation", func() error {
		if _, stderr := orders.output(); !strings.Contains(stderr, "certificate renewal failed") || !strings.Contains(stderr, "revoked") {
			return fmt.Errorf("no refused renewal logged yet")
		}
		return nil
	})
	eventually(t, 10*time.Second, 100*time.Millisecond, "orders not ready once its certificate expired", func() error {
		code, _, err := plainGet("http://" + addr(admin) + "/ready")
		if err == nil && code == http.StatusOK {
			return fmt.Errorf("/ready still 200")
		}
		return nil
	})
	p := startProc(t, "revoked", tokenEnv, weftBin, "run", "--data-dir", c.dataDir, "--namespace", "shop", "--service", "orders", "--", "sleep", "3600")
	if code, err := p.wait(20 * time.Second); err != nil || code == 0 {
		t.Fatalf("weft run with a revoked token: exit %d, %v; want refused", code, err)
	}
	if _, stderr := p.output(); !strings.Contains(stderr, "revoked") {
		t.Errorf("weft run with a revoked token: stderr does not say revoked:\n%s", stderr)
	}
}

// metric reads one labelled sample of the control plane's /metrics (behind
// the admin token); 0 if the series does not exist yet.
func (c *control) metric(t *testing.T, name, label, value string) float64 {
	t.Helper()
	bundle, err := os.ReadFile(filepath.Join(c.dataDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(filepath.Join(c.dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(bundle)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "weft-control"}}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr(c.api)+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(admin)))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("control plane /metrics: %s %s", resp.Status, body)
	}
	samples, err := parseMetrics(string(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if s.name == name && s.labels[label] == value {
			return s.value
		}
	}
	return 0
}
