package outbound

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/demo/demov1"
)

type greeter struct {
	demov1.UnimplementedGreeterServer
}

func (greeter) Hello(ctx context.Context, req *demov1.HelloRequest) (*demov1.HelloReply, error) {
	if req.GetName() == "slow" {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	_, hasDeadline := ctx.Deadline()
	if hasDeadline {
		return &demov1.HelloReply{Message: "hello " + req.GetName() + " (deadline)"}, nil
	}
	return &demov1.HelloReply{Message: "hello " + req.GetName()}, nil
}

func (greeter) Chat(stream grpc.BidiStreamingServer[demov1.HelloRequest, demov1.HelloReply]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&demov1.HelloReply{Message: "echo " + req.GetName()}); err != nil {
			return err
		}
	}
}

func TestGRPCAcrossTwoProxies(t *testing.T) {
	m := newMesh(t)
	ln := listen(t)
	gs := grpc.NewServer()
	demov1.RegisterGreeterServer(gs, greeter{})
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	m.addService(svc("greeter"))
	m.addWorkload(t, "greeter", ln.Addr().(*net.TCPAddr).Port)
	m.addService(svc("nobody"))
	m.commit(t)
	m.startOutbound(t, grpcListener(t)) // HTTPS_PROXY points here (TestMain)

	dial := func(target string) demov1.GreeterClient {
		cc, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return demov1.NewGreeterClient(cc)
	}
	client := dial("greeter:80")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("unary with deadline", func(t *testing.T) {
		resp, err := client.Hello(ctx, &demov1.HelloRequest{Name: "web"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetMessage() != "hello web (deadline)" {
			t.Fatalf("got %q, want the server to see the client's deadline", resp.GetMessage())
		}
	})
	t.Run("deadline exceeded", func(t *testing.T) {
		sctx, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer scancel()
		_, err := client.Hello(sctx, &demov1.HelloRequest{Name: "slow"})
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
	})
	t.Run("bidi stream", func(t *testing.T) {
		stream, err := client.Chat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"a", "b", "c"} {
			if err := stream.Send(&demov1.HelloRequest{Name: name}); err != nil {
				t.Fatal(err)
			}
			resp, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetMessage() != "echo "+name {
				t.Fatalf("got %q", resp.GetMessage())
			}
		}
		stream.CloseSend()
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("after CloseSend: %v, want EOF", err)
		}
	})
	t.Run("no endpoints is UNAVAILABLE", func(t *testing.T) {
		_, err := dial("nobody:80").Hello(ctx, &demov1.HelloRequest{Name: "x"})
		st := status.Convert(err)
		if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "weft: no healthy endpoints for nobody.default") {
			t.Fatalf("err = %v, want UNAVAILABLE naming the service", err)
		}
	})
}
