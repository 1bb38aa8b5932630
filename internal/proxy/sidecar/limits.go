package sidecar

import (
	"fmt"
	"time"

	"weft.dev/weft/internal/proxy/h1parse"
	"weft.dev/weft/internal/proxy/inbound"
	"weft.dev/weft/internal/proxy/outbound"
)

// HTTPLimits bound what the sidecar's listeners accept (docs/http1.md).
// Zero fields take the defaults.
type HTTPLimits struct {
	// MaxHeaderBytes bounds a request head: request line, header fields
	// and the empty line (default 60 KiB; over it: 431).
	MaxHeaderBytes int
	// MaxHeaders bounds the header fields of a request (default 100; over
	// it: 431).
	MaxHeaders int
	// HeaderTimeout bounds receiving a request head from its first byte
	// (default 10s; then 408).
	HeaderTimeout time.Duration
	// MaxOutboundConns caps the app's open connections to the outbound
	// listener (default 1,024; past it: 503 and close).
	MaxOutboundConns int
	// MaxInboundConns caps the peers' open connections to the inbound
	// listener (default 4,096; past it: closed before the handshake).
	MaxInboundConns int
}

// Validate names the first field out of range.
func (l HTTPLimits) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxHeaderBytes", int64(l.MaxHeaderBytes)},
		{"MaxHeaders", int64(l.MaxHeaders)},
		{"HeaderTimeout", int64(l.HeaderTimeout)},
		{"MaxOutboundConns", int64(l.MaxOutboundConns)},
		{"MaxInboundConns", int64(l.MaxInboundConns)},
	} {
		if f.v < 0 {
			return fmt.Errorf("HTTP limits: %s must not be negative", f.name)
		}
	}
	if l.MaxHeaderBytes > 0 && l.MaxHeaderBytes < 1024 {
		return fmt.Errorf("HTTP limits: MaxHeaderBytes %d is below 1024", l.MaxHeaderBytes)
	}
	return nil
}

func (l HTTPLimits) head() h1parse.Limits {
	return h1parse.Limits{MaxHeaderBytes: l.MaxHeaderBytes, MaxHeaders: l.MaxHeaders}
}

// applyInbound and applyOutbound copy the limits into a listener's options.
func (l HTTPLimits) applyInbound(o inbound.Options) inbound.Options {
	o.Limits, o.HeaderTimeout, o.MaxConns = l.head(), l.HeaderTimeout, l.MaxInboundConns
	return o
}

func (l HTTPLimits) applyOutbound(o outbound.Options) outbound.Options {
	o.Limits, o.HeaderTimeout, o.MaxConns = l.head(), l.HeaderTimeout, l.MaxOutboundConns
	return o
}
