//go:build linux

// Command bench is weft's performance harness. It measures the data plane
// (weft's sidecar pair against direct calls and nginx, HAProxy and Caddy
// pairs, side by side in one run) and the control plane (N simulated xDS
// proxies: convergence time after a config or endpoint change, memory per
// connected proxy, CPU per push), and appends Markdown tables to
// bench/RESULTS.md. It installs nothing: missing peer proxies are skipped
// with a message saying how to get them. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run is main without the exit, for the smoke test.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	suite := fs.String("suite", "dataplane", "dataplane, controlplane or all")
	duration := fs.Duration("duration", 10*time.Second, "dataplane: measured time per variant, protocol and mode (split over -rounds)")
	rps := fs.Float64("rps", 1000, "dataplane: open-loop request rate")
	conns := fs.Int("conns", 16, "dataplane: keep-alive connections of the load generator")
	variants := fs.String("variants", "direct,weft,weft-telemetry,nginx,haproxy,caddy", "dataplane: variants to run, comma-separated (weft-telemetry: weft with access logs and 1% tracing on)")
	protos := fs.String("protocols", "http1,grpc", "dataplane: http1, grpc")
	rounds := fs.Int("rounds", 2, "dataplane: interleaved rounds (each gets duration/rounds)")
	threads := fs.Int("proxy-threads", 1, "dataplane: worker processes (nginx), threads (HAProxy) or GOMAXPROCS (weft, Caddy) per proxy")
	smoke := fs.Bool("smoke", false, "short run for CI: 0.5s per variant, protocol and mode (2s per variant), 200 rps, 4 connections; controlplane: 20 proxies, 10 services, 40 endpoints")
	caddy := fs.String("caddy", "", "path of the caddy binary (default: caddy on PATH or in $GOPATH/bin)")
	weftBin := fs.String("weft", "", "path of a built weft binary (default: go build ./cmd/weft into a temp dir)")
	proxies := fs.String("proxies", "500,1000,2000", "controlplane: proxy counts, the curve's points (cumulative)")
	services := fs.Int("services", 500, "controlplane: services")
	endpoints := fs.Int("endpoints", 5000, "controlplane: endpoints (registered workloads with addresses)")
	events := fs.Int("events", 5, "controlplane: changes of each kind measured per proxy count")
	cpStores := fs.String("cp-stores", "bolt", "controlplane: stores to measure one after the other in this run: bolt, etcd (a local etcd member from -cp-etcd-bin)")
	etcdBin := fs.String("cp-etcd-bin", filepath.Join(os.Getenv("HOME"), ".cache/weft/kube-v1.37.2/etcd"), "controlplane: etcd binary for -cp-stores etcd (test/etcd/build.sh builds it)")
	out := fs.String("out", "", "results file to append to (default: bench/RESULTS.md in the module; \"-\" for stdout only)")
	keep := fs.Bool("keep", false, "keep the temp dir with configs and logs")
	authzRules := fs.Int("authz-rules", 0, "dataplane: put an AuthorizationPolicy of this many rules on weft's server-side proxy (0: none)")
	pprofDir := fs.String("pprof", "", "dataplane: write CPU profiles of the weft proxies during the first open-loop round of each protocol into this dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, time.Now().Format("15:04:05 ")+format+"\n", a...)
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	resultsPath := *out
	if resultsPath == "" {
		resultsPath = filepath.Join(root, "bench", "RESULTS.md")
	}
	bin := *weftBin
	if bin == "" {
		tmp, err := os.MkdirTemp("", "weft-bench-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		bin = filepath.Join(tmp, "weft")
		logf("building weft (go build ./cmd/weft)")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/weft")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, stderr, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building weft: %w", err)
		}
	}
	meta := collectMeta(root, *caddy)
	var sections []string
	if *suite == "dataplane" || *suite == "all" {
		cfg := dpConfig{Duration: *duration, RPS: *rps, Conns: *conns, Variants: splitList(*variants), Protos: splitList(*protos),
			Rounds: max(*rounds, 1), Threads: *threads, WeftBin: bin, Caddy: *caddy, Keep: *keep, PprofDir: *pprofDir, AuthzRules: *authzRules, Log: logf}
		if *smoke {
			cfg.Duration, cfg.RPS, cfg.Conns, cfg.Rounds = 500*time.Millisecond, 200, 4, 1
		}
		res, err := runDataplane(ctx, cfg)
		if err != nil {
			return fmt.Errorf("dataplane: %w", err)
		}
		sections = append(sections, res.markdown(meta))
	}
	if *suite == "controlplane" || *suite == "all" {
		cfg := cpConfig{Services: *services, Endpoints: *endpoints, Events: *events, WeftBin: bin, Keep: *keep, Log: logf}
		for _, s := range splitList(*proxies) {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return fmt.Errorf("-proxies: %q is not a positive number", s)
			}
			cfg.Proxies = append(cfg.Proxies, n)
		}
		if *smoke {
			cfg.Proxies, cfg.Services, cfg.Endpoints, cfg.Events = []int{10, 20}, 10, 40, 2
		}
		for _, st := range splitList(*cpStores) {
			cfg.Store, cfg.EtcdBin = st, *etcdBin
			res, err := runControlplane(ctx, cfg)
			if err != nil {
				return fmt.Errorf("controlplane (store %s): %w", st, err)
			}
			sections = append(sections, res.markdown(meta))
		}
	}
	if len(sections) == 0 {
		return fmt.Errorf("-suite %q: want dataplane, controlplane or all", *suite)
	}
	text := strings.Join(sections, "\n")
	fmt.Fprintln(stdout, text)
	if resultsPath != "-" {
		if err := appendResults(resultsPath, text); err != nil {
			return err
		}
		logf("appended to %s", resultsPath)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

const resultsHeader = `# weft benchmark results

Appended by ` + "`go run ./bench`" + ` (see bench/README.md). Every section names its date,
machine and commit; numbers from different machines are not comparable.

`

func appendResults(path, text string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(path, []byte(resultsHeader), 0o644); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// moduleRoot finds the directory of weft's go.mod above the working dir.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module weft.dev/weft") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run inside the weft module (no go.mod of weft.dev/weft above the working directory)")
		}
		dir = parent
	}
}

// runMeta says where and on what a run was made.
type runMeta struct {
	CPUs          int
	Model, Kernel string
	Commit        string
	GoVersion     string
	Versions      map[string]string
}

func collectMeta(root, caddy string) runMeta {
	m := runMeta{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Model: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	cmd := exec.Command("git", "rev-parse", "--short", "HEAD")
	cmd.Dir = root
	if b, err := cmd.Output(); err == nil {
		m.Commit = strings.TrimSpace(string(b))
		st := exec.Command("git", "status", "--porcelain", "--untracked-files=no")
		st.Dir = root
		if b, err := st.Output(); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			m.Commit += " (+ uncommitted changes)"
		}
	} else {
		m.Commit = "unknown"
	}
	m.Versions = map[string]string{}
	tools, _ := findTools(caddy)
	for name, args := range map[string][]string{varNginx: {"-v"}, varHAProxy: {"-v"}, varCaddy: {"version"}} {
		if p, ok := tools[name]; ok {
			if b, err := exec.Command(p, args...).CombinedOutput(); err == nil {
				m.Versions[name] = firstLine(string(b))
			}
			if name == varCaddy && m.Versions[name] == "unknown" {
				// A caddy built with go build reports no version;
				// its module version is in the build info.
				m.Versions[name] = "caddy " + goModVersion(p, "github.com/caddyserver/caddy/v2")
			}
		}
	}
	return m
}

func (m runMeta) write(w io.Writer) {
	fmt.Fprintf(w, "- machine: %d × %s, Linux %s, %s\n", m.CPUs, m.Model, m.Kernel, m.GoVersion)
	fmt.Fprintf(w, "- commit: %s\n", m.Commit)
	var vs []string
	for _, n := range []string{varNginx, varHAProxy, varCaddy} {
		if v, ok := m.Versions[n]; ok {
			vs = append(vs, v)
		}
	}
	if len(vs) > 0 {
		fmt.Fprintf(w, "- peers: %s\n", strings.Join(vs, "; "))
	}
}

// goModVersion returns the version of module mod that the Go binary at path
// was built with, or "unknown".
func goModVersion(path, mod string) string {
	b, err := exec.Command("go", "version", "-m", path).Output()
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && (f[0] == "mod" || f[0] == "dep") && f[1] == mod {
			return f[2]
		}
	}
	return "unknown"
}
