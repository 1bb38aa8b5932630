//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Protocols and load modes.
const (
	protoHTTP1 = "http1"
	protoGRPC  = "grpc"
	modeOpen   = "open"
	modeClosed = "closed"
)

type dpConfig struct {
	Duration time.Duration // measured time per (variant, protocol, mode), split over Rounds
	RPS      float64
	Conns    int
	Variants []string
	Protos   []string
	Rounds   int
	Threads  int
	WeftBin  string
	Caddy    string
	Keep     bool
	PprofDir string // CPU profiles of weft's proxies, when set
	// AuthzRules, when > 0, puts an AuthorizationPolicy of that many
	// rules on weft's server side; every request is checked against all
	// of them (only the last one matches).
	AuthzRules int
	Log        func(format string, args ...any)
}

type phase struct{ proto, mode string }

type measurement struct {
	res loadResult
	cpu float64 // CPU seconds of the variant's proxies during the measured time
}

// CPUPer1k is proxy CPU seconds per 1,000 requests.
func (m *measurement) CPUPer1k() float64 {
	n := m.res.OK + m.res.Errors
	if n == 0 {
		return 0
	}
	return m.cpu / float64(n) * 1000
}

type variantResult struct {
	Name string
	M    map[phase]*measurement
	// KiB per proxy: [0] client side, [1] server side.
	IdleRSS, LoadRSS, PeakRSS [2]uint64
}

type dpResult struct {
	Cfg     dpConfig
	Started time.Time
	Results []*variantResult
	Skipped map[string]string // variant → reason
}

// runDataplane starts every requested variant side by side and measures
// them interleaved: for each round, protocol and mode, each variant in turn
// (the order rotates every round) gets Duration/Rounds of load.
func runDataplane(ctx context.Context, cfg dpConfig) (*dpResult, error) {
	out := &dpResult{Cfg: cfg, Started: time.Now().UTC(), Skipped: map[string]string{}}
	dir, err := os.MkdirTemp("", "weft-bench-dp-")
	if err != nil {
		return nil, err
	}
	if cfg.Keep {
		cfg.Log("keeping work dir %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	echo, err := startEcho()
	if err != nil {
		return nil, fmt.Errorf("echo backend: %w", err)
	}
	defer echo.Close()
	certs, err := writeCerts(dir)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	tools, missing := findTools(cfg.Caddy)
	env := &dpEnv{dir: dir, echoPort: echo.Port(), weftBin: cfg.WeftBin, tools: tools, threads: cfg.Threads, certs: certs, authzRules: cfg.AuthzRules}

	var running []*variant
	defer func() {
		for _, v := range running {
			v.stop() // the proxies flush their spans as they stop
			if v.Sink != nil {
				cfg.Log("%s: the OTLP sink received %d spans", v.Name, v.Sink.spans.Load())
			}
		}
	}()
	for _, name := range cfg.Variants {
		if why, ok := missing[name]; ok {
			out.Skipped[name] = why
			cfg.Log("SKIP %s: %s", name, why)
			continue
		}
		if (name == varWeft || name == varWeftTelemetry) && cfg.WeftBin == "" {
			out.Skipped[name] = "no weft binary"
			continue
		}
		v, err := env.start(ctx, name)
		if err == nil {
			if err = v.check(ctx, cfg.Protos); err != nil {
				v.stop()
			}
		}
		if err != nil {
			out.Skipped[name] = err.Error()
			cfg.Log("SKIP %s: %v", name, err)
			continue
		}
		cfg.Log("started %s", name)
		running = append(running, v)
	}
	if len(running) == 0 {
		return out, fmt.Errorf("no variant could be started")
	}
	results := map[string]*variantResult{}
	for _, v := range running {
		vr := &variantResult{Name: v.Name, M: map[phase]*measurement{}}
		// Let start-up garbage settle before the idle reading.
		time.Sleep(200 * time.Millisecond)
		for i, p := range v.proxies() {
			vr.IdleRSS[i], _ = memKiB(p.Pid())
		}
		results[v.Name] = vr
		out.Results = append(out.Results, vr)
	}

	per := cfg.Duration / time.Duration(cfg.Rounds)
	for round := range cfg.Rounds {
		order := slices.Clone(running)
		k := round % len(order)
		order = append(order[k:], order[:k]...)
		for _, proto := range cfg.Protos {
			for _, mode := range []string{modeOpen, modeClosed} {
				for _, v := range order {
					if ctx.Err() != nil {
						return nil, ctx.Err()
					}
					ph := phase{proto, mode}
					rps := cfg.RPS
					if mode == modeClosed {
						rps = 0
					}
					cs, err := newClients(v, proto, cfg.Conns)
					if err != nil {
						return nil, err
					}
					var cpu0 float64
					pids := v.proxyPids()
					var profiled func() error
					if round == 0 && mode == modeOpen && cfg.PprofDir != "" && len(v.Admin) > 0 {
						profiled = profile(ctx, cfg.PprofDir, v, proto, per)
					}
					res := runLoad(ctx, cs, rps, per, func() { cpu0 = cpuSeconds(pids...) })
					if profiled != nil {
						if err := profiled(); err != nil {
							cfg.Log("pprof %s %s: %v", v.Name, proto, err)
						}
					}
					cpu := cpuSeconds(pids...) - cpu0
					vr := results[v.Name]
					if mode == modeOpen {
						for i, p := range v.proxies() {
							rss, _ := memKiB(p.Pid())
							vr.LoadRSS[i] = max(vr.LoadRSS[i], rss)
						}
					}
					closeClients(cs)
					m := vr.M[ph]
					if m == nil {
						m = &measurement{}
						vr.M[ph] = m
					}
					m.res.merge(res)
					m.cpu += cpu
					cfg.Log("round %d %-6s %-6s %-8s ok=%d err=%d rps=%.0f p50=%s p99=%s cpu=%.2fs%s",
						round+1, proto, mode, v.Name, res.OK, res.Errors, res.RPS(), us(res.Hist.Quantile(0.5)), us(res.Hist.Quantile(0.99)), cpu, errNote(res.FirstErr))
				}
			}
		}
	}
	for _, v := range running {
		for i, p := range v.proxies() {
			_, results[v.Name].PeakRSS[i] = memKiB(p.Pid())
		}
	}
	return out, nil
}

func errNote(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > 120 {
		s = s[:120]
	}
	return " first error: " + s
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/1e3) }

// markdown renders the result as the RESULTS.md section.
func (r *dpResult) markdown(meta runMeta) string {
	var b strings.Builder
	c := r.Cfg
	fmt.Fprintf(&b, "## Data plane — %s\n\n", r.Started.Format("2006-01-02 15:04 MST"))
	meta.write(&b)
	fmt.Fprintf(&b, "- load: open loop %.0f rps and closed loop, %d keep-alive connections, 1 KiB response, %s measured per variant × protocol × mode in %d interleaved rounds; %d worker/thread/GOMAXPROCS per proxy\n",
		c.RPS, c.Conns, c.Duration, c.Rounds, c.Threads)
	if c.AuthzRules > 0 {
		fmt.Fprintf(&b, "- weft's server-side proxy enforces an AuthorizationPolicy of %d rules (each request is checked against all of them)\n", c.AuthzRules)
	}
	names := make([]string, 0, len(r.Skipped))
	for n := range r.Skipped {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "- skipped %s: %s\n", n, firstLine(r.Skipped[n]))
	}
	b.WriteString("\n")
	find := func(name string) *variantResult {
		for _, v := range r.Results {
			if v.Name == name {
				return v
			}
		}
		return nil
	}
	direct, nginx := find(varDirect), find(varNginx)
	for _, proto := range c.Protos {
		title := map[string]string{protoHTTP1: "HTTP/1.1", protoGRPC: "gRPC unary"}[proto]
		open, closed := phase{proto, modeOpen}, phase{proto, modeClosed}
		fmt.Fprintf(&b, "### %s — open loop, %.0f rps (latency from the intended send time, µs)\n\n", title, c.RPS)
		b.WriteString("| variant | p50 | p90 | p99 | p99.9 | max | added p50 | added p99 | errors | proxy CPU s / 1k req | RSS idle client/server MiB | RSS under load | peak RSS (VmHWM) |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, v := range r.Results {
			m := v.M[open]
			if m == nil {
				continue
			}
			h := &m.res.Hist
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s |\n", v.Name,
				usn(h.Quantile(0.5)), usn(h.Quantile(0.9)), usn(h.Quantile(0.99)), usn(h.Quantile(0.999)), usn(h.Max()),
				added(v, direct, open, 0.5), added(v, direct, open, 0.99), m.res.Errors+m.res.Dropped,
				cpuCell(v, m), mib2(v, v.IdleRSS), mib2(v, v.LoadRSS), mib2(v, v.PeakRSS))
		}
		fmt.Fprintf(&b, "\n### %s — closed loop, %d connections back to back (saturation)\n\n", title, c.Conns)
		b.WriteString("| variant | requests/s | p50 µs | p99 µs | errors | proxy CPU s / 1k req |\n|---|--:|--:|--:|--:|--:|\n")
		for _, v := range r.Results {
			m := v.M[closed]
			if m == nil {
				continue
			}
			fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %d | %s |\n", v.Name, m.res.RPS(), usn(m.res.Hist.Quantile(0.5)), usn(m.res.Hist.Quantile(0.99)), m.res.Errors, cpuCell(v, m))
		}
		if nginx != nil && nginx.M[open] != nil {
			fmt.Fprintf(&b, "\n### %s — ratio to the nginx pair (lower is better except requests/s)\n\n", title)
			b.WriteString("| variant | added p50 | added p99 | requests/s at saturation | CPU / 1k req @ open loop | peak RSS (sum of pair) |\n|---|--:|--:|--:|--:|--:|\n")
			for _, v := range r.Results {
				if v.Name == varDirect || v.M[open] == nil || v.M[closed] == nil {
					continue
				}
				ratio := func(a, bb float64) string {
					if bb <= 0 {
						return "–"
					}
					return fmt.Sprintf("%.2f×", a/bb)
				}
				addedOf := func(x *variantResult, q float64) float64 {
					if direct == nil {
						return float64(x.M[open].res.Hist.Quantile(q))
					}
					return float64(x.M[open].res.Hist.Quantile(q) - direct.M[open].res.Hist.Quantile(q))
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", v.Name,
					ratio(addedOf(v, 0.5), addedOf(nginx, 0.5)), ratio(addedOf(v, 0.99), addedOf(nginx, 0.99)),
					ratio(v.M[closed].res.RPS(), nginx.M[closed].res.RPS()),
					ratio(v.M[open].CPUPer1k(), nginx.M[open].CPUPer1k()),
					ratio(float64(v.PeakRSS[0]+v.PeakRSS[1]), float64(nginx.PeakRSS[0]+nginx.PeakRSS[1])))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func usn(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/1e3) }

func added(v, direct *variantResult, ph phase, q float64) string {
	if direct == nil || v == direct || direct.M[ph] == nil {
		return "–"
	}
	return fmt.Sprintf("%+.0f", float64(v.M[ph].res.Hist.Quantile(q)-direct.M[ph].res.Hist.Quantile(q))/1e3)
}

func cpuCell(v *variantResult, m *measurement) string {
	if v.Name == varDirect {
		return "–"
	}
	return fmt.Sprintf("%.3f", m.CPUPer1k())
}

func mib2(v *variantResult, kib [2]uint64) string {
	if v.Name == varDirect {
		return "–"
	}
	return fmt.Sprintf("%.1f / %.1f", float64(kib[0])/1024, float64(kib[1])/1024)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// profile starts CPU profiles of each of v's proxies for d (less a margin
// so they end inside the load) and returns a func that waits for them and
// writes <dir>/<variant>-<client|server>-<proto>.pprof.
func profile(ctx context.Context, dir string, v *variant, proto string, d time.Duration) func() error {
	secs := max(int((d-500*time.Millisecond)/time.Second), 1)
	errs := make(chan error, len(v.Admin))
	for i, admin := range v.Admin {
		side := []string{"client", "server"}[i]
		go func() {
			errs <- fetchProfile(ctx, "http://"+admin+"/debug/pprof/profile?seconds="+strconv.Itoa(secs),
				filepath.Join(dir, fmt.Sprintf("%s-%s-%s.pprof", v.Name, side, proto)))
		}()
	}
	return func() error {
		var first error
		for range v.Admin {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
}

func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
