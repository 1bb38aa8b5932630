package apps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/demo/demov1"
)

// GreeterConfig configures the greeter demo app.
type GreeterConfig struct {
	// Listen is the address to serve on, e.g. "127.0.0.1:9090".
	Listen string
	// Listener, if set, is used instead of Listen (tests, socket activation).
	Listener net.Listener
	// Service is the name reported in replies; default "greeter".
	Service string
	// Version is reported in replies; default "v1".
	Version string
}

// RunGreeter serves the weft.demo.v1.Greeter gRPC service and the standard
// gRPC health service in plaintext (h2c; the sidecar does TLS) until ctx
// ends.
func RunGreeter(ctx context.Context, cfg GreeterConfig, logger *slog.Logger) error {
	cfg.Service = orDefault(cfg.Service, "greeter")
	cfg.Version = orDefault(cfg.Version, "v1")
	logger = logger.With("component", "greeter")
	lis, err := listen(ctx, cfg.Listen, cfg.Listener)
	if err != nil {
		return fmt.Errorf("greeter: %w", err)
	}
	srv := grpc.NewServer()
	demov1.RegisterGreeterServer(srv, newGreeter(cfg))
	hs := health.NewServer()
	hs.SetServingStatus(demov1.Greeter_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	logger.Info("listening", "addr", lis.Addr().String(), "service", cfg.Service, "version", cfg.Version)
	select {
	case err := <-errc:
		return fmt.Errorf("greeter: serving: %w", err)
	case <-ctx.Done():
	}
	hs.Shutdown()
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		srv.Stop()
		<-stopped
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("greeter: serving: %w", err)
	}
	return nil
}

type greeter struct {
	demov1.UnimplementedGreeterServer
	server string
}

var _ demov1.GreeterServer = (*greeter)(nil)

func newGreeter(cfg GreeterConfig) *greeter {
	return &greeter{server: instance(cfg.Service, cfg.Version)}
}

func (g *greeter) reply(ctx context.Context, name string) *demov1.HelloReply {
	var caller string
	if v := metadata.ValueFromIncomingContext(ctx, XFCCHeader); len(v) > 0 {
		caller = CallerFromXFCC(v[len(v)-1])
	}
	return &demov1.HelloReply{Message: "hello " + name, Server: g.server, Caller: caller}
}

// Hello answers "hello <name>".
func (g *greeter) Hello(ctx context.Context, req *demov1.HelloRequest) (*demov1.HelloReply, error) {
	return g.reply(ctx, req.GetName()), nil
}

// Chat answers every message on the stream with "hello <name>".
func (g *greeter) Chat(stream grpc.BidiStreamingServer[demov1.HelloRequest, demov1.HelloReply]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(g.reply(stream.Context(), req.GetName())); err != nil {
			return err
		}
	}
}

// statusFromError returns the gRPC code name of err and whether err was a
// gRPC status.
func statusFromError(err error) (string, bool) {
	st, ok := status.FromError(err)
	return st.Code().String(), ok
}
