package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/demo/demov1"
)

// TestAppProtocols: with real sidecars, an h2c client reaches the demo
// backend (an HTTP/1.1-only app, default --app-protocol http) as
// HTTP/1.1; gRPC to it gets UNIMPLEMENTED; and an HTTP/1.1 request reaches
// the greeter (a grpc-go server, h2c only) run with --app-protocol grpc over
// h2c, where grpc-go answers 415 for a request that is not gRPC.
func TestAppProtocols(t *testing.T) {
	c := startControl(t)
	bp := freePort(t)
	startWorkload(t, c, wlOpts{service: "backend", appPort: bp, cmd: backendCmd(bp, "v1"), waitApp: true})
	gp := freePort(t)
	startWorkload(t, c, wlOpts{service: "greeter", appPort: gp, appProtocol: "grpc",
		cmd: []string{weftBin, "demo-app", "greeter", "--listen", addr(gp)}, waitApp: true})
	client := startClient(t, c, "client")
	proxy := addr(client.outbound)

	t.Run("h2c client to HTTP/1.1 app", func(t *testing.T) {
		tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", proxy)
		}}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		var br backendReply
		eventually(t, 10*time.Second, 200*time.Millisecond, "h2c GET backend", func() error {
			resp, err := hc.Get("http://backend/")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d: %s", resp.StatusCode, body)
			}
			return json.Unmarshal(body, &br)
		})
		if br.Service != "backend" || br.Caller != client.spiffeID() {
			t.Fatalf("reply %+v, want backend called by %s", br, client.spiffeID())
		}
	})
	t.Run("gRPC to HTTP/1.1 app is UNIMPLEMENTED", func(t *testing.T) {
		cc, err := grpc.NewClient("passthrough:///backend:80", grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(connectDialer(proxy)))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = demov1.NewGreeterClient(cc).Hello(ctx, &demov1.HelloRequest{Name: "x"})
		if st := status.Convert(err); st.Code() != codes.Unimplemented || !strings.Contains(st.Message(), "serves HTTP/1.1 only") {
			t.Fatalf("err = %v, want UNIMPLEMENTED saying the app serves HTTP/1.1 only", err)
		}
	})
	t.Run("HTTP/1.1 client to grpc app goes as h2c", func(t *testing.T) {
		// The client's proxy may start before the push that tells it
		// about greeter (100 ms debounce): until then greeter is not a
		// mesh name to it.
		eventually(t, 10*time.Second, 100*time.Millisecond, "HTTP/1.1 GET greeter", func() error {
			resp, err := client.client.Get("http://greeter/")
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnsupportedMediaType {
				return fmt.Errorf("got %d %q, want 415 from grpc-go (reached over h2c)", resp.StatusCode, body)
			}
			return nil
		})
	})
}
