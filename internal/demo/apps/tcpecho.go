package apps

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
)

// TCPEchoConfig configures the TCP echo app.
type TCPEchoConfig struct {
	Listen   string
	Listener net.Listener // if set, used instead of Listen (tests)
	// Banner, if set, is written to every connection as it is accepted,
	// before anything is read: a server-first protocol (like SMTP's or
	// MySQL's greeting).
	Banner string
}

// RunTCPEcho serves raw TCP until ctx ends: every connection gets the
// banner, then every byte it sends back; its write half is closed when the
// client closes its own.
func RunTCPEcho(ctx context.Context, cfg TCPEchoConfig, log *slog.Logger) error {
	lis, err := listen(ctx, cfg.Listen, cfg.Listener)
	if err != nil {
		return err
	}
	log.Info("tcp echo listening", "addr", lis.Addr().String())
	context.AfterFunc(ctx, func() { lis.Close() })
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := lis.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Go(func() {
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			defer c.Close()
			if cfg.Banner != "" {
				if _, err := io.WriteString(c, cfg.Banner); err != nil {
					return
				}
			}
			io.Copy(c, c)
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		})
	}
}
