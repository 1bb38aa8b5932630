package apps

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"weft.dev/weft/internal/demo/demov1"
)

// FrontendConfig configures the frontend demo app.
type FrontendConfig struct {
	// Listen is the address to serve on, e.g. "127.0.0.1:8080".
	Listen string
	// Listener, if set, is used instead of Listen (tests, socket activation).
	Listener net.Listener
	// Service is the name reported in replies; default "frontend".
	Service string
	// Version is reported in replies; default "v1".
	Version string
	// Backend is the backend's URL; default "http://backend/". It is called
	// through the proxy named by HTTP_PROXY (Go skips the proxy for
	// localhost and loopback addresses).
	Backend string
	// Greeter is the greeter's host:port; default "greeter:80". It is dialled
	// as "passthrough:///<Greeter>" so that gRPC resolves nothing itself and
	// tunnels through HTTPS_PROXY with CONNECT when that is set.
	Greeter string
	// Timeout bounds each call to backend and greeter; default 5s.
	Timeout time.Duration
	// FailRate is the fraction of requests (0..1) the frontend fails on its
	// own (500, calling nothing): `weft demo --break frontend`.
	FailRate float64
}

// FrontendReply is the JSON body of the frontend's GET /.
type FrontendReply struct {
	Service string `json:"service"`
	Version string `json:"version"`
	PID     int    `json:"pid"`
	// Caller is who called the frontend, as reported by its sidecar.
	Caller  string        `json:"caller"`
	Backend BackendResult `json:"backend"`
	Greeter GreeterResult `json:"greeter"`
}

// BackendResult is what the frontend got from the backend.
type BackendResult struct {
	URL    string `json:"url"`
	Status int    `json:"status,omitempty"`
	// Reply is the backend's answer, when it sent JSON.
	Reply *BackendReply `json:"reply,omitempty"`
	Error string        `json:"error,omitempty"`
}

// GreeterResult is what the frontend got from the greeter.
type GreeterResult struct {
	Target  string `json:"target"`
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
	Server  string `json:"server,omitempty"`
	// Caller is the frontend's identity as the greeter's sidecar saw it.
	Caller string `json:"caller,omitempty"`
	Error  string `json:"error,omitempty"`
}

func (c *FrontendConfig) setDefaults() {
	c.Service = orDefault(c.Service, "frontend")
	c.Version = orDefault(c.Version, "v1")
	c.Backend = orDefault(c.Backend, "http://backend/")
	c.Greeter = orDefault(c.Greeter, "greeter:80")
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
}

// RunFrontend serves the frontend app until ctx ends. GET / calls the
// backend and greeter.Hello and answers a FrontendReply: 200 when the
// backend answered 2xx, else 502 naming the reason (or, for a FailRate
// share of requests, 500 without calling anything). A greeter failure is
// reported in the body's greeter.error without failing the request.
func RunFrontend(ctx context.Context, cfg FrontendConfig, logger *slog.Logger) error {
	cfg.setDefaults()
	if cfg.FailRate < 0 || cfg.FailRate > 1 {
		return fmt.Errorf("frontend: fail rate %v: must be between 0 and 1", cfg.FailRate)
	}
	logger = logger.With("component", "frontend")
	conn, err := grpc.NewClient("passthrough:///"+cfg.Greeter, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("frontend: greeter client for %q: %w", cfg.Greeter, err)
	}
	defer conn.Close()
	lis, err := listen(ctx, cfg.Listen, cfg.Listener)
	if err != nil {
		return fmt.Errorf("frontend: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	defer tr.CloseIdleConnections()
	logger.Info("starting", "backend", cfg.Backend, "greeter", cfg.Greeter)
	h := newFrontendHandler(cfg, &http.Client{Transport: tr}, demov1.NewGreeterClient(conn), logger)
	return serveHTTP(ctx, lis, h, logger)
}

type frontend struct {
	cfg     FrontendConfig
	pid     int
	http    *http.Client
	greeter demov1.GreeterClient
	logger  *slog.Logger
}

func newFrontendHandler(cfg FrontendConfig, hc *http.Client, gc demov1.GreeterClient, logger *slog.Logger) http.Handler {
	f := &frontend{cfg: cfg, pid: os.Getpid(), http: hc, greeter: gc, logger: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /{$}", f.root)
	return mux
}

func (f *frontend) root(w http.ResponseWriter, r *http.Request) {
	reply := FrontendReply{
		Service: f.cfg.Service,
		Version: f.cfg.Version,
		PID:     f.pid,
		Caller:  CallerFromXFCC(r.Header.Get(XFCCHeader)),
	}
	if f.cfg.FailRate > 0 && rand.Float64() < f.cfg.FailRate {
		reply.Backend.Error = "injected failure: the frontend called nothing"
		writeJSON(w, http.StatusInternalServerError, reply)
		return
	}
	name := orDefault(r.URL.Query().Get("name"), f.cfg.Service)
	done := make(chan struct{})
	go func() {
		defer close(done)
		reply.Greeter = f.callGreeter(r.Context(), name)
	}()
	reply.Backend = f.callBackend(r.Context())
	<-done

	code := http.StatusOK
	if reply.Backend.Error != "" {
		code = http.StatusBadGateway
		f.logger.Warn("backend call failed", "url", f.cfg.Backend, "err", reply.Backend.Error)
	}
	writeJSON(w, code, reply)
}

func (f *frontend) callBackend(ctx context.Context) BackendResult {
	res := BackendResult{URL: f.cfg.Backend}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.cfg.Backend, nil)
	if err != nil {
		res.Error = fmt.Sprintf("building request: %v", err)
		return res
	}
	resp, err := f.http.Do(req)
	if err != nil {
		res.Error = fmt.Sprintf("calling backend: %v", err)
		return res
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		res.Error = fmt.Sprintf("reading backend response: %v", err)
		return res
	}
	var br BackendReply
	if json.Unmarshal(body, &br) == nil {
		res.Reply = &br
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		res.Error = fmt.Sprintf("backend answered %s", resp.Status)
	}
	return res
}

func (f *frontend) callGreeter(ctx context.Context, name string) GreeterResult {
	res := GreeterResult{Target: f.cfg.Greeter}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	hr, err := f.greeter.Hello(ctx, &demov1.HelloRequest{Name: name})
	if err != nil {
		st, _ := statusFromError(err)
		res.Code = st
		res.Error = err.Error()
		return res
	}
	res.Code = "OK"
	res.Message, res.Server, res.Caller = hr.GetMessage(), hr.GetServer(), hr.GetCaller()
	return res
}
