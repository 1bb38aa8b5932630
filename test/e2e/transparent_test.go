package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The test binary doubles as the apps of TestTransparentInterception,
// chosen by WEFT_E2E_HELPER: they must run inside the test's network
// namespaces (and as another uid), where the test process is not.
func init() {
	mode := os.Getenv("WEFT_E2E_HELPER")
	if mode == "" {
		return
	}
	if err := helperMain(mode, os.Getenv("WEFT_E2E_HELPER_ADDR"), os.Getenv("WEFT_E2E_HELPER_COUNT")); err != nil {
		fmt.Fprintln(os.Stderr, "helper", mode+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func helperMain(mode, addr, count string) error {
	switch mode {
	case "get": // a Go client that ignores proxy settings
		n, err := strconv.Atoi(count)
		if err != nil {
			return err
		}
		c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
		for range n {
			resp, err := c.Get(addr)
			if err != nil {
				return err
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %d %v: %s", addr, resp.StatusCode, err, b)
			}
			os.Stdout.Write(b)
		}
		return nil
	case "banner-server": // a server-first protocol: a banner, then echo
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "220 weft-banner ready\r\n")
				io.Copy(c, c)
			}()
		}
	case "tls-server": // an HTTPS app the mesh carries as opaque TCP
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "tls-app ok\n")
		}))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		srv.Listener = ln
		srv.StartTLS()
		select {}
	case "ws-echo": // a WebSocket echo app
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		wsEcho(ln) // websocket_test.go
		select {}
	case "ws-client": // a WebSocket client that ignores proxy settings
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, addr, &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{Proxy: nil}}})
		if err != nil {
			return err
		}
		defer c.CloseNow()
		c.SetReadLimit(2 << 20)
		msg := bytes.Repeat([]byte("weft"), 1<<18) // 1 MiB
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			return err
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, msg) {
			return fmt.Errorf("echo of %d bytes differs from the 1 MiB sent", len(got))
		}
		fmt.Fprintln(os.Stderr, "ws-client: 1 MiB echoed")
		return c.Close(websocket.StatusNormalClosure, "done")
	case "banner-client":
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		banner, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading the banner: %w", err)
		}
		io.WriteString(c, "ping\n")
		echo, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading the echo: %w", err)
		}
		fmt.Fprintf(os.Stderr, "banner-client: %q %q\n", banner, echo)
		return nil
	}
	return fmt.Errorf("unknown helper mode %q", mode)
}

// hosts are two network namespaces joined by a veth pair, made by
// newHosts: the test's two "hosts". Nothing touches the host's own tables.
type hosts struct {
	t      *testing.T
	a, b   string // namespace names
	ipA    string
	ipB    string
	hostsA string // /etc/netns/<a>, bind-mounted by `ip netns exec`
}

// requireNetns skips the test unless it can create network namespaces and
// run iptables in them (root, ip netns, iptables); WEFT_REQUIRE_NETNS=1
// turns the skip into a failure.
func requireNetns(t *testing.T) {
	t.Helper()
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "not root"
	default:
		for _, bin := range []string{"ip", "iptables", "curl"} {
			if _, err := exec.LookPath(bin); err != nil {
				why = bin + " not installed"
			}
		}
	}
	if why == "" {
		name := fmt.Sprintf("weftprobe%d", os.Getpid())
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			why = fmt.Sprintf("ip netns add: %v: %s", err, out)
		} else {
			exec.Command("ip", "netns", "del", name).Run()
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("WEFT_REQUIRE_NETNS") == "1" {
		t.Fatalf("network namespaces unavailable (%s) and WEFT_REQUIRE_NETNS=1", why)
	}
	t.Skipf("skipping: network namespaces unavailable (%s); run as root with iproute2 and iptables, or set WEFT_REQUIRE_NETNS=1 to fail instead", why)
}

func newHosts(t *testing.T) *hosts {
	t.Helper()
	requireNetns(t)
	n := os.Getpid() % 200
	h := &hosts{t: t, a: fmt.Sprintf("wefta%d", os.Getpid()), b: fmt.Sprintf("weftb%d", os.Getpid()),
		ipA: fmt.Sprintf("10.213.%d.1", n), ipB: fmt.Sprintf("10.213.%d.2", n)}
	vA, vB := fmt.Sprintf("wva%d", os.Getpid()), fmt.Sprintf("wvb%d", os.Getpid())
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", h.a).Run()
		exec.Command("ip", "netns", "del", h.b).Run()
		if h.hostsA != "" {
			os.RemoveAll(h.hostsA)
		}
	})
	for _, cmd := range [][]string{
		{"ip", "netns", "add", h.a},
		{"ip", "netns", "add", h.b},
		{"ip", "link", "add", vA, "netns", h.a, "type", "veth", "peer", "name", vB, "netns", h.b},
		{"ip", "-n", h.a, "addr", "add", h.ipA + "/24", "dev", vA},
		{"ip", "-n", h.b, "addr", "add", h.ipB + "/24", "dev", vB},
		{"ip", "-n", h.a, "link", "set", vA, "up"},
		{"ip", "-n", h.b, "link", "set", vB, "up"},
		{"ip", "-n", h.a, "link", "set", "lo", "up"},
		{"ip", "-n", h.b, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(cmd, " "), err, out)
		}
	}
	return h
}

// exec runs cmd in namespace ns and returns its combined output.
func (h *hosts) exec(ns string, cmd ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, cmd...)...).CombinedOutput()
	return string(out), err
}

// nat returns namespace ns's nat table as `iptables -S` lists it.
func (h *hosts) nat(ns string) string {
	h.t.Helper()
	out, err := h.exec(ns, "iptables", "-t", "nat", "-S")
	if err != nil {
		h.t.Fatalf("iptables -t nat -S in %s: %v: %s", ns, err, out)
	}
	return out
}

// waitReady waits until the sidecar admin server on port in ns answers
// /ready with 200.
func (h *hosts) waitReady(ns string, p *proc, port int) {
	h.t.Helper()
	eventually(h.t, 30*time.Second, 100*time.Millisecond, p.name+" ready", func() error {
		if p.exited() {
			return stopErr{fmt.Errorf("%s exited: %v", p.name, p.err)}
		}
		out, err := h.exec(ns, "curl", "-sf", "--noproxy", "*", fmt.Sprintf("http://127.0.0.1:%d/ready", port))
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}

// copyExecutable copies the test binary to path, executable by anyone.
func copyExecutable(t *testing.T, path string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestTransparentInterception: in a pair of network namespaces, a Go client
// with Proxy: nil and curl with no proxy settings (HTTP/1.1 and h2c prior
// knowledge), running as nobody in host A, reach the mesh service
// hello in host B over mTLS (the backend sees the caller's SPIFFE ID), and a
// server-first protocol to a non-mesh port passes through as opaque TCP,
// and HTTPS to tlsapp (loopback only in host B) reaches it through the mesh
// by its TLS server name, and a WebSocket client with Proxy: nil echoes
// 1 MiB through wsecho's sidecar;
// connections from outside to hello's app port are redirected to the mTLS
// inbound listener of hello's `weft proxy --transparent`; the rules are gone when the run ends, and a sidecar
// killed with SIGKILL leaves rules that the next start removes.
func TestTransparentInterception(t *testing.T) {
	h := newHosts(t)
	// Host B runs the control plane and hello; the demo backend runs as
	// nobody, who must be able to execute the weft binary.
	if err := os.Chmod(filepath.Dir(weftBin), 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	// Fixed ports are safe here: the namespaces are the test's own.
	ctl := startProc(t, "control", nil, "ip", "netns", "exec", h.b, weftBin, "control", "--data-dir", data,
		"--listen", h.ipB+":15010", "--api-listen", h.ipB+":15011")
	eventually(t, 20*time.Second, 100*time.Millisecond, "control plane ready", func() error {
		if ctl.exited() {
			return stopErr{fmt.Errorf("control exited: %v", ctl.err)}
		}
		for _, f := range []string{"control.json", "ca.pem", "join-token"} {
			if _, err := os.Stat(filepath.Join(data, f)); err != nil {
				return err
			}
		}
		return nil
	})
	// hello runs under `weft proxy --transparent`, its app started apart.
	startProc(t, "hello-app", nil, "ip", "netns", "exec", h.b, weftBin, "demo-app", "backend", "--listen", "0.0.0.0:8080", "--version", "v1")
	hello := startProc(t, "hello", nil, "ip", "netns", "exec", h.b, weftBin, "proxy", "--data-dir", data,
		"--service", "hello", "--address", h.ipB, "--inbound-port", "15006", "--outbound-port", "0", "--admin-port", "15000", "--app-port", "8080",
		"--transparent")
	h.waitReady(h.b, hello, 15000)
	if nat := h.nat(h.b); !strings.Contains(nat, "--dport 8080 -j REDIRECT --to-ports 15006") {
		t.Fatalf("host B has no inbound capture rule:\n%s", nat)
	}

	// Host A resolves hello to host B, as a cluster DNS would to a
	// service address: any address will do, the name is in the request.
	h.hostsA = filepath.Join("/etc/netns", h.a)
	if err := os.MkdirAll(h.hostsA, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.hostsA, "hosts"), []byte("127.0.0.1 localhost\n"+h.ipB+" hello hello.default tlsapp wsecho\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The apps run as nobody, who must be able to execute this binary.
	helper := filepath.Join(filepath.Dir(weftBin), "e2e-helper")
	copyExecutable(t, helper)
	banner := startProc(t, "banner", []string{"WEFT_E2E_HELPER=banner-server", "WEFT_E2E_HELPER_ADDR=0.0.0.0:2525"}, "ip", "netns", "exec", h.b, helper)
	eventually(t, 10*time.Second, 50*time.Millisecond, "banner server listening", func() error {
		if banner.exited() {
			return stopErr{fmt.Errorf("banner server exited: %v", banner.err)}
		}
		_, err := h.exec(h.b, "curl", "-s", "--max-time", "1", "telnet://127.0.0.1:2525")
		if e, ok := err.(*exec.ExitError); ok && e.ExitCode() == 7 {
			return fmt.Errorf("not listening yet")
		}
		return nil
	})
	// tlsapp speaks HTTPS on loopback only: from host A it is reachable
	// only through the mesh, by the server name of its ClientHello.
	tlsapp := startProc(t, "tlsapp", []string{"WEFT_E2E_HELPER=tls-server", "WEFT_E2E_HELPER_ADDR=127.0.0.1:8443"}, "ip", "netns", "exec", h.b,
		weftBin, "run", "--data-dir", data, "--service", "tlsapp", "--address", h.ipB, "--inbound-port", "15007", "--admin-port", "15001",
		"--app-port", "8443", "--app-protocol", "tcp", "--", helper)
	h.waitReady(h.b, tlsapp, 15001)
	wsecho := startProc(t, "wsecho", []string{"WEFT_E2E_HELPER=ws-echo", "WEFT_E2E_HELPER_ADDR=127.0.0.1:8081"}, "ip", "netns", "exec", h.b,
		weftBin, "run", "--data-dir", data, "--service", "wsecho", "--address", h.ipB, "--inbound-port", "15008", "--admin-port", "15002",
		"--app-port", "8081", "--", helper)
	h.waitReady(h.b, wsecho, 15002)
	const goCalls, curlCalls = 20, 5
	script := fmt.Sprintf(`set -e
WEFT_E2E_HELPER=get WEFT_E2E_HELPER_ADDR=http://hello:8080/ WEFT_E2E_HELPER_COUNT=%d %s
for i in $(seq %d); do curl -sS --noproxy '*' --max-time 10 http://hello:8080/; done
curl -sS --noproxy '*' --max-time 10 --http2-prior-knowledge http://hello.default:8080/
WEFT_E2E_HELPER=banner-client WEFT_E2E_HELPER_ADDR=%s:2525 %s
curl -sSk --noproxy '*' --max-time 10 https://tlsapp:8443/ >&2
WEFT_E2E_HELPER=ws-client WEFT_E2E_HELPER_ADDR=ws://wsecho:8081/ %[2]s
curl -sS http://127.0.0.1:15000/metrics | grep '^weft_proxy_transparent_connections_total' >&2`, goCalls, helper, curlCalls, h.ipB, helper)
	const calls = goCalls + curlCalls + 1
	client := startProc(t, "client", nil, "ip", "netns", "exec", h.a, weftBin, "run", "--data-dir", data,
		"--service", "client", "--admin-port", "15000", "--transparent", "--", "sh", "-c", script)
	if code, err := client.wait(60 * time.Second); err != nil || code != 0 {
		t.Fatalf("client app: exit %d, %v", code, err)
	}
	stdout, stderr := client.output()
	var got int
	for dec := json.NewDecoder(strings.NewReader(stdout)); dec.More(); got++ {
		var br backendReply
		if err := dec.Decode(&br); err != nil {
			t.Fatalf("client output %q: %v", stdout, err)
		}
		if br.Caller != spiffeID("default", "client") {
			t.Errorf("backend saw caller %q, want %q", br.Caller, spiffeID("default", "client"))
		}
	}
	if got != calls {
		t.Errorf("%d replies, want %d", got, calls)
	}
	for _, m := range []string{
		`weft_proxy_transparent_connections_total{protocol="http1",served="mesh-http"}`,
		`weft_proxy_transparent_connections_total{protocol="h2",served="mesh-http"} 1`,
		`weft_proxy_transparent_connections_total{protocol="opaque",served="passthrough"} 1`,
		`weft_proxy_transparent_connections_total{protocol="tls",served="mesh-tcp"} 1`,
		"tls-app ok",
		"ws-client: 1 MiB echoed",
	} {
		if !strings.Contains(stderr, m) {
			t.Errorf("metrics lack %s:\n%s", m, stderr)
		}
	}
	if !strings.Contains(stderr, `banner-client: "220 weft-banner ready\r\n" "ping\n"`) {
		t.Errorf("the server-first protocol did not pass through:\n%s", stderr)
	}
	if nat := h.nat(h.a); strings.Contains(nat, "WEFT-") {
		t.Errorf("rules left in host A after the run ended:\n%s", nat)
	}

	// From host A (no sidecar now), hello's app port is the mTLS inbound
	// listener: plaintext gets no answer from the app. In host B the app
	// itself answers on that port.
	if out, err := h.exec(h.a, "curl", "-sS", "--max-time", "5", "http://"+h.ipB+":8080/"); err == nil {
		t.Errorf("plaintext to hello's app port from host A was answered: %s", out)
	}
	if out, err := h.exec(h.b, "curl", "-sS", "--max-time", "5", "--noproxy", "*", "http://127.0.0.1:8080/"); err != nil {
		t.Fatalf("the app does not answer locally: %v: %s", err, out)
	}

	if err := hello.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := hello.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if nat := h.nat(h.b); strings.Contains(nat, "WEFT-") {
		t.Errorf("rules left in host B after weft proxy stopped:\n%s", nat)
	}

	// SIGKILL leaves the rules; the next start removes them first.
	start := func() *proc {
		p := startProc(t, "sleeper", nil, "ip", "netns", "exec", h.a, weftBin, "run", "--data-dir", data,
			"--service", "client", "--admin-port", "15000", "--transparent", "--exclude-ports", "22", "--", "sleep", "3600")
		h.waitReady(h.a, p, 15000)
		return p
	}
	p := start()
	if nat := h.nat(h.a); strings.Count(nat, "-A OUTPUT -p tcp -j WEFT-OUT-client-") != 1 || !strings.Contains(nat, "--dport 22 -j RETURN") {
		t.Fatalf("host A rules while running:\n%s", nat)
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := p.wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if nat := h.nat(h.a); !strings.Contains(nat, "WEFT-OUT-client-") {
		t.Fatalf("expected stale rules after SIGKILL:\n%s", nat)
	}
	p = start()
	if _, e := p.output(); !strings.Contains(e, "removed stale transparent rules") {
		t.Errorf("restart did not report removing stale rules:\n%s", e)
	}
	if nat := h.nat(h.a); strings.Count(nat, "-A OUTPUT -p tcp -j WEFT-OUT-client-") != 1 {
		t.Errorf("want exactly one jump after restart:\n%s", nat)
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := p.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if nat := h.nat(h.a); strings.Contains(nat, "WEFT-") {
		t.Errorf("rules left after the restarted run stopped:\n%s", nat)
	}
}
