package inbound

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// drainState tracks the requests the inbound listener serves, for a
// graceful stop: once draining, every response asks the peer to close its
// connection (HTTP/1.1 Connection: close; HTTP/2 GOAWAY, which net/http's
// server sends when a handler sets Connection: close), so that peers stop
// reusing pooled connections to a proxy that is leaving the mesh.
type drainState struct {
	draining atomic.Bool
	inflight atomic.Int64
	last     atomic.Int64                // unix nanoseconds of the last request's arrival
	srv      atomic.Pointer[http.Server] // Serve's net/http server (HTTP/2 and handed-off HTTP/1.1)
}

// StartDrain makes every response from now on close its connection after
// it is written. In-flight and idle connections are not interrupted.
func (l *Listener) StartDrain() { l.drain.draining.Store(true) }

// Shutdown ends the net/http server of a drained listener gracefully: its
// HTTP/2 connections get GOAWAY (a peer's request racing the close is then
// retried by the peer's HTTP/2 client) and close once idle, and idle
// handed-off HTTP/1.1 connections close. It returns when they have, or
// with ctx's error. Call it after the drain, before Serve's context ends;
// fast-lane HTTP/1.1 connections close when Serve returns.
func (l *Listener) Shutdown(ctx context.Context) error {
	if srv := l.drain.srv.Load(); srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			return fmt.Errorf("inbound: graceful shutdown: %w", err)
		}
	}
	return nil
}

// Activity reports the requests in flight and when the last one arrived
// (zero time before the first).
func (l *Listener) Activity() (inflight int64, last time.Time) {
	inflight = l.drain.inflight.Load()
	if ns := l.drain.last.Load(); ns != 0 {
		last = time.Unix(0, ns)
	}
	return inflight, last
}

// enter records a request arriving at start; leave must follow.
func (l *Listener) enter(w http.ResponseWriter, start time.Time) {
	l.drain.inflight.Add(1)
	l.drain.last.Store(start.UnixNano())
	if l.drain.draining.Load() {
		w.Header()["Connection"] = []string{"close"}
	}
}

func (l *Listener) leave() { l.drain.inflight.Add(-1) }
