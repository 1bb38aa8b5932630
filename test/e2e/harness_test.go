package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// trustDomain is the default trust domain of `weft control`.
const trustDomain = "cluster.local"

// spiffeID is the identity of a workload of service svc in namespace ns.
func spiffeID(ns, svc string) string {
	return "spiffe://" + trustDomain + "/ns/" + ns + "/sa/" + svc
}

// ---------------------------------------------------------------------------
// Ports

var (
	portMu   sync.Mutex
	usedPort = map[int]bool{}
)

// freePort returns a loopback TCP port that was free a moment ago and that
// this test binary has not handed out before.
func freePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !usedPort[p] {
			usedPort[p] = true
			return p
		}
	}
	t.Fatal("no free port found")
	return 0
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// ---------------------------------------------------------------------------
// Processes

// proc is one process started by a test; it is killed when the test ends and
// its output is dumped with t.Log if the test failed.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout string // file paths
	stderr string
	done   chan struct{}
	err    error // Wait's result, set before done closes
}

// startProc starts bin args in its own process group, with stdout and stderr
// captured to files in the test's temp dir.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	dir := filepath.Join(logDir(t), name)
	for i := 2; ; i++ { // restarts get their own files
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			break
		}
		dir = filepath.Join(logDir(t), fmt.Sprintf("%s.%d", name, i))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: filepath.Base(dir), stdout: filepath.Join(dir, "stdout"), stderr: filepath.Join(dir, "stderr"), done: make(chan struct{})}
	outf, err := os.Create(p.stdout)
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = outf, errf
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		outf.Close()
		errf.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		outf.Close()
		errf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(3 * time.Second)
		// With WEFT_E2E_RACE=1 the binary reports data races on stderr.
		if _, e := p.output(); strings.Contains(e, "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector found a data race (see its stderr below)", p.name)
		}
		if t.Failed() {
			p.dump(t)
		}
	})
	return p
}

// logDir is the directory holding the test's process output.
func logDir(t *testing.T) string {
	t.Helper()
	logDirsMu.Lock()
	defer logDirsMu.Unlock()
	if d, ok := logDirs[t]; ok {
		return d
	}
	d := t.TempDir()
	logDirs[t] = d
	t.Cleanup(func() {
		logDirsMu.Lock()
		delete(logDirs, t)
		logDirsMu.Unlock()
	})
	return d
}

var (
	logDirsMu sync.Mutex
	logDirs   = map[*testing.T]string{}
)

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to exit and returns its exit code
// (-1 for a signal) or an error on timeout.
func (p *proc) wait(d time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(d):
		return 0, fmt.Errorf("%s (pid %d) still running after %v", p.name, p.pid(), d)
	}
	return p.cmd.ProcessState.ExitCode(), nil
}

// signal sends sig to the process itself (not its group).
func (p *proc) signal(sig syscall.Signal) error {
	return p.cmd.Process.Signal(sig)
}

// stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs
// the group. It always waits for the process to be reaped.
func (p *proc) stop(grace time.Duration) {
	if !p.exited() {
		syscall.Kill(-p.pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// Kill whatever is left of the group (e.g. an app whose sidecar died).
	syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.done
}

// output returns the captured stdout and stderr so far.
func (p *proc) output() (stdout, stderr string) {
	o, _ := os.ReadFile(p.stdout)
	e, _ := os.ReadFile(p.stderr)
	return string(o), string(e)
}

func (p *proc) dump(t *testing.T) {
	const max = 24 << 10
	o, e := p.output()
	tail := func(s string) string {
		if len(s) > max {
			return "...[truncated]...\n" + s[len(s)-max:]
		}
		return s
	}
	state := "running"
	if p.exited() {
		state = fmt.Sprintf("exited: %v", p.err)
	}
	t.Logf("==== %s (pid %d, %s)\n---- stdout:\n%s\n---- stderr:\n%s", p.name, p.pid(), state, tail(o), tail(e))
}

// ---------------------------------------------------------------------------
// Control plane

// control is a `weft control` process and its data dir.
type control struct {
	t       *testing.T
	dataDir string
	xds     int
	api     int
	proc    *proc
	// args are extra flags of `weft control`.
	args []string
	// tokens caches the join tokens made for namespaces other than
	// default, which the default token does not cover.
	tokensMu sync.Mutex
	tokens   map[string]string
}

// namespaceToken returns a join token for namespace ns, created with
// `weft token create` on first use.
func (c *control) namespaceToken(ns string) string {
	c.t.Helper()
	c.tokensMu.Lock()
	defer c.tokensMu.Unlock()
	if tok, ok := c.tokens[ns]; ok {
		return tok
	}
	r := c.cli("token", "create", "--namespace", ns)
	if r.code != 0 {
		c.t.Fatalf("creating a join token for namespace %s:\n%s", ns, r)
	}
	if c.tokens == nil {
		c.tokens = map[string]string{}
	}
	c.tokens[ns] = strings.TrimSpace(r.stdout)
	return c.tokens[ns]
}

// startControl starts a control plane in a fresh data dir on free ports and
// waits until it serves. args are extra flags.
func startControl(t *testing.T, args ...string) *control {
	t.Helper()
	c := &control{t: t, dataDir: filepath.Join(t.TempDir(), "data"), xds: freePort(t), api: freePort(t), args: args}
	c.start()
	return c
}

// start (re)starts the control plane on c's ports and data dir.
func (c *control) start() {
	t := c.t
	t.Helper()
	c.proc = startProc(t, "control", nil, append([]string{weftBin, "control",
		"--data-dir", c.dataDir, "--listen", addr(c.xds), "--api-listen", addr(c.api)}, c.args...)...)
	eventually(t, 20*time.Second, 100*time.Millisecond, "control plane ready", func() error {
		if c.proc.exited() {
			return stopErr{fmt.Errorf("control plane exited: %v", c.proc.err)}
		}
		b, err := os.ReadFile(filepath.Join(c.dataDir, "control.json"))
		if err != nil {
			return err
		}
		var conn struct {
			XDS, API    string
			TrustDomain string
			PID         int
		}
		if err := json.Unmarshal(b, &conn); err != nil {
			return fmt.Errorf("control.json: %w", err)
		}
		if conn.PID != c.proc.pid() {
			return fmt.Errorf("control.json has pid %d, want %d", conn.PID, c.proc.pid())
		}
		if conn.XDS != addr(c.xds) || conn.API != addr(c.api) {
			return stopErr{fmt.Errorf("control.json has xds=%q api=%q, want %q and %q", conn.XDS, conn.API, addr(c.xds), addr(c.api))}
		}
		if conn.TrustDomain != trustDomain {
			return stopErr{fmt.Errorf("control.json has trustDomain %q, want %q", conn.TrustDomain, trustDomain)}
		}
		files := []string{"ca.pem", "join-token", "admin-token"}
		if !slices.Contains(c.args, "--store") {
			files = append(files, "weft.db") // the embedded store's file
		}
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(c.dataDir, f)); err != nil {
				return err
			}
		}
		for _, p := range []int{c.xds, c.api} {
			conn, err := net.DialTimeout("tcp", addr(p), time.Second)
			if err != nil {
				return err
			}
			conn.Close()
		}
		return nil
	})
}

// cli runs `weft ARGS --data-dir D` to completion.
func (c *control) cli(args ...string) cliResult {
	c.t.Helper()
	return runWeft(c.t, append(args, "--data-dir", c.dataDir)...)
}

// cliResult is the outcome of a short-lived weft command.
type cliResult struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("weft %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// runWeft runs the weft binary with args and a 60s timeout.
func runWeft(t *testing.T, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, weftBin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := cliResult{args: args, stdout: o.String(), stderr: e.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running weft %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("weft %s timed out\n%s", strings.Join(args, " "), r)
	}
	return r
}

// apply writes yaml to a file and runs `weft apply -f` on it; it fails the
// test unless the command succeeds.
func (c *control) apply(yaml string) {
	c.t.Helper()
	f := filepath.Join(c.t.TempDir(), "apply.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		c.t.Fatal(err)
	}
	if r := c.cli("apply", "-f", f); r.code != 0 {
		c.t.Fatalf("apply failed:\n%s\nfile:\n%s", r, yaml)
	}
}

// ---------------------------------------------------------------------------
// Workloads

// workload is a `weft run` process.
type workload struct {
	t                             *testing.T
	service, version, namespace   string
	app, inbound, outbound, admin int
	proc                          *proc
	client                        *http.Client // through this workload's outbound proxy
}

// wlOpts describes a workload to start.
type wlOpts struct {
	service   string
	version   string
	namespace string
	// appPort is the app's port; 0 for a workload that only makes calls.
	appPort int
	// cmd is the app's command line; it is run as `weft run ... -- cmd...`.
	cmd []string
	// waitApp waits until something listens on appPort.
	waitApp bool
	// env is added to the environment of `weft run`. A workload outside
	// namespace default gets a join token for its namespace unless env
	// sets WEFT_JOIN_TOKEN.
	env []string
	// appProtocol is --app-protocol ("": the default, http).
	appProtocol string
	// flags are more `weft run` flags (e.g. --upstream, --egress).
	flags []string
	// wrap, if set, runs `weft run` through this command line (e.g.
	// privateHosts).
	wrap []string
}

// startWorkload starts `weft run` against c and waits until its sidecar is
// ready (and, with waitApp, its app listens).
func startWorkload(t *testing.T, c *control, o wlOpts) *workload {
	t.Helper()
	if o.namespace == "" {
		o.namespace = "default"
	}
	w := &workload{t: t, service: o.service, version: o.version, namespace: o.namespace, app: o.appPort,
		inbound: freePort(t), outbound: freePort(t), admin: freePort(t)}
	args := []string{weftBin, "run", "--data-dir", c.dataDir, "--service", o.service, "--namespace", o.namespace,
		"--inbound-port", strconv.Itoa(w.inbound), "--outbound-port", strconv.Itoa(w.outbound), "--admin-port", strconv.Itoa(w.admin)}
	if o.version != "" {
		args = append(args, "--version", o.version)
	}
	if o.appPort != 0 {
		args = append(args, "--app-port", strconv.Itoa(o.appPort))
	}
	if o.appProtocol != "" {
		args = append(args, "--app-protocol", o.appProtocol)
	}
	args = append(args, o.flags...)
	args = append(args, "--")
	args = append(args, o.cmd...)
	args = append(slices.Clone(o.wrap), args...)
	name := o.service
	if o.version != "" {
		name += "-" + o.version
	}
	env := o.env
	if o.namespace != "default" && !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "WEFT_JOIN_TOKEN=") }) {
		env = append(slices.Clone(env), "WEFT_JOIN_TOKEN="+c.namespaceToken(o.namespace))
	}
	w.proc = startProc(t, name, env, args...)
	w.client = proxyClient(w.outbound)
	t.Cleanup(w.client.CloseIdleConnections)
	w.waitReady()
	if o.waitApp && o.appPort != 0 {
		eventually(t, 15*time.Second, 50*time.Millisecond, name+" app listening", func() error {
			if w.proc.exited() {
				return stopErr{fmt.Errorf("weft run exited: %v", w.proc.err)}
			}
			conn, err := net.DialTimeout("tcp", addr(o.appPort), time.Second)
			if err != nil {
				return err
			}
			return conn.Close()
		})
	}
	return w
}

// backendCmd is the command line of a demo backend app on port.
func backendCmd(port int, version string) []string {
	return []string{weftBin, "demo-app", "backend", "--listen", addr(port), "--version", version}
}

// startBackend starts a demo backend of the given version under `weft run --service backend`.
func startBackend(t *testing.T, c *control, version string) *workload {
	t.Helper()
	p := freePort(t)
	return startWorkload(t, c, wlOpts{service: "backend", version: version, appPort: p, cmd: backendCmd(p, version), waitApp: true})
}

// startClient starts a call-only workload whose app sleeps; the test sends
// requests through its outbound proxy.
func startClient(t *testing.T, c *control, service string) *workload {
	t.Helper()
	return startWorkload(t, c, wlOpts{service: service, cmd: []string{"sleep", "3600"}})
}

func (w *workload) spiffeID() string { return spiffeID(w.namespace, w.service) }

// waitReady waits until the sidecar's /ready answers 200.
func (w *workload) waitReady() {
	w.t.Helper()
	eventually(w.t, 20*time.Second, 100*time.Millisecond, w.proc.name+" /ready", func() error {
		if w.proc.exited() {
			return stopErr{fmt.Errorf("weft run exited: %v", w.proc.err)}
		}
		code, body, err := w.adminGet("/ready")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/ready: %d %s", code, body)
		}
		return nil
	})
}

// adminGet GETs path on the workload's admin port.
func (w *workload) adminGet(path string) (int, string, error) {
	return plainGet("http://" + addr(w.admin) + path)
}

// metrics fetches and parses the workload's /metrics.
func (w *workload) metrics() ([]sample, error) {
	code, body, err := w.adminGet("/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %d %s", code, body)
	}
	return parseMetrics(body)
}

// configDump fetches the workload's /config_dump.
func (w *workload) configDump() (string, error) {
	code, body, err := w.adminGet("/config_dump")
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("/config_dump: %d %s", code, body)
	}
	if !json.Valid([]byte(body)) {
		return "", stopErr{fmt.Errorf("/config_dump is not JSON: %.200s", body)}
	}
	return body, nil
}

var plainClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

func plainGet(u string) (int, string, error) {
	resp, err := plainClient.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// proxyClient returns an HTTP client that sends every request through the
// plain HTTP proxy on 127.0.0.1:port.
func proxyClient(port int) *http.Client {
	pu := &url.URL{Scheme: "http", Host: addr(port)}
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{Proxy: http.ProxyURL(pu), MaxIdleConnsPerHost: 8},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// response is a request's outcome through the mesh.
type response struct {
	code   int
	body   string
	header http.Header
}

// get sends GET u through the workload's outbound proxy with extra headers
// (pairs of name, value).
func (w *workload) get(u string, hdr ...string) (response, error) {
	return w.do(http.MethodGet, u, hdr...)
}

// do sends a request without a body through the workload's outbound proxy.
func (w *workload) do(method, u string, hdr ...string) (response, error) {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("reading body: %w", err)
	}
	return response{code: resp.StatusCode, body: string(b), header: resp.Header}, nil
}

// backendReply is the demo backend's JSON reply.
type backendReply struct {
	Service string `json:"service"`
	Version string `json:"version"`
	PID     int    `json:"pid"`
	Caller  string `json:"caller"`
	Error   string `json:"error"`
}

// getBackend GETs u through w and decodes a 200 demo-backend reply.
func (w *workload) getBackend(u string, hdr ...string) (backendReply, error) {
	var br backendReply
	r, err := w.get(u, hdr...)
	if err != nil {
		return br, err
	}
	if r.code != http.StatusOK {
		return br, fmt.Errorf("GET %s: status %d: %.300s", u, r.code, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), &br); err != nil {
		return br, fmt.Errorf("GET %s: decoding %.300q: %w", u, r.body, err)
	}
	return br, nil
}

// ---------------------------------------------------------------------------
// Metrics

// sample is one Prometheus sample.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseMetrics parses the Prometheus text format (enough of it for tests).
func parseMetrics(text string) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		i := strings.IndexAny(line, "{ ")
		if i < 0 {
			return nil, fmt.Errorf("bad metric line %q", line)
		}
		s.name, line = line[:i], line[i:]
		if line[0] == '{' {
			rest, err := parseLabels(line[1:], s.labels)
			if err != nil {
				return nil, fmt.Errorf("metric %s: %w", s.name, err)
			}
			line = rest
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			return nil, fmt.Errorf("metric %s: no value", s.name)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", s.name, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseLabels parses `k="v",...}` into m and returns what follows the '}'.
func parseLabels(s string, m map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return "", fmt.Errorf("bad labels at %q", s)
		}
		k := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var v strings.Builder
		closed := false
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(s[i])
				}
				continue
			}
			if c == '"' {
				s = s[i+1:]
				closed = true
				break
			}
			v.WriteByte(c)
		}
		if !closed {
			return "", errors.New("unterminated label value")
		}
		m[k] = v.String()
	}
}

// sum adds up the samples named name whose labels include want; a wanted
// value "a|b" matches either a or b.
func sum(samples []sample, name string, want map[string]string) float64 {
	var total float64
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range want {
			if !slices.Contains(strings.Split(v, "|"), s.labels[k]) {
				continue next
			}
		}
		total += s.value
	}
	return total
}

// describe lists the samples named name, for failure messages.
func describe(samples []sample, name string) string {
	var b strings.Builder
	n := 0
	for _, s := range samples {
		if s.name != name {
			continue
		}
		if n++; n > 12 {
			b.WriteString("\n  ...")
			break
		}
		fmt.Fprintf(&b, "\n  %s%v %v", s.name, s.labels, s.value)
	}
	if n == 0 {
		return " (no " + name + " samples)"
	}
	return b.String()
}

// destService is the destination_service label value(s) accepted for
// service name in namespace default: the bare name, or the name qualified
// by its namespace (what weft reports today).
func destService(name string) string { return name + "|" + name + ".default" }

// ---------------------------------------------------------------------------
// Polling

// stopErr marks an error that no amount of waiting will fix.
type stopErr struct{ error }

// eventually calls f every interval until it returns nil, failing the test
// with f's last error if that does not happen within timeout (or at once if
// f returns a stopErr). It returns how long it took.
func eventually(t testing.TB, timeout, interval time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		var se stopErr
		if errors.As(err, &se) {
			t.Fatalf("%s: %v", what, se.error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(interval)
	}
}

// docYAML returns the first ```yaml block of docs/<page> for which match
// holds, given the page's text before the block and the block, so that
// tests apply the documentation verbatim.
func docYAML(t *testing.T, page string, match func(before, block string) bool) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", page))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(b), "```yaml\n")
	for i := 1; i < len(parts); i++ {
		block, _, ok := strings.Cut(parts[i], "```")
		if !ok {
			t.Fatalf("docs/%s: a YAML block is not closed", page)
		}
		if match(parts[i-1], block) {
			return block
		}
	}
	t.Fatalf("docs/%s: no matching YAML block", page)
	return ""
}

// docExample is the block whose first line is "# example: <name>".
func docExample(name string) func(before, block string) bool {
	return func(_, block string) bool { return strings.HasPrefix(block, "# example: "+name+"\n") }
}

// docMarked is the block right after the line "<!-- e2e: <name> -->".
func docMarked(name string) func(before, block string) bool {
	return func(before, _ string) bool { return strings.HasSuffix(before, "<!-- e2e: "+name+" -->\n") }
}

// docContaining is the first block containing s.
func docContaining(s string) func(before, block string) bool {
	return func(_, block string) bool { return strings.Contains(block, s) }
}
