// Package demo orchestrates `weft demo`: a control plane and sample services,
// each under its own sidecar, plus steady traffic, all as child processes of
// the weft binary on loopback. Stopping the demo stops every child.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"weft.dev/weft/internal/childproc"
	"weft.dev/weft/internal/connfile"
)

// Options configure a demo run.
type Options struct {
	// Exe is the weft binary to start children with.
	Exe string
	// DataDir is the demo's own data dir; it is created if needed.
	DataDir string
	// Out receives the summary of what runs where.
	Out io.Writer
	// Break names a service to make fail (BreakableServices), "" for none.
	Break  string
	Logger *slog.Logger
}

// BreakableServices are the services `weft demo --break` can make fail.
var BreakableServices = []string{"backend", "frontend"}

// breakFailRate is the share of requests a broken service fails.
const breakFailRate = "0.5"

// statsInterval is how often the demo's control plane scrapes the sidecars,
// so that weft stat names a broken service within seconds.
const statsInterval = "5s"

// workload is one sample service under `weft run`.
type workload struct {
	service, version string
	app              []string // demo-app arguments
	appPort          int
	adminPort        int
	outboundPort     int
}

// Run starts the demo and blocks until ctx ends, then stops everything.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	if opts.Break != "" && !slices.Contains(BreakableServices, opts.Break) {
		return fmt.Errorf("--break %q: the demo can break %s", opts.Break, strings.Join(BreakableServices, " or "))
	}
	logDir := filepath.Join(opts.DataDir, "logs")
	// The data dir holds the CA's key and the tokens: private, as weft
	// check wants it.
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating demo dir: %w", err)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("creating demo dir: %w", err)
	}
	var procs []*proc
	exited := make(chan string, 16)
	defer func() { stopAll(procs, log) }()

	start := func(name string, args ...string) (*exec.Cmd, error) {
		lf, err := os.Create(filepath.Join(logDir, name+".log"))
		if err != nil {
			return nil, err
		}
		defer lf.Close()
		cmd := exec.Command(opts.Exe, append([]string{"--data-dir", opts.DataDir}, args...)...)
		cmd.Stdout, cmd.Stderr = lf, lf
		cmd.SysProcAttr = childproc.Attr(syscall.SIGTERM)
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting %s: %w", name, err)
		}
		p := &proc{cmd: cmd, name: name, done: make(chan struct{})}
		go func() {
			_ = cmd.Wait()
			close(p.done)
			exited <- name
		}()
		procs = append(procs, p)
		return cmd, nil
	}

	ports, err := freePorts(24)
	if err != nil {
		return err
	}
	next := func() int { p := ports[0]; ports = ports[1:]; return p }
	xdsPort, apiPort := next(), next()
	_ = os.Remove(filepath.Join(opts.DataDir, connfile.ConnectionFile))
	breakDir, err := breakFiles(opts.DataDir)
	if err != nil {
		return err
	}
	ctl, err := start("control", "control", "--listen", "127.0.0.1:"+strconv.Itoa(xdsPort), "--api-listen", "127.0.0.1:"+strconv.Itoa(apiPort), "--demo-break-dir", breakDir, "--stats-interval", statsInterval)
	if err != nil {
		return err
	}
	conn, err := waitConnection(ctx, opts.DataDir, ctl.Process.Pid, 15*time.Second)
	if err != nil {
		return fmt.Errorf("control plane did not start (see %s): %w", filepath.Join(logDir, "control.log"), err)
	}
	if err := applyConfig(ctx, opts.Exe, opts.DataDir); err != nil {
		return err
	}

	ws := []*workload{
		{service: "backend", version: "v1", app: []string{"backend", "--version", "v1", "--fail-rate", "0.05", "--slow-rate", "0.05"}},
		{service: "backend", version: "v2", app: []string{"backend", "--version", "v2", "--fail-rate", "0.2", "--slow-rate", "0.2"}},
		{service: "greeter", version: "v1", app: []string{"greeter", "--version", "v1"}},
		{service: "frontend", version: "v1", app: []string{"frontend"}},
		{service: "loadgen", app: []string{"load", "--url", "http://frontend/", "--rps", "5"}},
	}
	breakService(ws, opts.Break)
	for i, w := range ws {
		if w.service != "loadgen" {
			w.appPort = next()
		}
		w.adminPort = next()
		if w.service == "frontend" || w.service == "loadgen" {
			w.outboundPort = next()
		}
		args := []string{"run", "--service", w.service, "--admin-port", strconv.Itoa(w.adminPort)}
		if w.version != "" {
			args = append(args, "--version", w.version)
		}
		if w.appPort != 0 {
			args = append(args, "--app-port", strconv.Itoa(w.appPort))
		}
		if w.outboundPort != 0 {
			args = append(args, "--outbound-port", strconv.Itoa(w.outboundPort))
		}
		args = append(args, "--", opts.Exe, "demo-app")
		args = append(args, w.app...)
		if slices.Contains(breakable, w.service) {
			args = append(args, "--fail-rate-file", filepath.Join(breakDir, w.service))
		}
		if w.appPort != 0 {
			args = append(args, "--listen", "127.0.0.1:"+strconv.Itoa(w.appPort))
		}
		name := fmt.Sprintf("%s-%d", w.service, i)
		if w.version != "" {
			name = w.service + "-" + w.version
		}
		if _, err := start(name, args...); err != nil {
			return err
		}
	}
	for _, w := range ws {
		if err := waitReady(ctx, w.adminPort, 30*time.Second); err != nil {
			return fmt.Errorf("%s sidecar not ready (logs in %s): %w", w.service, logDir, err)
		}
	}
	if link, err := dashboardLink(ctx, opts.Exe, opts.DataDir); err != nil {
		log.Warn("no dashboard login link", "err", err)
	} else {
		fmt.Fprintf(opts.Out, "Dashboard: %s\n  (the link works once, within the hour; `weft dashboard --data-dir %s` prints a new one;\n  its \"break backend\" button makes backend fail half of its requests)\n\n", link, opts.DataDir)
	}
	printSummary(opts.Out, opts.DataDir, conn, ws, opts.Break)

	// Every 5 s, what the loadgen and frontend sidecars saw.
	var admins []string
	for _, w := range ws {
		if w.service == "loadgen" || w.service == "frontend" {
			admins = append(admins, "127.0.0.1:"+strconv.Itoa(w.adminPort))
		}
	}
	reportCtx, stopReport := context.WithCancel(ctx)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		reportTraffic(reportCtx, opts.Out, admins, 5*time.Second)
	}()
	defer func() {
		stopReport()
		<-reported
	}()

	select {
	case <-ctx.Done():
		fmt.Fprintln(opts.Out, "\nstopping the demo...")
		return nil
	case who := <-exited:
		return fmt.Errorf("a demo process exited unexpectedly: %s (logs in %s)", who, logDir)
	}
}

// breakService makes the workloads of service fail breakFailRate of their
// requests on their own.
func breakService(ws []*workload, service string) {
	for _, w := range ws {
		if w.service != service {
			continue
		}
		if i := slices.Index(w.app, "--fail-rate"); i >= 0 {
			w.app[i+1] = breakFailRate
		} else {
			w.app = append(w.app, "--fail-rate", breakFailRate)
		}
	}
}

func printSummary(out io.Writer, dataDir string, conn connfile.Connection, ws []*workload, broken string) {
	fmt.Fprintf(out, "weft demo is running: a control plane and %d workloads, every hop mutual TLS.\n\n", len(ws))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "SERVICE\tVERSION\tAPP\tSIDECAR ADMIN\n")
	for _, w := range ws {
		app := "-"
		if w.appPort != 0 {
			app = "127.0.0.1:" + strconv.Itoa(w.appPort)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\thttp://127.0.0.1:%d/metrics\n", w.service, orDash(w.version), app, w.adminPort)
	}
	tw.Flush()
	var front *workload
	for _, w := range ws {
		if w.service == "frontend" {
			front = w
		}
	}
	fmt.Fprintf(out, "\ncontrol plane: xDS %s, API https://%s (data dir %s)\n", conn.XDS, conn.API, dataDir)
	fmt.Fprintf(out, "loadgen sends 5 requests/s to http://frontend/, which calls greeter (gRPC) and backend (v1, v2: sometimes\n")
	fmt.Fprintf(out, "failing or slow). An HTTPRoute sends 80%% of backend calls to v1, 20%% and all calls with x-canary: 1 to v2.\n")
	if broken != "" {
		fmt.Fprintf(out, "--break %s: %s fails half of its requests on its own; weft stat names it within about 15 s.\n", broken, broken)
	}
	fmt.Fprintf(out, "\n")
	fmt.Fprintf(out, "Try it:\n")
	fmt.Fprintf(out, "  curl -x http://127.0.0.1:%d http://frontend/                    # through the frontend's sidecar\n", front.outboundPort)
	fmt.Fprintf(out, "  curl -x http://127.0.0.1:%d -H 'x-canary: 1' http://backend/    # always v2\n", front.outboundPort)
	fmt.Fprintf(out, "  go run ./cmd/weft stat --data-dir %s    # requests/s, success, latency; the failing service\n", dataDir)
	fmt.Fprintf(out, "  go run ./cmd/weft top --data-dir %s\n", dataDir)
	fmt.Fprintf(out, "  go run ./cmd/weft get httproutes --data-dir %s\n", dataDir)
	fmt.Fprintf(out, "  go run ./cmd/weft proxy-status --data-dir %s\n", dataDir)
	fmt.Fprintf(out, "  logs: %s\n\nPress Ctrl-C to stop everything. Traffic the sidecars see, every 5 s:\n", filepath.Join(dataDir, "logs"))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type proc struct {
	cmd  *exec.Cmd
	name string
	done chan struct{}
}

// stopAll stops the workloads first (SIGTERM, in reverse start order) and
// the control plane (the first process) last, so that no proxy sees its
// control plane vanish; anything still running after a grace period is
// killed.
func stopAll(procs []*proc, log *slog.Logger) {
	if len(procs) == 0 {
		return
	}
	stop := func(ps []*proc) {
		for i := len(ps) - 1; i >= 0; i-- {
			_ = ps[i].cmd.Process.Signal(syscall.SIGTERM)
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, p := range ps {
			select {
			case <-p.done:
			case <-time.After(time.Until(deadline)):
				log.Warn("killing demo process that did not stop", "name", p.name)
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
	}
	stop(procs[1:])
	stop(procs[:1])
}

func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// waitConnection waits for the control plane with pid to write its
// connection file.
func waitConnection(ctx context.Context, dir string, pid int, timeout time.Duration) (connfile.Connection, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := connfile.Read(dir)
		if err == nil && c.PID == pid {
			return c, nil
		}
		if time.Now().After(deadline) {
			return c, errors.New("timed out waiting for the connection file")
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func waitReady(ctx context.Context, adminPort int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	addr := "127.0.0.1:" + strconv.Itoa(adminPort)
	for {
		ok, why := readyOK(addr)
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/ready did not answer 200 within %s (last answer: %s)", addr, timeout, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
