//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// requestTimeout bounds one request; a request that takes longer counts as
// an error (and its latency is recorded as the timeout).
const requestTimeout = 10 * time.Second

// client sends one request at a time over its own keep-alive connection.
type client interface {
	do(ctx context.Context) error
	close()
}

// h1Client is a minimal HTTP/1.1 client over one connection: it writes a
// prepared request and reads the response, so the load generator itself
// costs as little as possible and behaves the same for every variant.
type h1Client struct {
	addr string
	req  []byte
	c    net.Conn
	br   *bufio.Reader
}

// h1Request is the request bytes: absolute-form for an explicit HTTP proxy
// (weft's outbound listener), origin-form for a reverse proxy.
func h1Request(absolute bool) []byte {
	if absolute {
		return []byte("GET http://echo/echo HTTP/1.1\r\nHost: echo\r\nUser-Agent: weft-bench\r\n\r\n")
	}
	return []byte("GET /echo HTTP/1.1\r\nHost: echo\r\nUser-Agent: weft-bench\r\n\r\n")
}

func (h *h1Client) do(ctx context.Context) error {
	if h.c == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", h.addr)
		if err != nil {
			return err
		}
		h.c, h.br = c, bufio.NewReaderSize(c, 16<<10)
	}
	_ = h.c.SetDeadline(time.Now().Add(requestTimeout))
	if _, err := h.c.Write(h.req); err != nil {
		h.close()
		return err
	}
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		h.close()
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		h.close()
	}
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || n != payloadSize {
		return fmt.Errorf("status %d, %d body bytes", resp.StatusCode, n)
	}
	return nil
}

func (h *h1Client) close() {
	if h.c != nil {
		h.c.Close()
		h.c, h.br = nil, nil
	}
}

// grpcClient makes unary calls over its own HTTP/2 connection (h2c with
// prior knowledge), with authority as the :authority header.
type grpcClient struct {
	conn *grpc.ClientConn
	req  []byte
}

func newGRPCClient(addr, authority string) (*grpcClient, error) {
	conn, err := grpc.NewClient("passthrough:///"+authority,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})),
	)
	if err != nil {
		return nil, err
	}
	conn.Connect()
	return &grpcClient{conn: conn, req: []byte("weft-bench-ping!")}, nil
}

func (g *grpcClient) do(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var out []byte
	if err := g.conn.Invoke(ctx, grpcMethod, &g.req, &out); err != nil {
		return err
	}
	if len(out) != payloadSize {
		return fmt.Errorf("response of %d bytes", len(out))
	}
	return nil
}

func (g *grpcClient) close() { g.conn.Close() }

// loadResult is one load run's outcome.
type loadResult struct {
	Hist     Histogram
	OK       uint64
	Errors   uint64
	Dropped  uint64 // open loop: requests never sent before the drain limit
	Elapsed  time.Duration
	FirstErr string
}

func (r *loadResult) merge(o *loadResult) {
	r.Hist.Merge(&o.Hist)
	r.OK += o.OK
	r.Errors += o.Errors
	r.Dropped += o.Dropped
	r.Elapsed += o.Elapsed
	if r.FirstErr == "" {
		r.FirstErr = o.FirstErr
	}
}

// RPS is completed requests per second of measured time.
func (r *loadResult) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// runLoad drives conns clients for dur. With rps > 0 it is open loop: a
// dispatcher schedules request i at start + i/rps whatever happened to the
// earlier ones, a free client sends it, and latency is measured from that
// intended time, so a stalled proxy is charged for every request it delays
// (no coordinated omission; the wrk2 method). With rps == 0 it is closed
// loop: every client sends back to back, which measures saturation
// throughput.
func runLoad(ctx context.Context, clients []client, rps float64, dur time.Duration, atStart func()) *loadResult {
	// Warm up: open connections and upstream pools before measuring.
	for _, c := range clients {
		for range 10 {
			_ = c.do(ctx)
		}
	}
	if atStart != nil {
		atStart()
	}
	type workerOut struct {
		loadResult
	}
	outs := make([]workerOut, len(clients))
	var firstErr atomic.Pointer[string]
	noteErr := func(err error) {
		s := err.Error()
		firstErr.CompareAndSwap(nil, &s)
	}
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	if rps > 0 {
		prev := runtime.GOMAXPROCS(runtime.NumCPU() + len(clients) + 1)
		defer runtime.GOMAXPROCS(prev)
		total := int64(rps * dur.Seconds())
		interval := time.Duration(float64(time.Second) / rps)
		drainUntil := deadline.Add(2 * time.Second)
		var next atomic.Int64
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := &outs[i]
				for ctx.Err() == nil {
					// Claim the next slot of the fixed schedule; a busy
					// client claims nothing, so when every client is busy
					// the next request is late and its lateness counts.
					k := next.Add(1) - 1
					if k >= total {
						return
					}
					intended := start.Add(time.Duration(k) * interval)
					if time.Now().After(drainUntil) {
						o.Dropped++
						continue
					}
					sleepUntil(intended)
					err := c.do(ctx)
					o.Hist.Record(time.Since(intended))
					if err != nil {
						o.Errors++
						noteErr(err)
					} else {
						o.OK++
					}
				}
			}()
		}
	} else {
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := &outs[i]
				for time.Now().Before(deadline) && ctx.Err() == nil {
					t := time.Now()
					err := c.do(ctx)
					o.Hist.Record(time.Since(t))
					if err != nil {
						o.Errors++
						noteErr(err)
					} else {
						o.OK++
					}
				}
			}()
		}
	}
	wg.Wait()
	res := &loadResult{Elapsed: max(time.Since(start), dur)}
	if rps > 0 {
		res.Elapsed = dur // the offered load spans dur
	}
	for i := range outs {
		res.Hist.Merge(&outs[i].Hist)
		res.OK += outs[i].OK
		res.Errors += outs[i].Errors
		res.Dropped += outs[i].Dropped
	}
	if p := firstErr.Load(); p != nil {
		res.FirstErr = *p
	}
	return res
}

// newClients opens n clients for protocol proto against v.
func newClients(v *variant, proto string, n int) ([]client, error) {
	out := make([]client, 0, n)
	for range n {
		switch proto {
		case protoHTTP1:
			out = append(out, &h1Client{addr: v.H1Addr, req: h1Request(v.H1Absolute)})
		case protoGRPC:
			g, err := newGRPCClient(v.GRPCAddr, v.GRPCAuthority)
			if err != nil {
				closeClients(out)
				return nil, err
			}
			out = append(out, g)
		default:
			return nil, errors.New("unknown protocol " + proto)
		}
	}
	return out, nil
}

func closeClients(cs []client) {
	for _, c := range cs {
		c.close()
	}
}

// sleepUntil sleeps until t. The Go runtime's timers wake an idle process
// with millisecond granularity (epoll timeouts), which would add up to 1 ms
// of generator lateness to every latency, so the last 1.5 ms are slept in
// nanosleep, which wakes within the kernel's timer slack. A goroutine in
// nanosleep holds its P, so open-loop runs raise GOMAXPROCS above the
// number of clients (see runLoad): the extra Ps are idle most of the time
// and cost nothing, but keep the network goroutines from waiting for one.
func sleepUntil(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	// Coarse part on the runtime's timers, the last stretch in nanosleep.
	if d > 1500*time.Microsecond {
		time.Sleep(d - 1500*time.Microsecond)
		if d = time.Until(t); d <= 0 {
			return
		}
	}
	ts := unix.NsecToTimespec(int64(d))
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}
