package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// tcpEchoCmd is the command line of the demo TCP echo app on port, with a
// banner written on accept when banner is not "".
func tcpEchoCmd(port int, banner string) []string {
	cmd := []string{weftBin, "demo-app", "tcp-echo", "--listen", addr(port)}
	if banner != "" {
		cmd = append(cmd, "--banner", banner)
	}
	return cmd
}

// startTCPEcho runs the demo TCP echo app as service under `weft run
// --app-protocol tcp`.
func startTCPEcho(t *testing.T, c *control, service, version, banner string) *workload {
	t.Helper()
	p := freePort(t)
	return startWorkload(t, c, wlOpts{service: service, version: version, appPort: p, appProtocol: "tcp", cmd: tcpEchoCmd(p, banner), waitApp: true})
}

// upstreamAddrs reads the listen addresses of a workload's TCP upstreams,
// by "<service>:<port>", from its admin /config_dump.
func upstreamAddrs(t *testing.T, w *workload) map[string]string {
	t.Helper()
	body, err := w.configDump()
	if err != nil {
		t.Fatal(err)
	}
	var dump struct {
		Upstreams []struct {
			Service  string `json:"service"`
			Port     int    `json:"port"`
			Listen   string `json:"listen"`
			Protocol string `json:"protocol"`
		} `json:"upstreams"`
	}
	if err := json.Unmarshal([]byte(body), &dump); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, u := range dump.Upstreams {
		if u.Protocol != "tcp" {
			t.Fatalf("upstream %+v: protocol %q, want tcp", u, u.Protocol)
		}
		out[u.Service+":"+strconv.Itoa(u.Port)] = u.Listen
	}
	return out
}

// echoOnce connects to an upstream listener, sends msg and wants it back.
func echoOnce(a string, msg []byte) error {
	conn, err := net.DialTimeout("tcp", a, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// TestTCPUpstream: `weft run --upstream` listeners carry raw TCP through the
// mesh to a --app-protocol tcp echo app: 10 MB each way intact, counted in
// the client's upstream metrics; a server-first banner arrives within
// 100 ms of connect; killing the server's app mid-stream ends the client's
// stream.
func TestTCPUpstream(t *testing.T) {
	c := startControl(t)
	startTCPEcho(t, c, "echo", "", "")
	startTCPEcho(t, c, "smtp", "", "220 smtp.test ESMTP ready\r\n")
	victim := startTCPEcho(t, c, "victim", "", "")
	echoPort := freePort(t)
	client := startWorkload(t, c, wlOpts{service: "client", cmd: []string{"sleep", "3600"}, flags: []string{
		"--upstream", "echo:9000=" + strconv.Itoa(echoPort), "--upstream", "smtp.default:25", "--upstream", "victim:9000",
	}})
	ups := upstreamAddrs(t, client)
	if ups["echo:9000"] != addr(echoPort) {
		t.Fatalf("config_dump upstreams %v: want echo:9000 on %s", ups, addr(echoPort))
	}
	smtpAddr, victimAddr := ups["smtp.default:25"], ups["victim:9000"]
	if smtpAddr == "" || victimAddr == "" {
		t.Fatalf("config_dump upstreams %v: want smtp.default:25 and victim:9000 on free ports", ups)
	}
	eventually(t, 15*time.Second, 100*time.Millisecond, "echo through --upstream", func() error {
		return echoOnce(addr(echoPort), []byte("\x00\x01ping, not HTTP\n"))
	})

	t.Run("10 MB each way", func(t *testing.T) {
		l := map[string]string{"listener": "upstream", "destination_service": "echo.default"}
		var before []sample
		eventually(t, 5*time.Second, 50*time.Millisecond, "warm-up connections counted closed", func() error {
			var err error
			if before, err = client.metrics(); err != nil {
				return err
			}
			if o, c := sum(before, "weft_tcp_connections_opened_total", l), sum(before, "weft_tcp_connections_total", l); o < 1 || o != c {
				return fmt.Errorf("opened %v, closed %v", o, c)
			}
			return nil
		})
		const size = 10 << 20
		payload := make([]byte, size)
		rand.Read(payload)
		conn, err := net.DialTimeout("tcp", addr(echoPort), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		conn.SetDeadline(start.Add(20 * time.Second))
		werr := make(chan error, 1)
		go func() {
			_, err := conn.Write(payload)
			if err == nil {
				err = conn.(*net.TCPConn).CloseWrite()
			}
			werr <- err
		}()
		h := sha256.New()
		n, err := io.Copy(h, conn) // until the echo app closes after our half-close
		if err != nil {
			t.Fatalf("reading the echo after %d bytes: %v", n, err)
		}
		if err := <-werr; err != nil {
			t.Fatalf("writing: %v", err)
		}
		if n != size || !bytes.Equal(h.Sum(nil), sha256Sum(payload)) {
			t.Fatalf("echo: %d bytes, sha256 %x; want %d bytes, sha256 %x", n, h.Sum(nil), size, sha256Sum(payload))
		}
		t.Logf("10 MB each way in %s", time.Since(start).Round(time.Millisecond))
		conn.Close()

		eventually(t, 5*time.Second, 50*time.Millisecond, "upstream TCP metrics", func() error {
			after, err := client.metrics()
			if err != nil {
				return err
			}
			if d := delta(before, after, "weft_tcp_connections_opened_total", l); d != 1 {
				return fmt.Errorf("connections opened grew by %v, want 1", d)
			}
			if d := delta(before, after, "weft_tcp_connections_total", l); d != 1 {
				return fmt.Errorf("connections closed grew by %v, want 1", d)
			}
			for _, dir := range []string{"upstream", "downstream"} {
				dl := map[string]string{"listener": "upstream", "destination_service": "echo.default", "direction": dir}
				if d := delta(before, after, "weft_tcp_bytes_total", dl); d != size {
					return fmt.Errorf("weft_tcp_bytes_total%v grew by %v, want %d", dl, d, size)
				}
			}
			return nil
		})
	})

	t.Run("server-first banner at once", func(t *testing.T) {
		const banner = "220 smtp.test ESMTP ready\r\n"
		read := func() (time.Duration, error) {
			start := time.Now()
			conn, err := net.DialTimeout("tcp", smtpAddr, 2*time.Second)
			if err != nil {
				return 0, err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(3 * time.Second))
			got := make([]byte, len(banner))
			if _, err := io.ReadFull(conn, got); err != nil {
				return 0, fmt.Errorf("reading the banner: %w", err)
			}
			took := time.Since(start)
			if string(got) != banner {
				return 0, fmt.Errorf("banner %q, want %q", got, banner)
			}
			// Then the client speaks and the server answers (echo).
			if _, err := io.WriteString(conn, "EHLO x\r\n"); err != nil {
				return 0, err
			}
			reply := make([]byte, len("EHLO x\r\n"))
			if _, err := io.ReadFull(conn, reply); err != nil || string(reply) != "EHLO x\r\n" {
				return 0, fmt.Errorf("reply %q, %v", reply, err)
			}
			return took, nil
		}
		eventually(t, 10*time.Second, 100*time.Millisecond, "banner through --upstream", func() error { _, err := read(); return err })
		var worst time.Duration
		for range 10 {
			took, err := read()
			if err != nil {
				t.Fatal(err)
			}
			worst = max(worst, took)
		}
		if worst > 100*time.Millisecond {
			t.Fatalf("slowest banner of 10 arrived %s after connect, want within 100ms", worst)
		}
		t.Logf("slowest banner of 10: %s after connect", worst)
	})

	t.Run("killing the server mid-stream closes the client", func(t *testing.T) {
		eventually(t, 10*time.Second, 100*time.Millisecond, "echo to victim", func() error {
			return echoOnce(victimAddr, []byte("warm up"))
		})
		conn, err := net.DialTimeout("tcp", victimAddr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		msg := []byte("mid-stream")
		conn.Write(msg)
		if _, err := io.ReadFull(conn, make([]byte, len(msg))); err != nil {
			t.Fatalf("echo before the kill: %v", err)
		}
		apps := descendants(victim.proc.pid())
		if len(apps) == 0 {
			t.Fatal("no app process under the victim's weft run")
		}
		for _, pid := range apps {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		killed := time.Now()
		n, err := conn.Read(make([]byte, 1))
		if n != 0 || err == nil {
			t.Fatalf("read after the kill: %d bytes, %v; want EOF or an error", n, err)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the client's stream stayed open 5s after the server's app was killed")
		}
		t.Logf("client's read ended %s after the kill: %v", time.Since(killed).Round(time.Millisecond), err)
	})
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// tcpCounter is a raw TCP app that counts the connections it accepted and
// the bytes it read, and echoes them.
type tcpCounter struct {
	port         int
	conns, bytes atomic.Int64
}

func startTCPCounter(t *testing.T) *tcpCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &tcpCounter{port: ln.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.conns.Add(1)
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					a.bytes.Add(int64(n))
					if n > 0 {
						c.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	return a
}

// TestTCPUpstreamDenied: an AuthorizationPolicy (docs/tcp.md, deny-db)
// denying the caller closes its --upstream connection with zero bytes, and
// zero connections, reaching the app; a bad --upstream spec and a local
// port in use fail `weft run` with an error naming the flag.
func TestTCPUpstreamDenied(t *testing.T) {
	c := startControl(t)
	app := startTCPCounter(t)
	startWorkload(t, c, wlOpts{service: "db", appPort: app.port, appProtocol: "tcp", cmd: []string{"sleep", "3600"}})
	dbPort := freePort(t)
	startWorkload(t, c, wlOpts{service: "reports", cmd: []string{"sleep", "3600"}, flags: []string{"--upstream", "db:5432=" + strconv.Itoa(dbPort)}})
	eventually(t, 15*time.Second, 100*time.Millisecond, "reports reaches db", func() error {
		return echoOnce(addr(dbPort), []byte("SELECT 1"))
	})

	c.apply(docYAML(t, "tcp.md", docExample("deny-db")))
	eventually(t, 15*time.Second, 100*time.Millisecond, "policy in effect", func() error {
		if err := echoOnce(addr(dbPort), []byte("SELECT 1")); err == nil {
			return errors.New("still allowed")
		}
		return nil
	})
	conns, read := app.conns.Load(), app.bytes.Load()
	for i := range 5 {
		conn, err := net.DialTimeout("tcp", addr(dbPort), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write([]byte("DROP TABLE users;"))
		n, err := conn.Read(make([]byte, 64))
		conn.Close()
		if n != 0 || err == nil {
			t.Fatalf("denied connection %d: read %d bytes, %v; want it closed", i, n, err)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("denied connection %d stayed open", i)
		}
	}
	if dc, db := app.conns.Load()-conns, app.bytes.Load()-read; dc != 0 || db != 0 {
		t.Fatalf("denied connections reached the app: %d connections, %d bytes; want none", dc, db)
	}

	t.Run("bad specs", func(t *testing.T) {
		for _, tc := range []struct{ spec, want string }{
			{"db", `--upstream "db": want SERVICE[.NS]:PORT[=LOCAL_PORT]`},
			{"db:0", `--upstream "db:0": port: "0" is not a port number`},
			{"db:99999", `--upstream "db:99999": port`},
			{"DB:5432", `--upstream "DB:5432": service "DB"`},
			{"db:5432=x", `--upstream "db:5432=x": local port`},
			{"db.Bad_ns:5432", `namespace "Bad_ns"`},
		} {
			r := runWeft(t, "run", "--data-dir", c.dataDir, "--service", "x", "--upstream", tc.spec, "--", "true")
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("--upstream %q: %s\nwant an error containing %q", tc.spec, r, tc.want)
			}
		}
	})
	t.Run("local port in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		p := ln.Addr().(*net.TCPAddr).Port
		r := runWeft(t, "run", "--data-dir", c.dataDir, "--service", "x", "--inbound-port", "0", "--outbound-port", "0", "--admin-port", "0",
			"--upstream", "db:5432="+strconv.Itoa(p), "--", "true")
		want := fmt.Sprintf("--upstream db:5432: local port %d", p)
		if r.code == 0 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "address already in use") {
			t.Fatalf("%s\nwant an error containing %q and \"address already in use\"", r, want)
		}
	})
}

// TestTCPRouteSplit: the TCPRoute of docs/tcp.md (db-split) sends 80% of
// the --upstream connections to db to db-v1 and 20% to db-v2 over 500
// connections (each server-first app answers its version as a banner),
// within ±6 points; its status is Accepted and ResolvedRefs.
func TestTCPRouteSplit(t *testing.T) {
	c := startControl(t)
	startTCPEcho(t, c, "db", "v1", "v1\n")
	startTCPEcho(t, c, "db", "v2", "v2\n")
	client := startWorkload(t, c, wlOpts{service: "client", cmd: []string{"sleep", "3600"}, flags: []string{"--upstream", "db:5432"}})
	dbAddr := upstreamAddrs(t, client)["db:5432"]
	version := func() (string, error) {
		conn, err := net.DialTimeout("tcp", dbAddr, 2*time.Second)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		b := make([]byte, 3)
		if _, err := io.ReadFull(conn, b); err != nil {
			return "", fmt.Errorf("reading the banner: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	seen := map[string]bool{}
	eventually(t, 15*time.Second, 20*time.Millisecond, "both versions of db reached", func() error {
		v, err := version()
		if err != nil {
			return err
		}
		seen[v] = true
		if !seen["v1"] || !seen["v2"] {
			return fmt.Errorf("reached %v", seen)
		}
		return nil
	})

	c.apply(docYAML(t, "tcp.md", docExample("db-split")))
	eventually(t, 10*time.Second, 50*time.Millisecond, "client has the TCPRoute", func() error {
		d, err := client.configDump()
		if err != nil {
			return err
		}
		if !strings.Contains(d, "default/db-split") {
			return errors.New("default/db-split not in the config dump")
		}
		return nil
	})
	const n = 500
	counts := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, n)
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for range jobs {
				v, err := version()
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				counts[v]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("connection failed: %v", err)
	}
	share := float64(counts["v1"]) / n
	t.Logf("%d connections in %s: %v (v1 %.1f%%)", n, time.Since(start).Round(time.Millisecond), counts, 100*share)
	if counts["v1"]+counts["v2"] != n || share < 0.74 || share > 0.86 {
		t.Fatalf("connections by version %v: want 80%% ± 6 to v1, the rest to v2", counts)
	}

	// Opaque CONNECT tunnels to db:5432 follow the route too (the first
	// byte, not HTTP, ends the sniff at once).
	viaConnect := func() (string, error) {
		conn, err := connectDialer(addr(client.outbound))(context.Background(), "db:5432")
		if err != nil {
			return "", err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := conn.Write([]byte{0}); err != nil {
			return "", err
		}
		b := make([]byte, 3)
		if _, err := io.ReadFull(conn, b); err != nil {
			return "", fmt.Errorf("reading the banner: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	const nc = 200
	tunnels := map[string]int{}
	for range nc {
		v, err := viaConnect()
		if err != nil {
			t.Fatalf("CONNECT tunnel: %v", err)
		}
		tunnels[v]++
	}
	t.Logf("%d CONNECT tunnels: %v", nc, tunnels)
	if cs := float64(tunnels["v1"]) / nc; tunnels["v1"]+tunnels["v2"] != nc || cs < 0.71 || cs > 0.89 {
		t.Fatalf("CONNECT tunnels by version %v: want 80%% ± 9 (200 tunnels) to v1, the rest to v2", tunnels)
	}

	if r := c.cli("get", "tcproute"); r.code != 0 || !strings.Contains(r.stdout, "Service/db:5432") || !strings.Contains(r.stdout, "db-v1=80,db-v2=20") {
		t.Errorf("weft get tcproute: %s\nwant the parent Service/db:5432 and backends db-v1=80,db-v2=20", r)
	}
	r := c.cli("get", "tcproute", "db-split", "-o", "yaml")
	if r.code != 0 {
		t.Fatal(r)
	}
	for _, want := range []string{"type: Accepted", "reason: Accepted", "type: ResolvedRefs", "reason: ResolvedRefs", "controllerName: weft.dev/mesh"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "status: \"False\"") {
		t.Errorf("a condition is False:\n%s", r.stdout)
	}
}

// TestTCPRouteInvalid: the API refuses a TCPRoute it could not serve,
// naming the field, and reports a parent port the Service lacks.
func TestTCPRouteInvalid(t *testing.T) {
	c := startControl(t)
	for _, tc := range []struct{ doc, want string }{
		{`apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: gw}
spec:
  parentRefs: [{group: "", kind: Service, name: db}, {name: ingress}]
  rules: [{backendRefs: [{name: db, port: 5432}]}]
`, "spec.parentRefs[1].kind: must be Service like the first parentRef"},
		{`apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: two}
spec:
  parentRefs: [{group: "", kind: Service, name: db}]
  rules: [{backendRefs: [{name: a, port: 1}]}, {backendRefs: [{name: b, port: 1}]}]
`, "spec.rules: exactly one rule is allowed"},
		{`apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: heavy}
spec:
  parentRefs: [{group: "", kind: Service, name: db}]
  rules: [{backendRefs: [{name: a, port: 1, weight: -1}]}]
`, "spec.rules[0].backendRefs[0].weight: must be between 0 and 1000000"},
	} {
		f := t.TempDir() + "/r.yaml"
		if err := os.WriteFile(f, []byte(tc.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		r := c.cli("apply", "-f", f)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s\nwant a refusal containing %q", r, tc.want)
		}
	}
	c.apply(`apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  selector: {app: db}
  ports: [{name: pg, port: 5432}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: wrong-port}
spec:
  parentRefs: [{group: "", kind: Service, name: db, port: 3306}]
  rules: [{backendRefs: [{name: nosuch, port: 5432}]}]
`)
	r := c.cli("get", "tcproute", "wrong-port", "-o", "yaml")
	for _, want := range []string{"reason: NoMatchingParent", "has no port 3306", "reason: BackendNotFound", `no Service "nosuch"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r)
		}
	}
}
