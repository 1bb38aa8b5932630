package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// controlDownFor is how long TestControlPlaneDown keeps the control plane
// away (issue #8 asks for 60 s; CI pays it once).
const controlDownFor = 60 * time.Second

// load sends GET url through a workload at a fixed rate from a few
// goroutines until stopped (or maxDur passes), recording every failure and
// which backend pid answered.
type load struct {
	mu       sync.Mutex
	total    int
	failures []string
	byPID    map[int]int
	stop     chan struct{}
	done     sync.WaitGroup
}

// startLoad starts about rps requests per second to url through w, for at
// most maxDur.
func startLoad(t *testing.T, w *workload, url string, rps int, maxDur time.Duration) *load {
	t.Helper()
	const workers = 4
	l := &load{byPID: map[int]int{}, stop: make(chan struct{})}
	deadline := time.After(maxDur)
	stopped := make(chan struct{})
	go func() {
		select {
		case <-l.stop:
		case <-deadline:
		}
		close(stopped)
	}()
	interval := time.Duration(workers) * time.Second / time.Duration(rps)
	for i := range workers {
		l.done.Go(func() {
			time.Sleep(time.Duration(i) * interval / workers) // spread the workers
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-stopped:
					return
				case <-tick.C:
				}
				br, err := w.getBackend(url)
				l.mu.Lock()
				l.total++
				if err != nil {
					l.failures = append(l.failures, time.Now().Format("15:04:05.000")+" "+err.Error())
				} else {
					l.byPID[br.PID]++
				}
				l.mu.Unlock()
			}
		})
	}
	t.Cleanup(l.finish)
	return l
}

// finish stops the load and waits for requests in flight.
func (l *load) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.done.Wait()
}

// counts returns the requests sent so far and per backend pid.
func (l *load) counts() (int, map[int]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	by := make(map[int]int, len(l.byPID))
	for k, v := range l.byPID {
		by[k] = v
	}
	return l.total, by
}

// waitRequests waits until n more requests were sent.
func (l *load) waitRequests(t *testing.T, n int) {
	t.Helper()
	start, _ := l.counts()
	eventually(t, 20*time.Second, 20*time.Millisecond, "traffic flowing", func() error {
		if got, _ := l.counts(); got < start+n {
			return fmt.Errorf("%d requests so far", got-start)
		}
		return nil
	})
}

// check fails the test on any failed request.
func (l *load) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 0 {
		t.Errorf("%d of %d requests failed; first ones:\n%s", len(l.failures), l.total, strings.Join(l.failures[:min(len(l.failures), 10)], "\n"))
	}
	t.Logf("%d requests, by backend pid: %v", l.total, l.byPID)
}

// appPID is the pid of the demo backend app behind a workload, read through
// the mesh.
func backendPIDs(t *testing.T, client *workload, n int) map[int]bool {
	t.Helper()
	pids := map[int]bool{}
	eventually(t, 10*time.Second, 10*time.Millisecond, "every backend replica reached", func() error {
		br, err := client.getBackend("http://backend/")
		if err != nil {
			return err
		}
		pids[br.PID] = true
		if len(pids) < n {
			return fmt.Errorf("reached %d of %d replicas", len(pids), n)
		}
		return nil
	})
	return pids
}

// xdsState reads a workload's admin /xds.
type xdsState struct {
	Connected      bool      `json:"connected"`
	Since          time.Time `json:"since"`
	FailedAttempts int       `json:"failedAttempts"`
	LastError      string    `json:"lastError"`
}

func (w *workload) xds() (xdsState, error) {
	var st xdsState
	code, body, err := w.adminGet("/xds")
	if err != nil {
		return st, err
	}
	if code != 200 {
		return st, fmt.Errorf("/xds: %d %s", code, body)
	}
	return st, json.Unmarshal([]byte(body), &st)
}

// waitReconnected waits until every workload's xDS stream opened after
// since, and returns how long that took from since.
func waitReconnected(t *testing.T, since time.Time, within time.Duration, ws ...*workload) time.Duration {
	t.Helper()
	eventually(t, within, 20*time.Millisecond, "every proxy reconnected", func() error {
		for _, w := range ws {
			st, err := w.xds()
			if err != nil {
				return err
			}
			if !st.Connected || st.Since.Before(since) {
				return fmt.Errorf("%s: %+v", w.proc.name, st)
			}
		}
		return nil
	})
	return time.Since(since)
}

// startProxyWorkload starts a backend app and, separately, `weft proxy` in
// front of it, and waits until both serve.
func startProxyWorkload(t *testing.T, c *control, extraApp ...string) *workload {
	t.Helper()
	w := &workload{t: t, service: "backend", version: "v1", namespace: "default", app: freePort(t),
		inbound: freePort(t), outbound: freePort(t), admin: freePort(t)}
	startProc(t, "backend-app", nil, append(backendCmd(w.app, "v1"), extraApp...)...)
	w.proc = startProc(t, "backend-proxy", nil, weftBin, "proxy", "--data-dir", c.dataDir, "--service", "backend", "--version", "v1",
		"--app-port", strconv.Itoa(w.app), "--inbound-port", strconv.Itoa(w.inbound), "--outbound-port", strconv.Itoa(w.outbound), "--admin-port", strconv.Itoa(w.admin))
	w.client = proxyClient(w.outbound)
	t.Cleanup(w.client.CloseIdleConnections)
	w.waitReady()
	return w
}

// TestDrainUnderLoad (issue #8 item 16): SIGTERM to one of three replicas
// of a backend under ~100 rps loses no request: the replica's sidecar
// leaves the mesh, waits until the client's proxy has stopped sending,
// answers what is in flight, and only then stops the app — under `weft
// run`, and for `weft proxy` in front of a separately run app.
func TestDrainUnderLoad(t *testing.T) {
	// A third of the requests take 100 ms, so that requests are in flight
	// at the replica when it gets SIGTERM.
	slow := []string{"--slow-rate", "0.3", "--slow", "100ms"}
	for _, mode := range []string{"run", "proxy"} {
		t.Run(mode, func(t *testing.T) {
			c := startControl(t)
			var replicas []*workload
			for range 3 {
				if mode == "proxy" {
					replicas = append(replicas, startProxyWorkload(t, c, slow...))
					continue
				}
				p := freePort(t)
				replicas = append(replicas, startWorkload(t, c, wlOpts{service: "backend", version: "v1", appPort: p, waitApp: true,
					cmd: append(backendCmd(p, "v1"), slow...)}))
			}
			client := startClient(t, c, "client")
			backendPIDs(t, client, 3)

			l := startLoad(t, client, "http://backend/", 100, 15*time.Second)
			l.waitRequests(t, 100)
			victim := replicas[0]
			term := time.Now()
			if err := victim.proc.signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			code, err := victim.proc.wait(10 * time.Second)
			if err != nil {
				t.Fatalf("weft %s did not exit after SIGTERM: %v", mode, err)
			}
			took := time.Since(term)
			l.waitRequests(t, 100)
			l.finish()
			l.check(t)
			// demo-app exits 0 on SIGTERM, and so does weft proxy.
			if code != 0 {
				t.Errorf("weft %s exited %d after SIGTERM, want 0", mode, code)
			}
			if took > 6*time.Second {
				t.Errorf("stopping took %v; the drain ends once peers are quiet (1s), at most 5s", took)
			}
			_, stderr := victim.proc.output()
			if !strings.Contains(stderr, "drained") {
				t.Errorf("the replica's log does not show the drain:\n%s", stderr)
			}
			if mode == "run" && (!strings.Contains(stderr, "stopping app") || strings.Index(stderr, "drained") > strings.Index(stderr, "stopping app")) {
				t.Errorf("the app was not stopped after the inbound drained:\n%s", stderr)
			}
			t.Logf("stopped %v after SIGTERM", took.Round(time.Millisecond))
		})
	}
}

// waitListed waits until `weft proxy-status` lists n proxies with their
// config synced.
func waitListed(t *testing.T, c *control, n int, within time.Duration) {
	t.Helper()
	took := eventually(t, within, 50*time.Millisecond, "control plane lists every proxy", func() error {
		r := c.cli("proxy-status")
		if r.code != 0 {
			return fmt.Errorf("%s", r)
		}
		if got := strings.Count(r.stdout, "SYNCED"); got != n {
			return fmt.Errorf("%d of %d proxies synced:\n%s", got, n, r.stdout)
		}
		return nil
	})
	t.Logf("the control plane listed every proxy %v after it was back", took.Round(time.Millisecond))
}

// TestReconnectAfterControlRestart (issue #8 item 17): after a control-plane
// restart every proxy is connected again within 5 s, as `weft proxy-status`
// (the control plane's view) and each proxy's admin /xds and `weft
// proxy-status --admin` (the proxy's own view) show.
func TestReconnectAfterControlRestart(t *testing.T) {
	c := startControl(t)
	backend := startBackend(t, c, "v1")
	client := startClient(t, c, "client")
	backendPIDs(t, client, 1)

	if err := c.proc.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := c.proc.wait(15 * time.Second); err != nil {
		t.Fatalf("control plane did not stop: %v", err)
	}
	// Let the reconnect backoff grow to its cap before the control plane
	// returns (gRPC's default connection backoff would reach 10 s by
	// then): the outage is the condition under test, not a poll.
	time.Sleep(10 * time.Second)
	r := runWeft(t, "proxy-status", "--admin", addr(client.admin))
	if r.code != 0 || !strings.Contains(r.stdout, "DISCONNECTED") || !strings.Contains(r.stdout, "connection refused") {
		t.Errorf("proxy-status --admin while the control plane is down:\n%s", r)
	}

	c.start()
	up := time.Now()
	waitListed(t, c, 2, 5*time.Second)
	waitReconnected(t, up, time.Second, backend, client)
	r = runWeft(t, "proxy-status", "--admin", addr(client.admin))
	if r.code != 0 || !strings.Contains(r.stdout, "CONNECTED since") || strings.Contains(r.stdout, "DISCONNECTED") {
		t.Errorf("proxy-status --admin after the restart:\n%s", r)
	}
}

// TestRunUnreachableControlPlane (issue #8 item 17): `weft run` with no
// reachable control plane says what fails while it waits and exits
// non-zero after --startup-timeout, without starting the app.
func TestRunUnreachableControlPlane(t *testing.T) {
	c := startControl(t)
	dead := freePort(t)
	start := time.Now()
	r := runWeft(t, "run", "--data-dir", c.dataDir, "--control", addr(dead), "--service", "lonely",
		"--inbound-port", "0", "--outbound-port", "0", "--admin-port", "0", "--startup-timeout", "3s",
		"--", "sh", "-c", "echo app-started")
	took := time.Since(start)
	if r.code == 0 {
		t.Errorf("weft run exited 0 with no control plane:\n%s", r)
	}
	if strings.Contains(r.stdout, "app-started") {
		t.Errorf("the app started without a sidecar:\n%s", r)
	}
	for _, want := range []string{"connection refused", "after 3s"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	if took > 10*time.Second {
		t.Errorf("weft run took %v to give up with --startup-timeout 3s", took)
	}
	if n := strings.Count(r.stderr, "connection refused"); n > 4 {
		t.Errorf("%d lines about the refused connection in 3s; the log is not rate-limited:\n%s", n, r.stderr)
	}
}

// TestControlPlaneDown (issue #8 fault drill): with the control plane away
// for controlDownFor, calls between running services never fail, and when
// it returns every proxy reconnects within 5 s — well inside the control
// plane's 20 s grace for the workloads it restores.
func TestControlPlaneDown(t *testing.T) {
	if testing.Short() {
		t.Skip("takes " + strconv.Itoa(int(controlDownFor.Seconds())) + "s")
	}
	c := startControl(t)
	b1, b2 := startBackend(t, c, "v1"), startBackend(t, c, "v1")
	client := startClient(t, c, "client")
	backendPIDs(t, client, 2)

	l := startLoad(t, client, "http://backend/", 20, controlDownFor+60*time.Second)
	l.waitRequests(t, 20)
	if err := c.proc.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := c.proc.wait(15 * time.Second); err != nil {
		t.Fatalf("control plane did not stop: %v", err)
	}
	time.Sleep(controlDownFor)
	c.start()
	up := time.Now()
	waitListed(t, c, 3, 5*time.Second)
	waitReconnected(t, up, time.Second, b1, b2, client)
	l.waitRequests(t, 40)
	l.finish()
	l.check(t)
	_, by := l.counts()
	if len(by) != 2 {
		t.Errorf("requests reached %d backend replicas, want both: %v", len(by), by)
	}
}
