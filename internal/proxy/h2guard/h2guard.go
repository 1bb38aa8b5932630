// Package h2guard protects HTTP/2 servers from frame floods. It wraps a
// server's connection, reads the 9-byte frame headers of what the client
// sends (it never decodes payloads), counts the frames that cost the
// server work but give the client nothing — RST_STREAM of streams it just
// opened (rapid reset, CVE-2023-44487), PING and SETTINGS that are not
// acknowledgements, empty DATA frames, CONTINUATION frames of one header
// block — over a time window, and when a client goes over a limit it writes
// GOAWAY(ENHANCE_YOUR_CALM) at a frame boundary and closes the connection,
// as Envoy and nginx do. A connection that does not start with the HTTP/2
// client preface is passed through untouched, so a listener can wrap every
// connection it hands to a server that also speaks HTTP/1.1.
package h2guard

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound what one client connection may send per Window. A zero field
// takes its default.
type Limits struct {
	// Window is the counting period (default 1s).
	Window time.Duration
	// MaxResets is how many RST_STREAM frames a client may send per window
	// (default 100) before it is judged, and abusive when it has also reset
	// more than half of the streams it opened in the window: a client that
	// cancels a few of many requests is not an attacker.
	MaxResets int
	// MaxPings is non-ACK PING frames per window (default 500).
	MaxPings int
	// MaxSettings is non-ACK SETTINGS frames per window (default 100).
	MaxSettings int
	// MaxEmptyData is DATA frames with no payload and no END_STREAM per
	// window (default 500).
	MaxEmptyData int
	// MaxContinuations is CONTINUATION frames in one header block
	// (default 32; net/http's header size limit binds well before).
	MaxContinuations int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.Window <= 0 {
		l.Window = time.Second
	}
	def(&l.MaxResets, 100)
	def(&l.MaxPings, 500)
	def(&l.MaxSettings, 100)
	def(&l.MaxEmptyData, 500)
	def(&l.MaxContinuations, 32)
	return l
}

// Reasons a connection is closed, as passed to Guard.OnAbuse and used as a
// metric label.
const (
	ReasonRapidReset        = "rapid_reset"
	ReasonPingFlood         = "ping_flood"
	ReasonSettingsFlood     = "settings_flood"
	ReasonEmptyDataFlood    = "empty_data_flood"
	ReasonContinuationFlood = "continuation_flood"
)

// ErrAbuse is returned by a guarded connection's Read once the client went
// over a limit.
var ErrAbuse = errors.New("h2guard: connection closed for abusing HTTP/2 (ENHANCE_YOUR_CALM)")

// Guard wraps the connections of one listener.
type Guard struct {
	// Limits are the per-connection limits.
	Limits Limits
	// OnAbuse, when set, is called once per closed connection with the
	// reason (e.g. to count and log it).
	OnAbuse func(c net.Conn, reason string)
}

// Wrap returns c guarded. Reads parse frame headers once c has started
// with the client preface; writes are tracked to frame boundaries so the
// GOAWAY never splits a frame of the server's. A nil Guard returns c.
func (g *Guard) Wrap(c net.Conn) net.Conn {
	if g == nil {
		return c
	}
	return &Conn{Conn: c, g: g, lim: g.Limits.withDefaults()}
}

const (
	frameData         = 0x0
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePing         = 0x6
	frameGoAway       = 0x7
	frameContinuation = 0x9

	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4

	errCodeEnhanceYourCalm = 0xb
)

// goAwayTime bounds writing the GOAWAY; drainTime and drainBytes bound the
// reading after it.
const (
	goAwayTime = 200 * time.Millisecond
	drainTime  = 500 * time.Millisecond
	drainBytes = 1 << 20
)

var preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// read-side states
const (
	statePreface = iota // matching the client preface
	stateFrames         // parsing frames
	stateOff            // not HTTP/2: pass through
	stateAbused         // closed for abuse
)

// Conn is a guarded connection.
type Conn struct {
	net.Conn
	g   *Guard
	lim Limits

	// Read side: touched only by the reading goroutine.
	state    int
	matched  int     // preface bytes matched
	hdr      [9]byte // partial frame header
	hdrN     int
	skip     int // payload bytes left in the current frame
	inBlock  bool
	conts    int
	winStart time.Time
	resets   int
	opened   int
	pings    int
	settings int
	empty    int
	lastID   uint32 // highest stream the client opened

	// Write side.
	wmu   sync.Mutex
	whdr  [9]byte
	whdrN int
	wskip int
	pend  []byte      // a frame's start, held until its end is written
	torn  bool        // a write stopped inside a frame
	dead  bool        // GOAWAY sent or connection closed for abuse
	off   atomic.Bool // not HTTP/2: writes pass through untracked
}

// Read reads from the connection, counting the client's frames.
func (c *Conn) Read(p []byte) (int, error) {
	if c.state == stateAbused {
		return 0, ErrAbuse
	}
	n, err := c.Conn.Read(p)
	if c.state != stateOff && n > 0 {
		if reason := c.scan(p[:n]); reason != "" {
			c.abuse(reason)
			return 0, ErrAbuse
		}
	}
	return n, err
}

// scan advances the frame parser over b and returns a reason once a limit
// is exceeded.
func (c *Conn) scan(b []byte) string {
	if c.state == stateOff {
		return ""
	}
	if c.state == statePreface {
		k := min(len(preface)-c.matched, len(b))
		for i := 0; i < k; i++ {
			if b[i] != preface[c.matched+i] {
				// Not HTTP/2. The server answers only after reading
				// this, so its writes see off set.
				c.state = stateOff
				c.off.Store(true)
				return ""
			}
		}
		c.matched += k
		b = b[k:]
		if c.matched < len(preface) {
			return ""
		}
		c.state = stateFrames
	}
	for len(b) > 0 {
		if c.skip > 0 {
			k := min(c.skip, len(b))
			c.skip -= k
			b = b[k:]
			continue
		}
		var h []byte
		if c.hdrN == 0 && len(b) >= 9 {
			h, b = b[:9], b[9:]
		} else {
			k := copy(c.hdr[c.hdrN:], b)
			c.hdrN += k
			b = b[k:]
			if c.hdrN < 9 {
				return ""
			}
			c.hdrN = 0
			h = c.hdr[:]
		}
		length := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
		c.skip = length
		if reason := c.frame(h[3], h[4], binary.BigEndian.Uint32(h[5:9])&0x7fffffff, length); reason != "" {
			return reason
		}
	}
	return ""
}

// frame counts one frame header.
func (c *Conn) frame(typ, flags byte, stream uint32, length int) string {
	switch typ {
	case frameHeaders:
		if stream > c.lastID {
			c.lastID = stream
			c.tick()
			c.opened++
		}
		c.inBlock, c.conts = flags&flagEndHeaders == 0, 0
	case frameContinuation:
		if c.conts++; c.conts > c.lim.MaxContinuations {
			return ReasonContinuationFlood
		}
		if flags&flagEndHeaders != 0 {
			c.inBlock = false
		}
	case frameRSTStream:
		c.tick()
		if c.resets++; c.resets > c.lim.MaxResets && 2*c.resets > c.opened {
			return ReasonRapidReset
		}
	case framePing:
		if flags&flagAck == 0 {
			c.tick()
			if c.pings++; c.pings > c.lim.MaxPings {
				return ReasonPingFlood
			}
		}
	case frameSettings:
		if flags&flagAck == 0 {
			c.tick()
			if c.settings++; c.settings > c.lim.MaxSettings {
				return ReasonSettingsFlood
			}
		}
	case frameData:
		if length == 0 && flags&flagEndStream == 0 {
			c.tick()
			if c.empty++; c.empty > c.lim.MaxEmptyData {
				return ReasonEmptyDataFlood
			}
		}
	}
	return ""
}

// tick starts a new window (resetting the counts) when the current one is
// over.
func (c *Conn) tick() {
	now := time.Now()
	if now.Sub(c.winStart) < c.lim.Window {
		return
	}
	c.winStart = now
	c.resets, c.opened, c.pings, c.settings, c.empty = 0, 0, 0, 0, 0
}

// abuse sends GOAWAY(ENHANCE_YOUR_CALM) naming the last stream the client
// opened and closes. Write keeps the wire at a frame boundary (an
// incomplete frame is held back and dropped here), so the GOAWAY can always
// follow, unless a write blocked on a client that does not read was ended
// by the deadline inside a frame: then there is only the close.
func (c *Conn) abuse(reason string) {
	c.state = stateAbused
	c.Conn.SetWriteDeadline(time.Now().Add(goAwayTime))
	c.wmu.Lock()
	sent := false
	if !c.dead && !c.torn {
		var f [17]byte
		f[2] = 8 // length
		f[3] = frameGoAway
		binary.BigEndian.PutUint32(f[9:13], c.lastID)
		binary.BigEndian.PutUint32(f[13:17], errCodeEnhanceYourCalm)
		_, err := c.Conn.Write(f[:])
		sent = err == nil
	}
	c.dead = true
	c.pend = nil
	c.wmu.Unlock()
	if sent {
		// Closing with unread input would reset the connection and may
		// discard the GOAWAY before the client reads it: half-close where
		// possible and drain what the client still sends, bounded.
		if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		c.Conn.SetReadDeadline(time.Now().Add(drainTime))
		io.CopyN(io.Discard, c.Conn, drainBytes)
	}
	c.Conn.Close()
	if c.g.OnAbuse != nil {
		c.g.OnAbuse(c.Conn, reason)
	}
}

// Write writes to the connection whole frames only: the start of a frame
// that p does not finish is held until a later Write brings its end (the
// HTTP/2 server flushes at frame boundaries, so nothing waits long).
func (c *Conn) Write(p []byte) (int, error) {
	if c.off.Load() {
		return c.Conn.Write(p)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.dead {
		return 0, ErrAbuse
	}
	cut := c.track(p)
	if len(c.pend) == 0 && cut == len(p) {
		n, err := c.Conn.Write(p)
		c.torn = c.torn || n < len(p)
		return n, err
	}
	if cut == 0 {
		c.pend = append(c.pend, p...)
		return len(p), nil
	}
	held := len(c.pend)
	out := append(c.pend, p[:cut]...)
	n, err := c.Conn.Write(out)
	if n < len(out) {
		c.torn = true
		return max(n-held, 0), err
	}
	c.pend = append(out[:0], p[cut:]...)
	return len(p), err
}

// track advances the write-side frame parser over b and returns the length
// of b's longest prefix that ends at a frame boundary.
func (c *Conn) track(b []byte) int {
	cut, off := 0, 0
	for off < len(b) {
		if c.wskip > 0 {
			k := min(c.wskip, len(b)-off)
			c.wskip -= k
			off += k
			if c.wskip == 0 {
				cut = off
			}
			continue
		}
		k := copy(c.whdr[c.whdrN:], b[off:])
		c.whdrN += k
		off += k
		if c.whdrN < 9 {
			break
		}
		c.whdrN = 0
		c.wskip = int(c.whdr[0])<<16 | int(c.whdr[1])<<8 | int(c.whdr[2])
		if c.wskip == 0 {
			cut = off
		}
	}
	return cut
}

// CloseWrite half-closes the connection when the wrapped one can.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// HTTP2Config is the HTTP/2 server configuration weft's listeners use with
// a Guard: at most 100 concurrent streams per connection (RFC 9113 §6.5.2
// recommends no fewer), frames no larger than the protocol's default 16 KiB
// (the server advertises no larger SETTINGS_MAX_FRAME_SIZE, so larger ones
// are a FRAME_SIZE_ERROR), and net/http's defaults for the rest.
func HTTP2Config() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxConcurrentStreams: 100,
		MaxReadFrameSize:     16 << 10,
	}
}
