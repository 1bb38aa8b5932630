package apps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/testing/protocmp"

	"weft.dev/weft/internal/demo/demov1"
)

// startGreeter runs the greeter on a loopback port and returns its address.
func startGreeter(t *testing.T, cfg GreeterConfig) string {
	t.Helper()
	lis := loopback(t)
	cfg.Listener = lis
	runApp(t, func(ctx context.Context) error { return RunGreeter(ctx, cfg, discardLogger()) })
	return lis.Addr().String()
}

func dialGreeter(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestGreeter(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "")
	addr := startGreeter(t, GreeterConfig{Version: "v3"})
	conn := dialGreeter(t, addr)
	client := demov1.NewGreeterClient(conn)
	server := fmt.Sprintf("greeter/v3/%d", os.Getpid())
	const caller = "spiffe://weft.local/ns/default/sa/frontend"

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, XFCCHeader, "By=spiffe://weft.local/ns/default/sa/greeter;URI="+caller)

	t.Run("hello", func(t *testing.T) {
		got, err := client.Hello(ctx, &demov1.HelloRequest{Name: "ada"})
		if err != nil {
			t.Fatal(err)
		}
		want := &demov1.HelloReply{Message: "hello ada", Server: server, Caller: caller}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("Hello (-want +got):\n%s", diff)
		}
	})

	t.Run("chat", func(t *testing.T) {
		stream, err := client.Chat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		names := []string{"a", "b", "c"}
		var got []string
		for _, n := range names {
			// Send and receive in lockstep: a true bidi round trip.
			if err := stream.Send(&demov1.HelloRequest{Name: n}); err != nil {
				t.Fatal(err)
			}
			r, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if r.GetCaller() != caller || r.GetServer() != server {
				t.Errorf("reply caller=%q server=%q", r.GetCaller(), r.GetServer())
			}
			got = append(got, r.GetMessage())
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Errorf("after CloseSend: Recv = %v, want EOF", err)
		}
		if diff := cmp.Diff([]string{"hello a", "hello b", "hello c"}, got); diff != "" {
			t.Errorf("chat (-want +got):\n%s", diff)
		}
	})

	t.Run("health", func(t *testing.T) {
		for _, svc := range []string{"", "weft.demo.v1.Greeter"} {
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil {
				t.Fatalf("health %q: %v", svc, err)
			}
			if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("health %q = %v", svc, resp.GetStatus())
			}
		}
	})
}
