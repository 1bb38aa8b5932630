package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"weft.dev/weft/internal/demo/demov1"
)

// TestGRPCThroughMesh: a gRPC client reaches the greeter by name through its
// sidecar's outbound proxy (HTTP CONNECT), for a unary call and a bidi stream.
func TestGRPCThroughMesh(t *testing.T) {
	c := startControl(t)
	gp := freePort(t)
	startWorkload(t, c, wlOpts{service: "greeter", appPort: gp,
		cmd: []string{weftBin, "demo-app", "greeter", "--listen", addr(gp)}, waitApp: true})
	client := startClient(t, c, "client")

	cc, err := grpc.NewClient("passthrough:///greeter:80",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(connectDialer(addr(client.outbound))))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	gc := demov1.NewGreeterClient(cc)
	want := client.spiffeID()

	t.Run("Hello", func(t *testing.T) {
		var reply *demov1.HelloReply
		eventually(t, 10*time.Second, 200*time.Millisecond, "Hello", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			var err error
			reply, err = gc.Hello(ctx, &demov1.HelloRequest{Name: "mesh"})
			return err
		})
		if reply.GetMessage() != "hello mesh" {
			t.Errorf("Hello: message %q, want %q", reply.GetMessage(), "hello mesh")
		}
		if !strings.HasPrefix(reply.GetServer(), "greeter/") {
			t.Errorf("Hello: server %q, want greeter/...", reply.GetServer())
		}
		if reply.GetCaller() != want {
			t.Errorf("Hello: caller %q, want %q", reply.GetCaller(), want)
		}
	})

	t.Run("Chat", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		stream, err := gc.Chat(ctx)
		if err != nil {
			t.Fatalf("Chat: %v", err)
		}
		names := []string{"one", "two", "three", "four"}
		// Interleave: each reply must come back before the next send, which
		// proves the stream is bidirectional end to end (not buffered until
		// the client half-closes).
		for _, n := range names {
			if err := stream.Send(&demov1.HelloRequest{Name: n}); err != nil {
				t.Fatalf("Chat send %q: %v", n, err)
			}
			r, err := stream.Recv()
			if err != nil {
				t.Fatalf("Chat recv after %q: %v", n, err)
			}
			if r.GetMessage() != "hello "+n {
				t.Errorf("Chat: got %q, want %q", r.GetMessage(), "hello "+n)
			}
			if r.GetCaller() != want {
				t.Errorf("Chat: caller %q, want %q", r.GetCaller(), want)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if r, err := stream.Recv(); err == nil {
			t.Errorf("Chat: unexpected extra reply %v", r)
		} else if !errors.Is(err, io.EOF) {
			t.Errorf("Chat: stream ended with %v, want EOF", err)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		eventually(t, 5*time.Second, 100*time.Millisecond, "client metrics for greeter", func() error {
			ms, err := client.metrics()
			if err != nil {
				return err
			}
			if got := sum(ms, "http_client_request_duration_seconds_count", map[string]string{"destination_service": destService("greeter")}); got < 2 {
				return fmt.Errorf("http_client_request_duration_seconds_count{destination_service=greeter} = %v, want >= 2; have:%s", got, describe(ms, "http_client_request_duration_seconds_count"))
			}
			return nil
		})
	})
}

// connectDialer dials target through the HTTP proxy at proxyAddr with CONNECT.
func connectDialer(proxyAddr string) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, target string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", proxyAddr)
		if err != nil {
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok {
			conn.SetDeadline(dl)
		}
		fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("CONNECT %s via %s: %w", target, proxyAddr, err)
		}
		if resp.StatusCode != http.StatusOK {
			conn.Close()
			return nil, fmt.Errorf("CONNECT %s via %s: %s", target, proxyAddr, resp.Status)
		}
		conn.SetDeadline(time.Time{})
		if br.Buffered() > 0 {
			return &bufferedConn{Conn: conn, r: br}, nil
		}
		return conn, nil
	}
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
