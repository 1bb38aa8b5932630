package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"weft.dev/weft/internal/demo/demov1"
)

// greeterVersionServices select each greeter version.
const greeterVersionServices = `
apiVersion: v1
kind: Service
metadata: {name: greeter-v1, namespace: default}
spec:
  selector: {app: greeter, version: v1}
  ports: [{name: grpc, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: greeter-v2, namespace: default}
spec:
  selector: {app: greeter, version: v2}
  ports: [{name: grpc, port: 80}]
`

// TestRoutingGRPC applies the docs' GRPCRoute: a regular-expression
// service/method match with a header goes to v2 with a response header
// added, a method-only match (Chat) goes to v2, the rest to v1 — for every
// one of 20 calls of each kind.
func TestRoutingGRPC(t *testing.T) {
	c := startControl(t)
	for _, v := range []string{"v1", "v2"} {
		p := freePort(t)
		startWorkload(t, c, wlOpts{service: "greeter", version: v, appPort: p, appProtocol: "grpc",
			cmd: []string{weftBin, "demo-app", "greeter", "--listen", addr(p), "--version", v}, waitApp: true})
	}
	client := startClient(t, c, "client")
	c.apply(greeterVersionServices + "---\n" + docYAML(t, "traffic/routing.md", docExample("grpc")))
	cc, err := grpc.NewClient("passthrough:///greeter:80",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(connectDialer(addr(client.outbound))))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	gc := demov1.NewGreeterClient(cc)
	hello := func(canary bool) (server, rule string, err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if canary {
			ctx = metadata.AppendToOutgoingContext(ctx, "x-canary", "1")
		}
		var md metadata.MD
		reply, err := gc.Hello(ctx, &demov1.HelloRequest{Name: "mesh"}, grpc.Header(&md))
		if err != nil {
			return "", "", err
		}
		return reply.GetServer(), strings.Join(md.Get("x-rule"), ","), nil
	}
	chat := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		s, err := gc.Chat(ctx)
		if err != nil {
			return "", err
		}
		if err := s.Send(&demov1.HelloRequest{Name: "x"}); err != nil {
			return "", err
		}
		r, err := s.Recv()
		if err != nil {
			return "", err
		}
		s.CloseSend()
		return r.GetServer(), nil
	}
	eventually(t, 10*time.Second, 100*time.Millisecond, "GRPCRoute in effect", func() error {
		server, rule, err := hello(true)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(server, "greeter/v2/") || rule != "canary" {
			return fmt.Errorf("canary Hello answered by %s with x-rule %q", server, rule)
		}
		return nil
	})
	counts := map[string]int{}
	for range 20 {
		server, rule, err := hello(true)
		if err != nil {
			t.Fatal(err)
		}
		counts[fmt.Sprintf("canary Hello: %s %s", server[:len("greeter/v1")], rule)]++
		server, rule, err = hello(false)
		if err != nil {
			t.Fatal(err)
		}
		counts[fmt.Sprintf("Hello: %s %s", server[:len("greeter/v1")], rule)]++
		server, err = chat()
		if err != nil {
			t.Fatal(err)
		}
		counts[fmt.Sprintf("Chat: %s", server[:len("greeter/v1")])]++
	}
	want := map[string]int{"canary Hello: greeter/v2 canary": 20, "Hello: greeter/v1 ": 20, "Chat: greeter/v2": 20}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("answers %v, want %v", counts, want)
	}
}
