package controlplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/control/ca"
	"weft.dev/weft/internal/control/kube/crd"
	kubestore "weft.dev/weft/internal/control/kube/store"
	"weft.dev/weft/internal/control/store"
	"weft.dev/weft/internal/testkube"
)

// replica is one control plane of a test, running until the test ends.
type replica struct {
	dir  string
	conn connfile.Connection
	done chan error
}

// startReplica runs a control plane on the store open returns; it fails t
// if the control plane does not come up.
func startReplica(t *testing.T, open func(context.Context) (store.Store, error), sealKey string) *replica {
	t.Helper()
	r, err := tryReplica(t, open, sealKey)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryReplica is startReplica returning Run's error instead.
func tryReplica(t *testing.T, open func(context.Context) (store.Store, error), sealKey string) (*replica, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{dir: t.TempDir(), done: make(chan error, 1)}
	ready := make(chan connfile.Connection, 1)
	go func() {
		r.done <- Run(ctx, Options{
			DataDir: r.dir, XDSListen: "127.0.0.1:0", APIListen: "127.0.0.1:0", TrustDomain: "ha.test",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), OpenStore: open, SealKeyFile: sealKey,
			Ready: func(c connfile.Connection) { ready <- c },
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Error("control plane did not stop within 20s")
		}
	})
	select {
	case r.conn = <-ready:
		return r, nil
	case err := <-r.done:
		r.done <- err
		return nil, err
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("control plane not ready within 60s")
	}
}

// api calls the replica's API with the admin token in its data dir.
func (r *replica) api(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	bundle, err := os.ReadFile(filepath.Join(r.dir, connfile.BundleFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle)
	tok, err := connfile.ReadToken(r.dir, connfile.AdminTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://"+r.conn.API+path, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: ServerName}}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testReplicas checks what replicas on one shared store have in common:
// one CA root, one admin token, join tokens created on any replica, and
// that a replica without the seal key, or with another, refuses to start.
func testReplicas(t *testing.T, open func(context.Context) (store.Store, error)) {
	key := filepath.Join(t.TempDir(), "seal.key")
	a := startReplica(t, open, key)
	b := startReplica(t, open, key)

	if ra, rb := readFile(t, filepath.Join(a.dir, connfile.BundleFile)), readFile(t, filepath.Join(b.dir, connfile.BundleFile)); ra != rb {
		t.Error("replicas trust different CA roots")
	}
	ta, _ := connfile.ReadToken(a.dir, connfile.AdminTokenFile)
	tb, _ := connfile.ReadToken(b.dir, connfile.AdminTokenFile)
	if ta == "" || ta != tb {
		t.Errorf("admin tokens %q and %q, want one shared token", ta, tb)
	}
	var ra, rb RevisionStatus
	a.api(t, "GET", "/api/v1/revision", nil, &ra)
	b.api(t, "GET", "/api/v1/revision", nil, &rb)
	if ra.Replica == "" || ra.Replica == rb.Replica {
		t.Errorf("replica IDs %q and %q, want two distinct ones", ra.Replica, rb.Replica)
	}

	// Each replica's connection file lists both replicas' xDS addresses,
	// its own first.
	for _, r := range []*replica{a, b} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := connfile.Read(r.dir)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Addresses()
			if len(got) == 2 && got[0] == r.conn.XDS && slices.Contains(got, a.conn.XDS) && slices.Contains(got, b.conn.XDS) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("connection file of %s lists %v, want %s and %s", r.conn.XDS, got, a.conn.XDS, b.conn.XDS)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// A join token created on A is known on B within a second.
	var created struct {
		Token struct {
			ID string `json:"id"`
		} `json:"token"`
	}
	if code := a.api(t, "POST", "/api/v1/tokens", map[string]string{"namespace": "shop", "description": "made on A"}, &created); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("creating a token on A: HTTP %d", code)
	}
	deadline := time.Now().Add(time.Second)
	for {
		var list struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		b.api(t, "GET", "/api/v1/tokens", nil, &list)
		found := false
		for _, it := range list.Items {
			found = found || it.ID == created.Token.ID
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token %s created on A not listed on B within 1s", created.Token.ID)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A root rotation started on A is followed by B: the same new root in
	// its bundle (ca.pem, the API) on the same schedule, without a restart.
	var rotA ca.RotationStatus
	if code := a.api(t, "POST", "/api/v1/ca/rotation", nil, &rotA); code != http.StatusOK || rotA.NewRoot == "" {
		t.Fatalf("rotating on A: HTTP %d, %+v", code, rotA)
	}
	rotStart := time.Now()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var rotB ca.RotationStatus
		b.api(t, "GET", "/api/v1/ca/rotation", nil, &rotB)
		pem := readFile(t, filepath.Join(b.dir, connfile.BundleFile))
		if rotB.NewRoot == rotA.NewRoot && rotB.Phase == ca.PhaseDistribute && rotB.SigningSwitch.Equal(rotA.SigningSwitch) &&
			strings.Count(pem, "BEGIN CERTIFICATE") == 2 && pem == readFile(t, filepath.Join(a.dir, connfile.BundleFile)) {
			t.Logf("B follows A's root rotation %v after it started", time.Since(rotStart).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's rotation %+v and ca.pem with %d roots 5s after A rotated to %s", rotB, strings.Count(pem, "BEGIN CERTIFICATE"), rotA.NewRoot)
		}
	}

	// Careless operators: no seal key, another replica's key.
	if _, err := tryReplica(t, open, ""); err == nil || !strings.Contains(err.Error(), "--seal-key-file is required") {
		t.Errorf("replica without a seal key: %v, want --seal-key-file is required", err)
	}
	other := filepath.Join(t.TempDir(), "other.key")
	if _, err := tryReplica(t, open, other); err == nil || !strings.Contains(err.Error(), "seal") {
		t.Errorf("replica with another seal key: %v, want a refusal naming the seal key", err)
	}
}

// TestReplicasOnKubernetes runs testReplicas on the Kubernetes store of a
// real API server.
func TestReplicasOnKubernetes(t *testing.T) {
	srv := testkube.StartAPIServer(t)
	cfg := srv.RESTConfig()
	if err := crd.InstallAll(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	srv.Namespace(t, "weft-system")
	testReplicas(t, func(ctx context.Context) (store.Store, error) {
		return kubestore.Open(ctx, rest.CopyConfig(cfg), kubestore.Options{SystemNamespace: "weft-system", LeaseTTL: 3 * time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	})
}
