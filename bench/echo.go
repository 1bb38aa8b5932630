//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// payloadSize is the echo response body: 1 KiB, the Istio benchmark's size.
const payloadSize = 1024

var payload = func() []byte {
	b := make([]byte, payloadSize)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

// grpcMethod is the one unary method of the echo backend.
const grpcMethod = "/bench.Echo/Echo"

// rawCodec passes gRPC messages through as bytes, so the harness needs no
// generated protobuf code; the wire format is plain gRPC framing.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	p, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return *p, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*p = append((*p)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

var echoService = grpc.ServiceDesc{
	ServiceName: "bench.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			out := payload
			return &out, nil
		},
	}},
}

// echoBackend serves HTTP/1.1 and gRPC (h2c with prior knowledge) on one
// port, told apart by the HTTP/2 connection preface, because the weft
// inbound proxy forwards both protocols to the same app port.
type echoBackend struct {
	ln   net.Listener
	h1   *http.Server
	grpc *grpc.Server
	wg   sync.WaitGroup
}

func startEcho() (*echoBackend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	clen := strconv.Itoa(payloadSize)
	b := &echoBackend{
		ln: ln,
		h1: &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h := w.Header()
				h["Content-Type"] = []string{"application/octet-stream"}
				h["Content-Length"] = []string{clen}
				_, _ = w.Write(payload)
			}),
			ReadHeaderTimeout: 10 * time.Second,
		},
		grpc: grpc.NewServer(grpc.ForceServerCodec(rawCodec{})),
	}
	b.grpc.RegisterService(&echoService, struct{}{})
	h1ln, h2ln := newChanListener(ln.Addr()), newChanListener(ln.Addr())
	b.wg.Add(3)
	go func() { defer b.wg.Done(); _ = b.h1.Serve(h1ln) }()
	go func() { defer b.wg.Done(); _ = b.grpc.Serve(h2ln) }()
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				h1ln.Close()
				h2ln.Close()
				return
			}
			go func() {
				br := bufio.NewReaderSize(c, 4096)
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				head, err := br.Peek(3)
				_ = c.SetReadDeadline(time.Time{})
				if err != nil {
					c.Close()
					return
				}
				pc := &peekedConn{Conn: c, r: br}
				if string(head) == "PRI" {
					h2ln.push(pc)
				} else {
					h1ln.push(pc)
				}
			}()
		}
	}()
	return b, nil
}

func (b *echoBackend) Port() int { return b.ln.Addr().(*net.TCPAddr).Port }

func (b *echoBackend) Close() {
	b.ln.Close()
	_ = b.h1.Close()
	b.grpc.Stop()
	b.wg.Wait()
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener is a net.Listener fed by the sniffing accept loop.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.closed:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, errors.New("listener closed")
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
