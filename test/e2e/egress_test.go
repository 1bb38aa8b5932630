package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestEgress checks the outbound traffic policy and ExternalServices
// through a real control plane and sidecar, with httptest servers on
// loopback standing in for the outside: under ALLOW_ANY an undeclared host
// passes; the docs' REGISTRY_ONLY MeshConfig refuses it (HTTP and CONNECT,
// 502, x-weft-reason: registry-only, a body naming the host and the fix,
// counted by host class); the docs' ExternalService lets it through again,
// counted and logged as a mesh call to local-api.default; the docs' TLS
// origination reaches a TLS server the app calls over plain HTTP, and with
// a wrong CA the call is a 502 tls-origination that never reaches the
// server in plaintext; hostile ExternalServices are refused when applied.
func TestEgress(t *testing.T) {
	c := startControl(t)
	client := startClient(t, c, "egress-client")

	var plainHits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		fmt.Fprint(w, "outside")
	}))
	t.Cleanup(plain.Close)
	_, plainPort, _ := net.SplitHostPort(plain.Listener.Addr().String())
	plainURL := "http://localhost:" + plainPort + "/x"
	ipURL := "http://127.0.0.1:" + plainPort + "/x"

	if r, err := client.get(plainURL); err != nil || r.code != 200 || r.body != "outside" {
		t.Fatalf("ALLOW_ANY: GET %s = %+v, %v; want 200 outside", plainURL, r, err)
	}

	c.apply(docYAML(t, "egress.md", docMarked("registry-only")))
	eventually(t, 10*time.Second, 100*time.Millisecond, "REGISTRY_ONLY in effect", func() error {
		r, err := client.get(plainURL)
		if err != nil {
			return err
		}
		if r.code != http.StatusBadGateway {
			return fmt.Errorf("status %d, want 502", r.code)
		}
		return nil
	})
	hitsBefore := plainHits.Load()
	const N = 20
	for i := range N {
		u := plainURL
		if i%2 == 1 {
			u = ipURL
		}
		r, err := client.get(u)
		if err != nil {
			t.Fatal(err)
		}
		if r.code != http.StatusBadGateway || r.header.Get("X-Weft-Reason") != "registry-only" ||
			!strings.Contains(r.body, "is not a mesh service and no ExternalService declares it") || !strings.Contains(r.body, "spec.hosts: [") {
			t.Fatalf("GET %s under REGISTRY_ONLY = %d %q %q", u, r.code, r.header.Get("X-Weft-Reason"), r.body)
		}
	}
	if code, reason := connectStatus(t, client.outbound, "localhost:"+plainPort); code != http.StatusBadGateway || reason != "registry-only" {
		t.Fatalf("CONNECT under REGISTRY_ONLY = %d %q, want 502 registry-only", code, reason)
	}
	if n := plainHits.Load() - hitsBefore; n != 0 {
		t.Fatalf("the outside server got %d requests while refused, want 0", n)
	}
	samples, err := client.metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		class, kind string
		min         float64
	}{{"name", "http", N / 2}, {"ip", "http", N / 2}, {"name", "connect", 1}} {
		if got := sum(samples, "weft_proxy_egress_refused_total", map[string]string{"host_class": want.class, "kind": want.kind}); got < want.min {
			t.Errorf("refused{host_class=%s,kind=%s} = %v, want >= %v\n%s", want.class, want.kind, got, want.min, describe(samples, "weft_proxy_egress_refused_total"))
		}
	}

	// Declared: localhost passes and is observed as local-api.default; the
	// IP literal stays refused.
	c.apply(docYAML(t, "egress.md", docMarked("external-service")))
	eventually(t, 10*time.Second, 100*time.Millisecond, "ExternalService in effect", func() error {
		r, err := client.get(plainURL)
		if err != nil {
			return err
		}
		if r.code != 200 {
			return fmt.Errorf("status %d %q, want 200", r.code, r.body)
		}
		return nil
	})
	ok, refused := 0, 0
	for i := range N {
		u := plainURL
		if i%2 == 1 {
			u = ipURL
		}
		r, err := client.get(u)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case u == plainURL && r.code == 200 && r.body == "outside":
			ok++
		case u == ipURL && r.code == http.StatusBadGateway && r.header.Get("X-Weft-Reason") == "registry-only":
			refused++
		default:
			t.Fatalf("GET %s = %d %q", u, r.code, r.body)
		}
	}
	if ok != N/2 || refused != N/2 {
		t.Fatalf("declared %d/%d ok, undeclared %d/%d refused", ok, N/2, refused, N/2)
	}
	if code, _ := connectStatus(t, client.outbound, "localhost:"+plainPort); code != 200 {
		t.Fatalf("CONNECT to a declared host = %d, want 200", code)
	}
	eventually(t, 5*time.Second, 100*time.Millisecond, "declared calls counted and logged", func() error {
		samples, err := client.metrics()
		if err != nil {
			return err
		}
		if got := sum(samples, "http_client_request_duration_seconds_count", map[string]string{"destination_service": "local-api.default", "http_response_status_code": "200"}); got < N/2 {
			return fmt.Errorf("client requests to local-api.default = %v, want >= %d\n%s", got, N/2, describe(samples, "http_client_request_duration_seconds_count"))
		}
		lines := 0
		for _, l := range client.accessLines() {
			if l.Destination == "local-api.default" && l.Path == "/x" && l.Status == 200 {
				lines++
			}
		}
		if lines < N/2 {
			return fmt.Errorf("%d access lines for local-api.default, want >= %d", lines, N/2)
		}
		if got := sum(samples, "weft_tcp_connections_total", map[string]string{"listener": "outbound", "destination_service": "local-api.default"}); got < 1 {
			return fmt.Errorf("CONNECT tunnels to local-api.default = %v, want >= 1\n%s", got, describe(samples, "weft_tcp_connections_total"))
		}
		return nil
	})
	if r := c.cli("get", "externalservices"); r.code != 0 || !strings.Contains(r.stdout, "local-api") || !strings.Contains(r.stdout, "localhost") {
		t.Errorf("weft get externalservices:\n%s", r)
	}

	// TLS origination: the app speaks plain HTTP, the server sees TLS.
	var tlsHits, plainTLSHits atomic.Int64
	secure := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			plainTLSHits.Add(1)
		}
		tlsHits.Add(1)
		fmt.Fprintf(w, "secure %s", r.URL.Path)
	}))
	secure.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	secure.StartTLS()
	t.Cleanup(secure.Close)
	_, securePort, _ := net.SplitHostPort(secure.Listener.Addr().String())
	secureURL := "http://127.0.0.1:" + securePort + "/pay"
	doc := docYAML(t, "egress.md", docMarked("tls-origination"))

	c.apply(withCA(t, doc, otherCA(t)))
	eventually(t, 10*time.Second, 100*time.Millisecond, "TLS origination with a wrong CA", func() error {
		r, err := client.get(secureURL)
		if err != nil {
			return err
		}
		if r.code != http.StatusBadGateway || r.header.Get("X-Weft-Reason") != "tls-origination" {
			return fmt.Errorf("status %d %q %q, want 502 tls-origination", r.code, r.header.Get("X-Weft-Reason"), r.body)
		}
		if !strings.Contains(r.body, "certificate") {
			return stopErr{fmt.Errorf("body %q does not name the certificate failure", r.body)}
		}
		return nil
	})
	if n := tlsHits.Load(); n != 0 {
		t.Fatalf("the TLS server served %d requests with an unverified certificate, want 0", n)
	}

	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.Certificate().Raw})
	c.apply(withCA(t, doc, string(ca)))
	eventually(t, 10*time.Second, 100*time.Millisecond, "TLS origination with the server's CA", func() error {
		r, err := client.get(secureURL)
		if err != nil {
			return err
		}
		if r.code != 200 || r.body != "secure /pay" {
			return fmt.Errorf("status %d %q, want 200", r.code, r.body)
		}
		return nil
	})
	for range N {
		if r, err := client.get(secureURL); err != nil || r.code != 200 {
			t.Fatalf("GET %s = %+v, %v", secureURL, r, err)
		}
	}
	if n := plainTLSHits.Load(); n != 0 {
		t.Fatalf("the TLS server saw %d plaintext requests", n)
	}
	samples, err = client.metrics()
	if err != nil {
		t.Fatal(err)
	}
	if got := sum(samples, "http_client_request_duration_seconds_count", map[string]string{"destination_service": "secure-api.default", "http_response_status_code": "200", "tls": "true"}); got < N {
		t.Errorf("TLS-originated requests to secure-api.default = %v, want >= %d\n%s", got, N, describe(samples, "http_client_request_duration_seconds_count"))
	}

	// Hostile ExternalServices are refused when applied.
	for _, tc := range []struct{ name, yaml, want string }{
		{"match-all", "hosts: [\"*\"]", `spec.hosts[0]: "*" would match every host`},
		{"mesh-service", "hosts: [egress-client]", `spec.hosts[0]: "egress-client" is mesh service egress-client.default`},
		{"top-level-wildcard", "hosts: [\"*.com\"]", `would match every name under a top-level domain`},
		{"insecure", "hosts: [a.example.com]\n  tls: {mode: ORIGINATE, insecureSkipVerify: true}", "spec.tls.insecureSkipVerify: must be false"},
	} {
		y := "apiVersion: weft.dev/v1alpha1\nkind: ExternalService\nmetadata: {name: bad, namespace: default}\nspec:\n  " + tc.yaml + "\n"
		r := applyFails(t, c, y)
		if !strings.Contains(r.stderr+r.stdout, tc.want) {
			t.Errorf("%s: apply refused without %q:\n%s", tc.name, tc.want, r)
		}
	}
}

// connectStatus sends CONNECT authority through the outbound listener on
// port and returns the status and x-weft-reason of the answer.
func connectStatus(t *testing.T, port int, authority string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr(port), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Weft-Reason")
}

var pemBlock = regexp.MustCompile(`(?s)-----BEGIN CERTIFICATE-----.*-----END CERTIFICATE-----\n`)

// withCA replaces the placeholder certificate of the docs' TLS example
// with caPEM, indented like it.
func withCA(t *testing.T, doc, caPEM string) string {
	t.Helper()
	if !pemBlock.MatchString(doc) {
		t.Fatal("docs/egress.md tls-origination: no certificate placeholder")
	}
	indented := "-----" + strings.TrimPrefix(strings.ReplaceAll(strings.TrimSpace(caPEM), "\n", "\n      "), "-----") + "\n"
	return pemBlock.ReplaceAllLiteralString(doc, indented)
}

// otherCA is the PEM of a fresh self-signed CA that signed nothing.
func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not the server's CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// applyFails runs `weft apply -f` on yaml and fails the test unless the
// command fails.
func applyFails(t *testing.T, c *control, yaml string) cliResult {
	t.Helper()
	f := filepath.Join(t.TempDir(), "apply.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.cli("apply", "-f", f)
	if r.code == 0 {
		t.Fatalf("apply succeeded, want a refusal:\n%s", yaml)
	}
	return r
}

// TestEgressGateway sends a declared host's calls through an egress
// gateway (`weft run --egress`, the docs' ExternalService with
// egressGateway): N plain HTTP calls from the client all reach the outside
// server, each counted by the gateway (inbound from the client, outbound
// to the ExternalService) and by the client as calls to the gateway; the
// outside never sees the caller's identity header; CONNECT to the host and
// mesh services through the gateway are refused.
func TestEgressGateway(t *testing.T) {
	c := startControl(t)
	client := startClient(t, c, "egress-client")
	gw := startWorkload(t, c, wlOpts{service: "egress-gw", cmd: []string{"sleep", "3600"}, flags: []string{"--egress"}})

	var hits, xfcc atomic.Int64
	outside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("X-Forwarded-Client-Cert") != "" {
			xfcc.Add(1)
		}
		fmt.Fprint(w, "outside")
	}))
	t.Cleanup(outside.Close)
	_, port, _ := net.SplitHostPort(outside.Listener.Addr().String())
	u := "http://localhost:" + port + "/x"

	c.apply(docYAML(t, "egress.md", docMarked("registry-only")))
	eventually(t, 10*time.Second, 100*time.Millisecond, "REGISTRY_ONLY in effect", func() error {
		if r, err := client.get(u); err != nil || r.code != http.StatusBadGateway {
			return fmt.Errorf("GET %s = %+v, %v; want 502", u, r, err)
		}
		return nil
	})
	c.apply(docYAML(t, "egress.md", docMarked("egress-gateway")))
	eventually(t, 15*time.Second, 100*time.Millisecond, "calls through the gateway", func() error {
		r, err := client.get(u)
		if err != nil {
			return err
		}
		if r.code != 200 || r.body != "outside" {
			return fmt.Errorf("status %d %q, want 200", r.code, r.body)
		}
		return nil
	})
	const N = 20
	before := hits.Load()
	for range N {
		if r, err := client.get(u); err != nil || r.code != 200 || r.body != "outside" {
			t.Fatalf("GET %s = %+v, %v", u, r, err)
		}
	}
	if got := hits.Load() - before; got != N {
		t.Fatalf("the outside server got %d of %d calls", got, N)
	}
	if n := xfcc.Load(); n != 0 {
		t.Fatalf("%d calls reached the outside with the caller's identity header", n)
	}
	eventually(t, 5*time.Second, 100*time.Millisecond, "the gateway counts the calls", func() error {
		gs, err := gw.metrics()
		if err != nil {
			return err
		}
		if got := sum(gs, "http_client_request_duration_seconds_count", map[string]string{"source_service": "egress-gw.default", "destination_service": "gw-api.default", "http_response_status_code": "200"}); got < N {
			return fmt.Errorf("gateway outbound calls to gw-api.default = %v, want >= %d\n%s", got, N, describe(gs, "http_client_request_duration_seconds_count"))
		}
		if got := sum(gs, "http_server_request_duration_seconds_count", map[string]string{"source_service": "egress-client.default", "http_response_status_code": "200"}); got < N {
			return fmt.Errorf("gateway inbound requests from egress-client = %v, want >= %d\n%s", got, N, describe(gs, "http_server_request_duration_seconds_count"))
		}
		cs, err := client.metrics()
		if err != nil {
			return err
		}
		if got := sum(cs, "http_client_request_duration_seconds_count", map[string]string{"destination_service": "egress-gw.default", "http_response_status_code": "200"}); got < N {
			return fmt.Errorf("client calls to egress-gw.default = %v, want >= %d", got, N)
		}
		return nil
	})
	if code, reason := connectStatus(t, client.outbound, "localhost:"+port); code != http.StatusBadGateway || reason != "egress-gateway" {
		t.Errorf("CONNECT to a gateway-bound host = %d %q, want 502 egress-gateway", code, reason)
	}
	// A mesh caller must not borrow the gateway's identity: a request to
	// the gateway naming a mesh service is refused there.
	if r, err := client.get("http://egress-gw/x"); err != nil || r.code != http.StatusForbidden || r.header.Get("X-Weft-Reason") != "egress-gateway" {
		t.Errorf("GET http://egress-gw/x = %+v, %v; want 403 egress-gateway", r, err)
	}

	// The MeshConfig's default gateway carries an ExternalService that
	// names none: the docs' local-api is then called from the gateway.
	if r := c.cli("delete", "externalservice", "gw-api"); r.code != 0 {
		t.Fatalf("delete gw-api:\n%s", r)
	}
	c.apply(docYAML(t, "egress.md", docMarked("mesh-egress-gateway")))
	c.apply(docYAML(t, "egress.md", docMarked("external-service")))
	eventually(t, 10*time.Second, 100*time.Millisecond, "local-api through the default gateway", func() error {
		if r, err := client.get(u); err != nil || r.code != 200 {
			return fmt.Errorf("GET %s = %+v, %v", u, r, err)
		}
		gs, err := gw.metrics()
		if err != nil {
			return err
		}
		if got := sum(gs, "http_client_request_duration_seconds_count", map[string]string{"source_service": "egress-gw.default", "destination_service": "local-api.default", "http_response_status_code": "200"}); got < 1 {
			return fmt.Errorf("gateway outbound calls to local-api.default = %v", got)
		}
		return nil
	})
}
