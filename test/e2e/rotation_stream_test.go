package e2e

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"weft.dev/weft/internal/demo/demov1"
)

// TestGRPCStreamAcrossRotation: one bidirectional gRPC stream stays open
// while both sidecars renew their 4 s certificates at least twice; every
// message sent on it is answered, in order, and the stream never breaks
// (established mTLS connections outlive the certificates they began with).
func TestGRPCStreamAcrossRotation(t *testing.T) {
	c := startControl(t, "--cert-ttl", "4s")
	gp := freePort(t)
	greeter := startWorkload(t, c, wlOpts{service: "greeter", appPort: gp,
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
	eventually(t, 10*time.Second, 200*time.Millisecond, "Hello", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := gc.Hello(ctx, &demov1.HelloRequest{Name: "mesh"})
		return err
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := gc.Chat(ctx)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	serials := map[string]bool{servedSerial(t, greeter.inbound): true}
	deadline := time.Now().Add(15 * time.Second)
	sent := 0
	for time.Now().Before(deadline) && len(serials) < 3 {
		name := "m" + time.Now().Format("150405.000")
		if err := stream.Send(&demov1.HelloRequest{Name: name}); err != nil {
			t.Fatalf("Chat send %d after %d certificates: %v", sent, len(serials), err)
		}
		r, err := stream.Recv()
		if err != nil {
			t.Fatalf("Chat recv %d after %d certificates: %v", sent, len(serials), err)
		}
		if r.GetMessage() != "hello "+name {
			t.Fatalf("Chat: got %q, want %q", r.GetMessage(), "hello "+name)
		}
		sent++
		serials[servedSerial(t, greeter.inbound)] = true
		time.Sleep(200 * time.Millisecond) // the stream's pace, not a wait for a condition
	}
	if len(serials) < 3 {
		t.Fatalf("greeter served %d distinct certificates in 15s with a 4s lifetime, want at least 3 (two renewals)", len(serials))
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err == nil {
		t.Error("Chat: unexpected extra reply")
	}
	t.Logf("%d messages on one stream across %d certificates", sent, len(serials))
}
