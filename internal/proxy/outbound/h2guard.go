package outbound

import (
	"net"

	"weft.dev/weft/internal/proxy/h2guard"
)

// guardConn puts c behind an HTTP/2 flood guard whose closes are logged and
// counted under listener. Connections that are not HTTP/2 pass through.
func (l *Listener) guardConn(listener string, c net.Conn) net.Conn {
	g := &h2guard.Guard{OnAbuse: func(nc net.Conn, reason string) {
		l.log.Warn("closed abusive HTTP/2 connection", "listener", listener, "reason", reason, "remote", nc.RemoteAddr().String())
		l.opts.Metrics.H2Abuse(listener, reason)
	}}
	return g.Wrap(c)
}
