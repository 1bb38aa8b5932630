package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"weft.dev/weft/internal/proxy/outbound"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/proxy/transparent"
)

// Transparent configures transparent interception (`--transparent`; see
// docs/transparent.md and internal/proxy/transparent).
type Transparent struct {
	// Listen is host:port of the transparent outbound listener (default
	// 127.0.0.1:0: a free port; the REDIRECT rule names it).
	Listen string
	// ExcludePorts and ExcludeCIDRs are outbound destinations never
	// captured.
	ExcludePorts []int
	ExcludeCIDRs []netip.Prefix
	// DetectTimeout bounds protocol detection (default 300ms).
	DetectTimeout time.Duration
	// Runner runs iptables (default transparent.Exec{}).
	Runner transparent.Runner
	// Preinstalled means the rules were installed before the sidecar
	// started (`weft transparent-init`, a pod's weft-init container): the
	// sidecar serves Listen, which must name the port those rules
	// redirect to, and neither installs nor removes rules, so it needs no
	// privilege. ExcludePorts and ExcludeCIDRs are the init step's.
	Preinstalled bool
}

// capture is a running transparent interception: its listener and rules.
type capture struct {
	ln  *transparent.Listener
	cfg transparent.Config
	run transparent.Runner
	log *slog.Logger
	// preinstalled: the rules are not the sidecar's to remove.
	preinstalled bool
}

// startTransparent opens the transparent listener and installs the rules
// (removing stale ones a killed sidecar of this workload left); nil when
// opts.Transparent is nil.
func startTransparent(ctx context.Context, opts Options, inLn net.Listener, out *outbound.Listener, metrics *telemetry.Metrics, log *slog.Logger) (*capture, error) {
	t := opts.Transparent
	if t == nil {
		return nil, nil
	}
	listen := t.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	tcp, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("transparent listener: %w", err)
	}
	if t.Preinstalled {
		log.Info("transparent interception on, rules installed before the sidecar", "listener", tcp.Addr().String())
		ln := transparent.NewListener(tcp, transparent.ListenerOptions{Logger: log, DetectTimeout: t.DetectTimeout, Metrics: metrics, Mesh: out})
		return &capture{ln: ln, log: log, preinstalled: true}, nil
	}
	run := t.Runner
	if run == nil {
		run = transparent.Exec{}
	}
	cfg := transparent.Config{
		Namespace: opts.Workload.Namespace, Service: opts.Workload.Service,
		ProxyUID:     os.Getuid(),
		OutboundPort: tcp.Addr().(*net.TCPAddr).Port,
		AppPort:      opts.AppPort, InboundPort: inLn.Addr().(*net.TCPAddr).Port,
		ExcludePorts: t.ExcludePorts, ExcludeCIDRs: t.ExcludeCIDRs,
	}
	stale, err := transparent.Install(ctx, run, cfg)
	if err != nil {
		tcp.Close()
		return nil, err
	}
	outChain, inChain := transparent.Chains(cfg.Namespace, cfg.Service)
	if stale {
		log.Warn("removed stale transparent rules left by a sidecar of this workload that did not stop cleanly", "chains", outChain+","+inChain)
	}
	log.Info("transparent interception on", "listener", tcp.Addr().String(), "outbound_chain", outChain, "inbound_chain", inChain, "proxy_uid", cfg.ProxyUID)
	c := &capture{cfg: cfg, run: run, log: log}
	c.ln = transparent.NewListener(tcp, transparent.ListenerOptions{Logger: log, DetectTimeout: t.DetectTimeout, Metrics: metrics, Mesh: out})
	return c, nil
}

// serve serves the captured HTTP connections with the outbound listener
// until ctx ends; a nil capture serves nothing.
func (c *capture) serve(ctx context.Context, out *outbound.Listener) error {
	if c == nil {
		return nil
	}
	return out.Serve(ctx, c.ln)
}

// stop removes the rules and closes the listener.
func (c *capture) stop() {
	if c == nil {
		return
	}
	if c.preinstalled {
		c.ln.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	transparent.Remove(ctx, c.run, c.cfg.Namespace, c.cfg.Service)
	c.ln.Close()
	c.log.Info("transparent rules removed")
}
