package outbound

import (
	"context"
	"net"
)

// The entry points of transparent interception (internal/proxy/transparent)
// for connections that are not HTTP: a TLS ClientHello whose server name is
// a mesh service is streamed to it, unparsed, over mTLS.

// IsMeshService reports whether authority (host or host:port) names a mesh
// service.
func (l *Listener) IsMeshService(authority string) bool {
	return l.opts.Provider.Load().Resolve(authority, l.opts.Namespace) != nil
}

// ServeTCP streams c to mesh service authority as an opaque stream (as a
// CONNECT tunnel carrying TLS does) until either side closes, then closes c.
func (l *Listener) ServeTCP(ctx context.Context, c net.Conn, authority string) {
	cfg := l.opts.Provider.Load()
	svc := cfg.Resolve(authority, l.opts.Namespace)
	if svc == nil {
		c.Close()
		return
	}
	l.tunnelTCP(ctx, cfg, svc, authorityPort(authority), c, "outbound")
}
