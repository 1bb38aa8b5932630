package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/control/apiserver"
	"weft.dev/weft/internal/control/store"
	"weft.dev/weft/internal/control/tokens"
)

// Registered here only if no other test file of the package did.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata/")
	}
}

func apiTestUpdating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// apiTestGolden compares got with testdata/apiclient/<name>, rewriting it
// under -update.
func apiTestGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "apiclient", name)
	if apiTestUpdating() {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

const apiTestToken = "test-admin-token"

// apiTestControlPlane serves the real API handler and store over TLS with a
// certificate like the control plane's (DNS weft-control, localhost, IP
// 127.0.0.1), and writes the data dir a client needs: connection file,
// bundle and admin token. It returns the flags pointing at that data dir.
func apiTestControlPlane(t *testing.T) (*globalFlags, *store.Bolt) {
	t.Helper()
	return apiTestControlPlaneWith(t, nil)
}

// apiTestControlPlaneWith is apiTestControlPlane with more routes, added by
// extra.
func apiTestControlPlaneWith(t *testing.T, extra func(*http.ServeMux)) (*globalFlags, *store.Bolt) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, connfile.StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "weft-control"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"weft-control", "localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", apiserver.New(st, apiTestToken, slog.New(slog.DiscardHandler), apiserver.Options{TrustDomain: "example.org"}))
	ts, err := tokens.Open(st, tokens.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/api/v1/tokens", apiserver.NewTokens(ts, apiTestToken))
	mux.Handle("/api/v1/tokens/", apiserver.NewTokens(ts, apiTestToken))
	// The mesh view the control plane derives from running workloads.
	mux.HandleFunc("GET /api/v1/mesh", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"services":[{"name":"orders","namespace":"shop","declared":false,"endpoints":[{},{}]},`+
			`{"name":"orders-v2","namespace":"shop","declared":true,"endpoints":[{}]},`+
			`{"name":"web","namespace":"default","declared":false,"endpoints":[]}]}`)
	})
	if extra != nil {
		extra(mux)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	if err := os.WriteFile(filepath.Join(dir, connfile.BundleFile), connfile.EncodePEMCerts([]*x509.Certificate{caCert}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, connfile.AdminTokenFile), []byte(apiTestToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := connfile.Write(dir, connfile.Connection{API: srv.Listener.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	return &globalFlags{dataDir: dir}, st
}

// apiTestRun runs one command built by mk with args and returns its stdout,
// stderr and error.
func apiTestRun(t *testing.T, g *globalFlags, mk func(*globalFlags) *cobraCommand, args ...string) (string, string, error) {
	t.Helper()
	cmd := mk(g)
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(""))
	cmd.SetArgs(append([]string{}, args...)) // never nil: cobra would read os.Args
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestAPIClientErrors(t *testing.T) {
	g, _ := apiTestControlPlane(t)

	// Wrong token from the environment overrides the file.
	t.Setenv("WEFT_ADMIN_TOKEN", "wrong")
	c, err := dialAPI(g.dataDir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.list(t.Context(), "svc", ""); err == nil || !strings.Contains(err.Error(), "admin token") {
		t.Errorf("list with a wrong token = %v, want an admin token error", err)
	}
	t.Setenv("WEFT_ADMIN_TOKEN", "")

	// No connection file: a hint to start the control plane.
	if _, err := dialAPI(t.TempDir(), "", ""); err == nil || !strings.Contains(err.Error(), "weft control") {
		t.Errorf("dialAPI without a connection file = %v", err)
	}

	// --control-api with an explicit address, reached through a wildcard
	// host rewritten to loopback; the certificate is still verified.
	conn, err := connfile.Read(g.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(conn.API)
	c, err = dialAPI(g.dataDir, "0.0.0.0:"+port, "")
	if err != nil {
		t.Fatal(err)
	}
	var out apiserver.ListResponse
	if err := c.getJSON(t.Context(), "/api/v1/resources/svc", &out); err != nil {
		t.Errorf("getJSON via 0.0.0.0: %v", err)
	}

	// A bundle that does not sign the server certificate is refused.
	other := t.TempDir()
	for _, f := range []string{connfile.ConnectionFile, connfile.AdminTokenFile} {
		b, _ := os.ReadFile(filepath.Join(g.dataDir, f))
		os.WriteFile(filepath.Join(other, f), b, 0o600)
	}
	otherCA := httptest.NewUnstartedServer(nil) // any certificate not from our CA
	otherCA.StartTLS()
	otherCA.Close()
	os.WriteFile(filepath.Join(other, connfile.BundleFile), connfile.EncodePEMCerts([]*x509.Certificate{otherCA.Certificate()}), 0o644)
	c, err = dialAPI(other, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.list(t.Context(), "svc", ""); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("list with a foreign bundle = %v, want a certificate error", err)
	}
}

// TestAPIClientOneFlag: --control https://HOST:PORT with --ca (or $WEFT_CA)
// and $WEFT_ADMIN_TOKEN reach the API with no data dir at all; a bare
// host:port or another scheme gets a hint.
func TestAPIClientOneFlag(t *testing.T) {
	g, _ := apiTestControlPlane(t)
	conn, err := connfile.Read(g.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(g.dataDir, connfile.BundleFile)
	t.Setenv("WEFT_ADMIN_TOKEN", apiTestToken)
	empty := t.TempDir()
	for _, tt := range []struct {
		name    string
		g       globalFlags
		env     map[string]string
		wantErr string
	}{
		{name: "--control URL and --ca", g: globalFlags{dataDir: empty, control: "https://" + conn.API, caFile: ca}},
		{name: "--control URL/ and $WEFT_CA", g: globalFlags{dataDir: empty, control: "https://" + conn.API + "/"}, env: map[string]string{"WEFT_CA": ca}},
		{name: "$WEFT_CONTROL and $WEFT_CA", g: globalFlags{dataDir: empty}, env: map[string]string{"WEFT_CONTROL": "https://" + conn.API, "WEFT_CA": ca}},
		{name: "bare host:port", g: globalFlags{dataDir: empty, control: conn.API}, wantErr: "pass its URL, --control https://HOST:PORT"},
		{name: "http scheme", g: globalFlags{dataDir: empty, controlAPI: "http://" + conn.API}, wantErr: "the API speaks https://"},
		{name: "no CA", g: globalFlags{dataDir: empty, control: "https://" + conn.API}, wantErr: "pass its copy with --ca"},
		{name: "nothing", g: globalFlags{dataDir: empty}, wantErr: "or pass --control"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			out, errOut, err := apiTestRun(t, &tt.g, newGetCmd, "svc", "-n", "shop")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(out, "shop        orders   2") {
				t.Errorf("get svc = %q %q, %v", out, errOut, err)
			}
		})
	}
}
