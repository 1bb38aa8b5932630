package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsEcho serves a WebSocket echo on ln; Close the server to stop it.
func wsEcho(ln net.Listener) *http.Server {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(2 << 20)
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, b); err != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	return srv
}

// wsDial opens a WebSocket to u through w's outbound proxy.
func wsDial(ctx context.Context, w *workload, u string) (*websocket.Conn, *http.Response, error) {
	pu := &url.URL{Scheme: "http", Host: addr(w.outbound)}
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	return websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc})
}

// echo10MB sends 10 MiB in 1 MiB binary messages on conn, checks the echo
// by hash, and closes conn.
func echo10MB(t *testing.T, ctx context.Context, conn *websocket.Conn) {
	t.Helper()
	defer conn.CloseNow()
	conn.SetReadLimit(2 << 20)
	const msgs, size = 10, 1 << 20
	sent, got := sha256.New(), sha256.New()
	readErr := make(chan error, 1)
	go func() {
		for range msgs {
			typ, b, err := conn.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			if typ != websocket.MessageBinary || len(b) != size {
				readErr <- fmt.Errorf("message of type %v and %d bytes, want binary %d", typ, len(b), size)
				return
			}
			got.Write(b)
		}
		readErr <- nil
	}()
	buf := make([]byte, size)
	for range msgs {
		rand.Read(buf)
		sent.Write(buf)
		if err := conn.Write(ctx, websocket.MessageBinary, buf); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if err := <-readErr; err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(sent.Sum(nil), got.Sum(nil)) {
		t.Fatal("the echoed 10 MB differ from those sent")
	}
	conn.Close(websocket.StatusNormalClosure, "done")
}

// TestWebSocketThroughSidecars: a WebSocket echo through two sidecars
// carries 10 MB each way intact (1 MiB messages, checked by hash), through
// the explicit proxy and inside a CONNECT tunnel; the
// upgrade is counted with status 101 on both sides; an AuthorizationPolicy
// denying the caller refuses the upgrade with 403.
func TestWebSocketThroughSidecars(t *testing.T) {
	c := startControl(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := wsEcho(ln)
	t.Cleanup(func() { srv.Close() })
	chat := startWorkload(t, c, wlOpts{service: "chat", appPort: ln.Addr().(*net.TCPAddr).Port, cmd: []string{"sleep", "3600"}})
	front := startClient(t, c, "frontend")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var conn *websocket.Conn
	eventually(t, 15*time.Second, 100*time.Millisecond, "WebSocket to chat", func() error {
		var resp *http.Response
		conn, resp, err = wsDial(ctx, front, "ws://chat/echo")
		if err != nil && resp != nil {
			return fmt.Errorf("status %d: %w", resp.StatusCode, err)
		}
		return err
	})
	echo10MB(t, ctx, conn)

	// The same inside a CONNECT tunnel to chat: the tunnel's HTTP/1.1 is
	// served as mesh HTTP, the upgrade included.
	dial := connectDialer(addr(front.outbound)) // grpc_test.go
	tunnel := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, address string) (net.Conn, error) {
		return dial(ctx, address)
	}}}
	tconn, _, err := websocket.Dial(ctx, "ws://chat:80/echo", &websocket.DialOptions{HTTPClient: tunnel})
	if err != nil {
		t.Fatalf("WebSocket inside a CONNECT tunnel: %v", err)
	}
	echo10MB(t, ctx, tconn)

	for _, side := range []struct {
		w    *workload
		name string
	}{{front, "http_client_request_duration_seconds_count"}, {chat, "http_server_request_duration_seconds_count"}} {
		eventually(t, 5*time.Second, 100*time.Millisecond, side.name+" counts the upgrade", func() error {
			s, err := side.w.metrics()
			if err != nil {
				return err
			}
			if n := sum(s, side.name, map[string]string{"http_response_status_code": "101"}); n != 2 {
				return fmt.Errorf("%v upgrades counted, want 2 (proxy, tunnel):\n%s", n, describe(s, side.name))
			}
			return nil
		})
	}

	intruder := startClient(t, c, "intruder")
	c.apply(docYAML(t, "websocket.md", docExample("deny-intruder")))
	eventually(t, 15*time.Second, 100*time.Millisecond, "intruder's upgrade refused with 403", func() error {
		conn, resp, err := wsDial(ctx, intruder, "ws://chat/echo")
		if err == nil {
			conn.CloseNow()
			return errors.New("upgrade succeeded")
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			return fmt.Errorf("want 403, got %v (%v)", resp, err)
		}
		return nil
	})
	// The policy names intruder only: frontend still gets through.
	conn, _, err = wsDial(ctx, front, "ws://chat/echo")
	if err != nil {
		t.Fatalf("frontend after the policy: %v", err)
	}
	if err := conn.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := conn.Read(ctx); err != nil || string(b) != "hi" {
		t.Fatalf("echo after the policy: %q %v", b, err)
	}
	conn.Close(websocket.StatusNormalClosure, "done")
}

// TestWebSocketThroughGateway: a WebSocket echo through the ingress
// gateway and the service's sidecar carries 10 MB each way intact; CONNECT
// to the gateway is refused with 501.
func TestWebSocketThroughGateway(t *testing.T) {
	c := startControl(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := wsEcho(ln)
	t.Cleanup(func() { srv.Close() })
	startWorkload(t, c, wlOpts{service: "chat", appPort: ln.Addr().(*net.TCPAddr).Port, cmd: []string{"sleep", "3600"}})
	port := freePort(t)
	c.apply(fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: chat-gateway}
spec:
  gatewayClassName: weft
  listeners:
  - {name: http, protocol: HTTP, port: %d}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: chat}
spec:
  parentRefs: [{name: chat-gateway}]
  hostnames: [chat.example.com]
  rules: [{backendRefs: [{name: chat, port: 80}]}]
`, port))
	startGateway(t, c, "chat-gateway")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr(port))
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: dial}}
	var conn *websocket.Conn
	eventually(t, 15*time.Second, 100*time.Millisecond, "WebSocket through the gateway", func() error {
		var resp *http.Response
		conn, resp, err = websocket.Dial(ctx, "ws://chat.example.com/", &websocket.DialOptions{HTTPClient: hc})
		if err != nil {
			if resp != nil {
				return fmt.Errorf("%w (status %d, %s)", err, resp.StatusCode, resp.Header.Get("X-Weft-Reason"))
			}
			return err
		}
		return nil
	})
	echo10MB(t, ctx, conn)

	raw, err := net.Dial("tcp", addr(port))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(raw, "CONNECT chat.example.com:443 HTTP/1.1\r\nHost: chat.example.com:443\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusNotImplemented || resp.Header.Get("X-Weft-Reason") != "upgrade-not-supported" {
		t.Errorf("CONNECT to the gateway: %d %q, want 501 upgrade-not-supported", resp.StatusCode, resp.Header.Get("X-Weft-Reason"))
	}
}
