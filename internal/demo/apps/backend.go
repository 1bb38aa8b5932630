package apps

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BackendConfig configures the backend demo app.
type BackendConfig struct {
	// Listen is the address to serve on, e.g. "127.0.0.1:8081".
	Listen string
	// Listener, if set, is used instead of Listen (tests, socket activation).
	Listener net.Listener
	// Service is the name reported in replies; default "backend".
	Service string
	// Version is reported in replies; default "v1".
	Version string
	// FailRate is the fraction of requests (0..1) answered with 503.
	FailRate float64
	// FailFor limits FailRate to the first FailFor after start (a backend
	// that recovers); 0 means for ever.
	FailFor time.Duration
	// FailRateFile, if set, is read every second: a fraction above 0 in it
	// replaces FailRate (the dashboard's "break" button under weft demo).
	FailRateFile string
	// SlowRate is the fraction of requests (0..1) delayed by Slow.
	SlowRate float64
	// Slow is the injected delay; default 300ms.
	Slow time.Duration
	// Seed seeds this instance's random source; 0 picks one from the pid
	// and the clock.
	Seed uint64
}

// BackendReply is the JSON body of the backend's GET /.
type BackendReply struct {
	Service string `json:"service"`
	Version string `json:"version"`
	PID     int    `json:"pid"`
	// Caller is the caller's SPIFFE ID as reported by the sidecar.
	Caller string `json:"caller"`
	// Error is set on an injected failure.
	Error string `json:"error,omitempty"`
}

func (c *BackendConfig) setDefaults() error {
	c.Service = orDefault(c.Service, "backend")
	c.Version = orDefault(c.Version, "v1")
	if c.Slow == 0 {
		c.Slow = 300 * time.Millisecond
	}
	if c.FailRate < 0 || c.FailRate > 1 {
		return fmt.Errorf("fail rate %v: must be between 0 and 1", c.FailRate)
	}
	if c.SlowRate < 0 || c.SlowRate > 1 {
		return fmt.Errorf("slow rate %v: must be between 0 and 1", c.SlowRate)
	}
	if c.Seed == 0 {
		c.Seed = uint64(os.Getpid())<<32 ^ uint64(time.Now().UnixNano())
	}
	return nil
}

// RunBackend serves the backend app until ctx ends: GET / (or POST /, the
// body discarded) answers a
// BackendReply (503 for a FailRate share of requests, delayed by Slow for a
// SlowRate share), GET /healthz answers 200, /echo/... an EchoReply.
func RunBackend(ctx context.Context, cfg BackendConfig, logger *slog.Logger) error {
	if err := cfg.setDefaults(); err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	logger = logger.With("component", "backend")
	lis, err := listen(ctx, cfg.Listen, cfg.Listener)
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	logger.Info("starting", "service", cfg.Service, "version", cfg.Version, "fail_rate", cfg.FailRate, "slow_rate", cfg.SlowRate, "slow", cfg.Slow)
	return serveHTTP(ctx, lis, newBackendHandler(cfg), logger)
}

type backend struct {
	cfg   BackendConfig
	pid   int
	start time.Time

	mu  sync.Mutex // guards rnd, checked and override
	rnd *rand.Rand
	// checked is when FailRateFile was last read; override what it held.
	checked  time.Time
	override float64
}

func newBackendHandler(cfg BackendConfig) http.Handler {
	b := &backend{cfg: cfg, pid: os.Getpid(), start: time.Now(), rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /{$}", b.root)
	mux.HandleFunc("/echo/", echo)
	mux.HandleFunc("POST /{$}", b.root) // the request body is read and discarded
	return mux
}

// EchoReply is the JSON body of the backend's /echo/ answers: the request
// as the backend received it (for tests of rewrites and header filters).
type EchoReply struct {
	Method string              `json:"method"`
	Host   string              `json:"host"`
	Path   string              `json:"path"`
	Query  string              `json:"query"`
	Header map[string][]string `json:"header"`
}

// echo answers any method on /echo/... with an EchoReply.
func echo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, EchoReply{Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header})
}

// roll returns two uniform draws in [0,1), one for failure, one for
// delay, and the fail rate in force.
func (b *backend) roll() (fail, slow, failRate float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg.FailRateFile != "" && time.Since(b.checked) >= time.Second {
		b.checked = time.Now()
		b.override = readFailRate(b.cfg.FailRateFile)
	}
	failRate = b.cfg.FailRate
	if b.override > 0 {
		failRate = b.override
	}
	return b.rnd.Float64(), b.rnd.Float64(), failRate
}

// readFailRate reads a fail rate file: 0 if it is missing or holds no
// fraction in (0, 1].
func readFailRate(path string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	r, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil || r <= 0 || r > 1 {
		return 0
	}
	return r
}

func (b *backend) root(w http.ResponseWriter, r *http.Request) {
	failDraw, slowDraw, failRate := b.roll()
	if slowDraw < b.cfg.SlowRate {
		t := time.NewTimer(b.cfg.Slow)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	reply := BackendReply{
		Service: b.cfg.Service,
		Version: b.cfg.Version,
		PID:     b.pid,
		Caller:  CallerFromXFCC(r.Header.Get(XFCCHeader)),
	}
	code := http.StatusOK
	if failDraw < failRate && (b.cfg.FailFor == 0 || time.Since(b.start) < b.cfg.FailFor) {
		code = http.StatusServiceUnavailable
		reply.Error = "injected failure"
	}
	writeJSON(w, code, reply)
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
