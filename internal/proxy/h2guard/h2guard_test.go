package h2guard

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guardedListener wraps every accepted connection.
type guardedListener struct {
	net.Listener
	g *Guard
}

func (l guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.g.Wrap(c), nil
}

type server struct {
	addr     string
	requests atomic.Int64
	abuses   chan string
	release  chan struct{} // closes to let blocking handlers return
}

// startServer serves HTTP/1.1 and h2c behind a Guard. Requests to /block
// wait for release.
func startServer(t *testing.T, lim Limits) *server {
	t.Helper()
	s := &server{abuses: make(chan string, 16), release: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &Guard{Limits: lim, OnAbuse: func(_ net.Conn, reason string) { s.abuses <- reason }}
	srv := &http.Server{
		Protocols: new(http.Protocols),
		HTTP2:     HTTP2Config(),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.requests.Add(1)
			if r.URL.Path == "/block" {
				select {
				case <-s.release:
				case <-r.Context().Done():
				}
			}
			io.WriteString(w, "ok")
		}),
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(guardedListener{ln, g})
	t.Cleanup(func() {
		close(s.release)
		srv.Close()
	})
	s.addr = ln.Addr().String()
	return s
}

// h2conn is a raw HTTP/2 client connection.
type h2conn struct {
	c   net.Conn
	bw  *bufio.Writer
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func dialH2(t *testing.T, addr string) *h2conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	h := &h2conn{c: c, bw: bufio.NewWriterSize(c, 64<<10)}
	h.fr = http2.NewFramer(h.bw, c)
	h.enc = hpack.NewEncoder(&h.buf)
	h.fr.WriteSettings()
	h.bw.Flush()
	return h
}

// block is the HPACK block of GET path.
func (h *h2conn) block(path string) []byte {
	h.buf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", path}} {
		h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return bytes.Clone(h.buf.Bytes())
}

// result is what the client saw once the server stopped talking.
type result struct {
	goAway    *http2.GoAwayFrame
	rstCodes  map[http2.ErrCode]int
	readError error
}

// readAll reads frames until GOAWAY, EOF, or the deadline.
func readAll(c net.Conn, d time.Duration) result {
	c.SetReadDeadline(time.Now().Add(d))
	fr := http2.NewFramer(io.Discard, c)
	r := result{rstCodes: map[http2.ErrCode]int{}}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			r.readError = err
			return r
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			r.goAway = f
			return r
		case *http2.RSTStreamFrame:
			r.rstCodes[f.ErrCode]++
		}
	}
}

// TestFloods: each flood ends with GOAWAY(ENHANCE_YOUR_CALM), the close is
// reported with its reason, and the server did bounded work (handlers run).
func TestFloods(t *testing.T) {
	const frames = 20000
	for _, tc := range []struct {
		name   string
		reason string
		send   func(h *h2conn) error
	}{
		{"rapid reset", ReasonRapidReset, func(h *h2conn) error {
			for i := uint32(0); i < frames; i++ {
				id := 2*i + 1
				// A handler that answers at once: net/http's own
				// check (GOAWAY once 4×MaxConcurrentStreams handlers
				// queue) fires only for slow ones.
				if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block("/"), EndStream: true, EndHeaders: true}); err != nil {
					return err
				}
				if err := h.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
					return err
				}
			}
			return nil
		}},
		{"ping flood", ReasonPingFlood, func(h *h2conn) error {
			for i := 0; i < frames; i++ {
				if err := h.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
					return err
				}
			}
			return nil
		}},
		{"settings flood", ReasonSettingsFlood, func(h *h2conn) error {
			for i := 0; i < frames; i++ {
				if err := h.fr.WriteSettings(); err != nil {
					return err
				}
			}
			return nil
		}},
		{"continuation flood", ReasonContinuationFlood, func(h *h2conn) error {
			if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("/")[:1], EndStream: true}); err != nil {
				return err
			}
			for i := 0; i < frames; i++ {
				if err := h.fr.WriteContinuation(1, false, nil); err != nil {
					return err
				}
			}
			return nil
		}},
		{"empty data flood", ReasonEmptyDataFlood, func(h *h2conn) error {
			if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("/block"), EndHeaders: true}); err != nil {
				return err
			}
			for i := 0; i < frames; i++ {
				if err := h.fr.WriteData(1, false, nil); err != nil {
					return err
				}
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, Limits{})
			h := dialH2(t, s.addr)
			var wg sync.WaitGroup
			wg.Go(func() {
				if tc.send(h) == nil {
					h.bw.Flush()
				}
			})
			r := readAll(h.c, 10*time.Second)
			h.c.Close()
			wg.Wait()
			if r.goAway == nil || r.goAway.ErrCode != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("got GOAWAY %v (read error %v), want GOAWAY ENHANCE_YOUR_CALM", r.goAway, r.readError)
			}
			select {
			case got := <-s.abuses:
				if got != tc.reason {
					t.Errorf("reason %q, want %q", got, tc.reason)
				}
			case <-time.After(5 * time.Second):
				t.Error("OnAbuse not called")
			}
			if n := s.requests.Load(); n > 300 {
				t.Errorf("%d handlers ran before the close, want at most 300", n)
			}
		})
	}
}

// TestTooManyStreams: a stream over HTTP2Config's 100 concurrent streams is
// refused (RST_STREAM PROTOCOL_ERROR or REFUSED_STREAM, RFC 9113 §5.1.2)
// without running a handler, and the connection stays up for the others.
func TestTooManyStreams(t *testing.T) {
	s := startServer(t, Limits{})
	h := dialH2(t, s.addr)
	h.fr.WriteSettingsAck()
	// Wait for the server's SETTINGS so its limit is in force, and ACK it.
	h.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	rfr := http2.NewFramer(io.Discard, h.c)
	for {
		f, err := rfr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && sf.IsAck() {
			break
		}
	}
	for i := uint32(0); i < 101; i++ {
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2*i + 1, BlockFragment: h.block("/block"), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	h.bw.Flush()
	for {
		f, err := rfr.ReadFrame()
		if err != nil {
			t.Fatalf("no RST_STREAM for stream 201: %v", err)
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok {
			if rst.StreamID != 201 || (rst.ErrCode != http2.ErrCodeProtocol && rst.ErrCode != http2.ErrCodeRefusedStream) {
				t.Fatalf("RST_STREAM %d %v, want stream 201 PROTOCOL_ERROR or REFUSED_STREAM", rst.StreamID, rst.ErrCode)
			}
			break
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			t.Fatalf("GOAWAY %v, want only the extra stream refused", ga.ErrCode)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.requests.Load() < 100 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := s.requests.Load(); n != 100 {
		t.Fatalf("%d handlers running, want 100", n)
	}
}

// TestBenign: ordinary traffic — many requests, some cancelled, keepalive
// pings, HTTP/1.1 — is never closed.
func TestBenign(t *testing.T) {
	s := startServer(t, Limits{})
	t.Run("h2 with some cancels", func(t *testing.T) {
		h := dialH2(t, s.addr)
		for i := uint32(0); i < 2000; i++ {
			id := 2*i + 1
			h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block("/"), EndStream: true, EndHeaders: true})
			if i%10 == 0 {
				h.fr.WriteRSTStream(id, http2.ErrCodeCancel)
			}
			if i%100 == 0 {
				h.fr.WritePing(false, [8]byte{1})
			}
		}
		h.fr.WriteGoAway(4001, http2.ErrCodeNo, nil)
		h.bw.Flush()
		r := readAll(h.c, 5*time.Second)
		if r.goAway != nil && r.goAway.ErrCode == http2.ErrCodeEnhanceYourCalm {
			t.Fatal("benign client got ENHANCE_YOUR_CALM")
		}
	})
	t.Run("http1 passes through", func(t *testing.T) {
		resp, err := http.Get("http://" + s.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	})
	select {
	case r := <-s.abuses:
		t.Fatalf("closed for %s", r)
	default:
	}
}

// TestScanSplit: the frame parser gives the same verdict however the bytes
// are split across reads.
func TestScanSplit(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&b, nil)
	for i := 0; i < 200; i++ {
		fr.WritePing(false, [8]byte{})
		fr.WriteData(1, false, []byte("abc"))
	}
	stream := b.Bytes()
	for _, chunk := range []int{1, 2, 7, 9, 10, 17, 4096} {
		c := &Conn{lim: Limits{MaxPings: 150}.withDefaults()}
		reason := ""
		for i := 0; i < len(stream) && reason == ""; i += chunk {
			reason = c.scan(stream[i:min(i+chunk, len(stream))])
		}
		if reason != ReasonPingFlood {
			t.Errorf("chunk %d: reason %q, want %q", chunk, reason, ReasonPingFlood)
		}
	}
}

// BenchmarkScan is the guard's cost on the read path: a 16 KiB read of
// DATA frames.
func BenchmarkScan(b *testing.B) {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	for buf.Len() < 16<<10 {
		fr.WriteData(1, false, make([]byte, 1000))
	}
	p := buf.Bytes()
	c := &Conn{lim: Limits{}.withDefaults(), state: stateFrames}
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		c.skip, c.hdrN = 0, 0
		c.scan(p)
	}
}

// FuzzScan: any byte stream, split anywhere, neither panics nor disagrees
// with itself.
func FuzzScan(f *testing.F) {
	f.Add([]byte(http2.ClientPreface+"\x00\x00\x00\x04\x00\x00\x00\x00\x00"), uint8(3))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, split uint8) {
		whole := &Conn{lim: Limits{MaxPings: 3, MaxSettings: 3, MaxResets: 3, MaxEmptyData: 3, MaxContinuations: 3}.withDefaults()}
		parts := &Conn{lim: whole.lim}
		want := whole.scan(b)
		k := int(split) % (len(b) + 1)
		got := parts.scan(b[:k])
		if got == "" {
			got = parts.scan(b[k:])
		}
		if got != want {
			t.Fatalf("split at %d: %q, whole: %q", k, got, want)
		}
	})
}

// recordConn records each Write that reaches the wire.
type recordConn struct {
	net.Conn
	writes [][]byte
}

func (r *recordConn) Write(p []byte) (int, error) {
	r.writes = append(r.writes, append([]byte(nil), p...))
	return len(p), nil
}

// TestWriteWholeFrames: however the server's writes split its frames, only
// whole frames reach the wire, every byte arrives in order, and a GOAWAY
// can follow any write.
func TestWriteWholeFrames(t *testing.T) {
	frame := func(n int, fill byte) []byte {
		f := make([]byte, 9+n)
		f[2] = byte(n)
		f[3] = framePing
		for i := 9; i < len(f); i++ {
			f[i] = fill
		}
		return f
	}
	var stream []byte
	for i := range 5 {
		stream = append(stream, frame(8*i, byte(i))...) // includes an empty frame
	}
	for _, tc := range []struct {
		name   string
		chunks []int // write sizes; the rest in one write
	}{
		{"one write", nil},
		{"byte by byte", slices.Repeat([]int{1}, len(stream)-1)},
		{"inside header", []int{4, 20}},
		{"inside payload", []int{12, 3, 30}},
		{"exact frames", []int{9, 17, 25}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := &recordConn{}
			c := (&Guard{}).Wrap(rc).(*Conn)
			rest := stream
			for _, n := range tc.chunks {
				if _, err := c.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			if _, err := c.Write(rest); err != nil {
				t.Fatal(err)
			}
			var got []byte
			for _, w := range rc.writes {
				var probe Conn
				if cut := probe.track(w); cut != len(w) {
					t.Errorf("a write of %d bytes ends inside a frame (boundary at %d)", len(w), cut)
				}
				got = append(got, w...)
			}
			if !bytes.Equal(got, stream) {
				t.Errorf("wire holds %d bytes, want the %d written", len(got), len(stream))
			}
			if len(c.pend) != 0 || c.torn {
				t.Errorf("after the last frame: %d bytes held, torn %v", len(c.pend), c.torn)
			}
		})
	}
}
