package sidecar

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"golang.org/x/sync/errgroup"

	"context"
	"weft.dev/weft/internal/proxy/outbound"
)

// listenUpstreams opens the listener of every TCP upstream on 127.0.0.1:
// at its local port, or a free one. A port already in use fails the start
// with the upstream named.
func listenUpstreams(ups []outbound.Upstream) ([]net.Listener, error) {
	lns := make([]net.Listener, 0, len(ups))
	for _, u := range ups {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(u.LocalPort)))
		if err != nil {
			closeAll(lns)
			return nil, fmt.Errorf("--upstream %s: local port %d: %w", u.Authority(), u.LocalPort, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

func listenAddrs(lns []net.Listener) []string {
	out := make([]string, len(lns))
	for i, ln := range lns {
		out[i] = ln.Addr().String()
	}
	return out
}

// serveUpstreams serves each upstream on its listener in g until ctx ends.
func serveUpstreams(ctx context.Context, g *errgroup.Group, out *outbound.Listener, ups []outbound.Upstream, lns []net.Listener) {
	for i, u := range ups {
		g.Go(func() error { return out.ServeUpstream(ctx, lns[i], u) })
	}
}

// upstreamDump describes the upstreams for the admin /config_dump.
func upstreamDump(ups []outbound.Upstream, addrs []string) []map[string]any {
	out := make([]map[string]any, len(ups))
	for i, u := range ups {
		out[i] = map[string]any{"service": u.Service, "port": u.Port, "listen": addrs[i], "protocol": "tcp"}
	}
	return out
}

// logUpstreams tells where each upstream listens (its free port, if it
// asked for none).
func logUpstreams(log *slog.Logger, ups []outbound.Upstream, addrs []string) {
	for i, u := range ups {
		log.Info("tcp upstream listening", "upstream", u.Authority(), "listen", addrs[i])
	}
}
