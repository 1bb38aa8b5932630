package outbound

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/upstream"
)

// h2specExceptions are the h2spec cases (by the id h2spec takes on its
// command line, e.g. "http2/6.5.3/1") every weft HTTP/2 listener is allowed
// to fail, each with its RFC reason; docs/security.md ("h2spec") explains them.
var h2specExceptions = map[string]string{
	"http2/6.5.3/1":   "net/http's HTTP/2 server refuses a SETTINGS frame with duplicate entries (GOAWAY PROTOCOL_ERROR, hardening); RFC 9113 §6.5.3 allows them and no conforming client sends them",
	"http2/8.1.2.2/1": "net/http answers a request with a connection-specific header 400 (never passed to the handler) instead of resetting the stream; RFC 9113 §8.1.1 lets a server send a response to a malformed request",
	"http2/8.1.2.2/2": "as http2/8.1.2.2/1, for TE other than trailers",
}

// h2specOutboundExceptions are excepted on the outbound listener and its
// CONNECT tunnels only.
var h2specOutboundExceptions = map[string]string{
	"http2/3.5/2": "the outbound port and its tunnels carry HTTP/1.1 and h2c: bytes that are not the HTTP/2 preface are HTTP/1.x (RFC 9113 §3.3) and get an HTTP/1.1 400",
}

// TestH2Spec runs h2spec (github.com/summerwind/h2spec) against the
// outbound listener (h2c with prior knowledge) and the inbound listener
// (mutual TLS; h2spec cannot present a client certificate, so it speaks h2c
// to a shim in this test that dials the inbound with the mesh certificate
// and ALPN h2, copying bytes both ways). It fails on any failed case that is
// not an exception. It is skipped when h2spec is not in PATH, unless
// WEFT_REQUIRE_H2SPEC=1. WEFT_H2SPEC_ARGS adds h2spec arguments, e.g.
// "http2/6.5.3 -v" to run one section and log what h2spec saw.
func TestH2Spec(t *testing.T) {
	bin, err := exec.LookPath("h2spec")
	if err != nil {
		if os.Getenv("WEFT_REQUIRE_H2SPEC") == "1" {
			t.Fatalf("WEFT_REQUIRE_H2SPEC=1 and h2spec is not in PATH: %v", err)
		}
		t.Skip("h2spec not in PATH (go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible)")
	}
	// Registered first, this runs after the listeners shut down: a
	// connection that h2spec broke with a connection error ends on
	// net/http's one-second GOAWAY timer, not on the server's Close.
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for goleak.Find() != nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	})
	m := newMesh(t)
	// h2spec sends :authority localhost:PORT; a service named localhost
	// makes that a mesh request to a real app.
	m.addService(svc("localhost"))
	// The app reads the request body before answering, as real apps do: a
	// malformed body then fails the stream before a response exists.
	inAddr := m.addWorkload(t, "localhost", startApp(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		// h2spec's flow-control cases need a body of some length.
		io.WriteString(w, strings.Repeat("h2spec ", 128))
	})))
	m.commit(t)
	m.startOutbound(t, nil)

	t.Run("outbound h2c", func(t *testing.T) {
		runH2Spec(t, bin, "localhost", m.proxyURL.Host, h2specOutboundExceptions)
	})
	t.Run("outbound h2 in a CONNECT tunnel", func(t *testing.T) {
		shim := startShim(t, func(ctx context.Context) (net.Conn, error) {
			return dialConnect(ctx, m.proxyURL.Host, "localhost:80")
		})
		runH2Spec(t, bin, "127.0.0.1", shim, h2specOutboundExceptions)
	})
	t.Run("inbound h2 over mTLS", func(t *testing.T) {
		src := m.ca.Source(t, "default", "web")
		cfg := src.ClientTLS(m.ca.ID("default", "localhost"), identity.ALPNHTTP2)
		shim := startShim(t, func(ctx context.Context) (net.Conn, error) {
			return (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", inAddr)
		})
		runH2Spec(t, bin, "127.0.0.1", shim, nil)
	})
}

// startShim accepts plaintext connections and copies each, both ways, to a
// connection from dial; it returns its address.
func startShim(t *testing.T, dial func(context.Context) (net.Conn, error)) string {
	shim := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := shim.Accept()
			if err != nil {
				return
			}
			go func() {
				up, err := dial(ctx)
				if err != nil {
					c.Close()
					return
				}
				upstream.Pipe(ctx, c, up)
			}()
		}
	}()
	t.Cleanup(func() { shim.Close(); cancel(); <-done })
	return shim.Addr().String()
}

type junitSuites struct {
	Suites []struct {
		Package string `xml:"package,attr"`
		Cases   []struct {
			Name    string    `xml:"classname,attr"`
			Failure *struct{} `xml:"failure"`
			Skipped *struct{} `xml:"skipped"`
			Error   *struct{} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// runH2Spec runs every h2spec case against addr and reports the failures
// that are not exceptions.
func runH2Spec(t *testing.T, bin, host, addr string, extra map[string]string) {
	_, port, _ := net.SplitHostPort(addr)
	report := filepath.Join(t.TempDir(), "junit.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port, "-o", "5", "-j", report}, strings.Fields(os.Getenv("WEFT_H2SPEC_ARGS"))...)...).CombinedOutput()
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("h2spec wrote no report: %v\n%s", err, out)
	}
	var r junitSuites
	if err := xml.Unmarshal(b, &r); err != nil {
		t.Fatalf("h2spec report: %v", err)
	}
	total, failed := 0, 0
	for _, s := range r.Suites {
		for i, c := range s.Cases {
			total++
			id := s.Package + "/" + strconv.Itoa(i+1)
			if c.Skipped != nil {
				failed++
				t.Errorf("h2spec %s %s: skipped (the test's app must let every case run)", id, c.Name)
				continue
			}
			if c.Failure == nil && c.Error == nil {
				continue
			}
			reason, ok := h2specExceptions[id]
			if !ok {
				reason, ok = extra[id]
			}
			if ok {
				t.Logf("h2spec %s %s: failed, excepted: %s", id, c.Name, reason)
				continue
			}
			failed++
			t.Errorf("h2spec %s: %s", id, c.Name)
		}
	}
	if os.Getenv("WEFT_H2SPEC_ARGS") != "" {
		t.Logf("%s", out)
	}
	if total == 0 {
		t.Fatalf("h2spec ran no case:\n%s", out)
	}
	if failed > 0 {
		lines := strings.Split(string(out), "\n")
		t.Logf("h2spec summary: %s", lines[len(lines)-2])
	}
	t.Logf("h2spec: %d cases, %d failed", total, failed)
}
