package xds

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// reasonRevoked counts streams closed because their credential was revoked
// or expired after they were admitted.
const reasonRevoked = "revoked"

// DefaultRevalidateInterval is how often the server re-checks the
// credential of every open stream when Options.RevalidateInterval is zero.
const DefaultRevalidateInterval = 2 * time.Second

// errRevoked is the cause with which a stream's context is cancelled when
// its credential no longer holds.
var errRevoked = errors.New("credential revoked")

// live is the set of admitted streams, so that their credentials can be
// checked again after admission (a revoked join token ends its streams).
type live struct {
	mu      sync.Mutex
	streams map[*liveStream]struct{}
}

type liveStream struct {
	c      *caller
	cancel context.CancelCauseFunc
}

func (l *live) add(ls *liveStream) func() {
	l.mu.Lock()
	if l.streams == nil {
		l.streams = map[*liveStream]struct{}{}
	}
	l.streams[ls] = struct{}{}
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.streams, ls)
		l.mu.Unlock()
	}
}

func (l *live) snapshot() []*liveStream {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*liveStream, 0, len(l.streams))
	for ls := range l.streams {
		out = append(out, ls)
	}
	return out
}

// Revalidate checks the credential of every open stream against
// Options.Scope again and ends, with PermissionDenied, the streams whose
// credential is no longer valid (a revoked or expired join token) or whose
// Scope.Service no longer accepts the service they joined. Their
// workloads leave the mesh as when their proxies disconnect. It returns
// the number of streams it ended.
func (s *Server) Revalidate() int {
	if s.opts.Scope == nil {
		return 0
	}
	n := 0
	for _, ls := range s.live.snapshot() {
		if err := s.stillScoped(ls.c); err != nil {
			err = fmt.Errorf("%w: %w", errRevoked, err)
			s.refuse(reasonRevoked, ls.c, err)
			ls.cancel(err)
			n++
		}
	}
	return n
}

// stillScoped is nil if c's credential still allows what it registered.
func (s *Server) stillScoped(c *caller) error {
	scope, err := s.opts.Scope(c.leaf)
	if err != nil {
		return err
	}
	if svc := c.joined.Load(); svc != nil && scope.Service != nil {
		if err := scope.Service(*svc); err != nil {
			return fmt.Errorf("service %q: %w", *svc, err)
		}
	}
	return nil
}

// revalidateLoop runs Revalidate every interval until ctx ends.
func (s *Server) revalidateLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Revalidate()
		}
	}
}

// runRevocable runs handler for an admitted stream and returns early, with
// PermissionDenied, if Revalidate ends the stream: returning from the
// interceptor ends the RPC, which unblocks the handler's goroutines; end
// first stops the handler from sending on the stream the server now owns.
func (s *Server) runRevocable(ctx context.Context, cancel context.CancelCauseFunc, c *caller, end func(), handler func() error) error {
	remove := s.live.add(&liveStream{c: c, cancel: cancel})
	defer remove()
	done := make(chan error, 1)
	go func() { done <- handler() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		if cause := context.Cause(ctx); errors.Is(cause, errRevoked) {
			end()
			return status.Errorf(codes.PermissionDenied, "xds: %v", cause)
		}
		return <-done
	}
}
