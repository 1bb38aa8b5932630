package inbound

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"golang.org/x/net/http2"

	"weft.dev/weft/internal/proxy/h2guard"
	"weft.dev/weft/internal/proxy/identity"
)

// configureH2 makes srv serve h2 connections with l.h2srv behind a guard.
// http2.ConfigureServer ties l.h2srv to srv, so that srv.Shutdown sends
// GOAWAY to its HTTP/2 connections; the h2 entry it installs is then
// replaced by serveH2.
func (l *Listener) configureH2(srv *http.Server) error {
	if err := http2.ConfigureServer(srv, l.h2srv); err != nil {
		return fmt.Errorf("inbound: HTTP/2: %w", err)
	}
	srv.TLSNextProto[identity.ALPNHTTP2] = l.serveH2
	return nil
}

// serveH2 serves an h2 connection from a peer behind an h2guard: it is the
// server's TLSNextProto for h2, so the frames of every HTTP/2 connection
// pass the flood guard before net/http's HTTP/2 server reads them.
func (l *Listener) serveH2(hs *http.Server, c *tls.Conn, h http.Handler) {
	ctx := context.Background()
	if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
		ctx = bc.BaseContext() // carries the peer identity (connContext)
	}
	g := &h2guard.Guard{OnAbuse: func(nc net.Conn, reason string) {
		l.log.Warn("closed abusive HTTP/2 connection", "listener", "inbound", "reason", reason, "remote", nc.RemoteAddr().String())
		l.opts.Metrics.H2Abuse("inbound", reason)
	}}
	l.h2srv.ServeConn(g.Wrap(c), &http2.ServeConnOpts{Context: ctx, BaseConfig: hs, Handler: h})
}
