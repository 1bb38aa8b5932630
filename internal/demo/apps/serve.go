package apps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

// shutdownGrace bounds how long a stopping app waits for in-flight requests.
const shutdownGrace = 5 * time.Second

// listen returns l if set, else a TCP listener on addr.
func listen(ctx context.Context, addr string, l net.Listener) (net.Listener, error) {
	if l != nil {
		return l, nil
	}
	if addr == "" {
		return nil, errors.New("no listen address")
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return lis, nil
}

// serveHTTP serves h on lis until ctx ends, then shuts down gracefully.
func serveHTTP(ctx context.Context, lis net.Listener, h http.Handler, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	logger.Info("listening", "addr", lis.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}

// instance names this process for replies: service/version/pid.
func instance(service, version string) string {
	return fmt.Sprintf("%s/%s/%d", service, version, os.Getpid())
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
