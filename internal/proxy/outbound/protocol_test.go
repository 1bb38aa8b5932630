package outbound

import (
	"bufio"
	"context"
	"crypto/tls"
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
	"weft.dev/weft/internal/proxy/inbound"
)

// protoApp serves gRPC (the greeter) and, for anything else, answers with
// the HTTP version it saw, over HTTP/1.1 and/or h2c as asked.
func protoApp(t testing.TB, h1, h2c bool) int {
	gs := grpc.NewServer()
	demov1.RegisterGreeterServer(gs, greeter{})
	t.Cleanup(gs.Stop)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "proto=%d body=%s", r.ProtoMajor, body)
	})
	ln := listen(t)
	srv := &http.Server{Handler: h, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(h1)
	srv.Protocols.SetUnencryptedHTTP2(h2c)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// dialConnect opens a CONNECT tunnel to target through proxy.
func dialConnect(ctx context.Context, proxy, target string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", proxy)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("CONNECT %s: %w", target, err)
	}
	if resp.StatusCode != 200 {
		c.Close()
		return nil, fmt.Errorf("CONNECT %s: %s", target, resp.Status)
	}
	return &bufConn{Conn: c, r: br}, nil
}

// TestProtocolMatrix: every client protocol (HTTP/1.1, h2c, gRPC) reaches
// every app protocol (HTTP/1.1 only, h2c only, both) through the mesh, by
// explicit proxy and by CONNECT tunnel; gRPC to an HTTP/1.1-only app gets
// UNIMPLEMENTED naming the reason.
func TestProtocolMatrix(t *testing.T) {
	m := newMesh(t)
	apps := []struct {
		svc   string
		h1    bool
		h2c   bool
		proto inbound.AppProtocol
	}{
		{"h1app", true, false, ""}, // default http: probes, finds no h2c
		{"h1strict", true, false, inbound.AppHTTP1},
		{"h2app", false, true, inbound.AppH2C},
		{"grpcapp", false, true, inbound.AppGRPC},
		{"dualapp", true, true, ""},
	}
	for _, a := range apps {
		m.addService(svc(a.svc))
		m.addWorkloadProto(t, a.svc, protoApp(t, a.h1, a.h2c), a.proto)
	}
	m.commit(t)
	m.startOutbound(t, nil)
	proxy := m.proxyURL.Host

	dialers := map[string]func(ctx context.Context, target string) (net.Conn, error){
		"explicit proxy": func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", proxy)
		},
		"CONNECT tunnel": func(ctx context.Context, target string) (net.Conn, error) {
			return dialConnect(ctx, proxy, target)
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, a := range apps {
		for _, path := range []string{"explicit proxy", "CONNECT tunnel"} {
			dial := dialers[path]
			target := a.svc + ":80"
			// What the app sees: HTTP/2 when it speaks only h2c, else the
			// client's version (h2 to an HTTP/1.1 app goes as HTTP/1.1).
			appProto := func(client int) int {
				switch {
				case !a.h1:
					return 2
				case !a.h2c:
					return 1
				}
				return client
			}
			t.Run(a.svc+"/"+path+"/http1", func(t *testing.T) {
				tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx, target) }}
				defer tr.CloseIdleConnections()
				url := "http://" + a.svc + "/x"
				if path == "explicit proxy" {
					tr.DialContext = nil
					tr.Proxy = http.ProxyURL(m.proxyURL)
				}
				resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post(url, "text/plain", strings.NewReader("ping"))
				if err != nil {
					t.Fatal(err)
				}
				checkBody(t, resp, fmt.Sprintf("proto=%d body=ping", appProto(1)))
			})
			t.Run(a.svc+"/"+path+"/h2c", func(t *testing.T) {
				tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
					return dial(ctx, target)
				}}
				defer tr.CloseIdleConnections()
				resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post("http://"+a.svc+"/x", "text/plain", strings.NewReader("ping"))
				if err != nil {
					t.Fatal(err)
				}
				checkBody(t, resp, fmt.Sprintf("proto=%d body=ping", appProto(2)))
			})
			t.Run(a.svc+"/"+path+"/grpc", func(t *testing.T) {
				cc, err := grpc.NewClient("passthrough:///"+target, grpc.WithNoProxy(),
					grpc.WithTransportCredentials(insecure.NewCredentials()),
					grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return dial(ctx, target) }))
				if err != nil {
					t.Fatal(err)
				}
				defer cc.Close()
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				defer ccancel()
				resp, err := demov1.NewGreeterClient(cc).Hello(cctx, &demov1.HelloRequest{Name: "web"})
				if !a.h2c {
					if st := status.Convert(err); st.Code() != codes.Unimplemented || !strings.Contains(st.Message(), "serves HTTP/1.1 only") {
						t.Fatalf("err = %v, want UNIMPLEMENTED saying the app serves HTTP/1.1 only", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if resp.GetMessage() != "hello web (deadline)" {
					t.Fatalf("got %q", resp.GetMessage())
				}
			})
		}
	}
}

func checkBody(t *testing.T, resp *http.Response, want string) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != want {
		t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
	}
}
