package xdsclient

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Reconnect backoff defaults: the first retry comes within 100–200 ms and
// no wait exceeds 2 s, far below the control plane's 20 s grace for the
// workloads it restores after a restart.
const (
	DefaultBackoffBase = 200 * time.Millisecond
	DefaultBackoffMax  = 2 * time.Second
)

// Backoff is a capped exponential backoff with equal jitter: each wait is
// uniformly distributed in [d/2, d], where d doubles from Base up to Max.
// Spreading the waits keeps proxies that lost the control plane together
// from reconnecting in lockstep.
type Backoff struct {
	Base, Max time.Duration
	n         int
}

// Next returns the wait before the next attempt.
func (b *Backoff) Next() time.Duration {
	d := b.Base
	for i := 0; i < b.n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	b.n++
	return d/2 + rand.N(d/2+1)
}

// Reset starts over from Base, after a successful connection.
func (b *Backoff) Reset() { b.n = 0 }

// Cause reduces an error from dialling the control plane or from an xDS or
// CA call to a short cause for a log line or a status page: connection
// refused, a TLS handshake failure and why, the control plane refusing the
// credentials, a timeout.
func Cause(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, io.EOF) {
		return "the control plane closed the stream"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	msg := err.Error()
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		st := se.GRPCStatus()
		msg = st.Message()
		switch st.Code() {
		case codes.Unauthenticated, codes.PermissionDenied:
			return "rejected by the control plane: " + msg
		case codes.DeadlineExceeded:
			return "timed out"
		}
	}
	if strings.HasSuffix(msg, "EOF") {
		return "the control plane closed the connection"
	}
	if i := strings.Index(msg, "authentication handshake failed: "); i >= 0 {
		return "TLS handshake failed: " + strings.TrimRight(msg[i+len("authentication handshake failed: "):], `"`)
	}
	for _, known := range []string{"connection refused", "connection reset by peer", "no route to host", "network is unreachable", "no such host", "i/o timeout"} {
		if strings.Contains(msg, known) {
			return known
		}
	}
	if strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:") {
		return "TLS: " + msg
	}
	const maxLen = 200
	if len(msg) > maxLen {
		msg = msg[:maxLen] + "…"
	}
	return msg
}

// FailureLog logs repeated connection failures without flooding: the first
// failure of an outage, any change of cause, and otherwise one line per
// Every (default 5 s) carrying the number of attempts so far.
type FailureLog struct {
	Logger *slog.Logger
	Every  time.Duration

	mu       sync.Mutex
	attempts int
	cause    string
	logged   time.Time
	since    time.Time
}

// Failed records one failed attempt with its cause and logs it if due.
func (f *FailureLog) Failed(msg, cause string, attrs ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	every := f.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	if f.attempts == 0 {
		f.since = now
	}
	f.attempts++
	if f.attempts > 1 && cause == f.cause && now.Sub(f.logged) < every {
		return
	}
	f.cause, f.logged = cause, now
	f.Logger.Warn(msg, append([]any{"cause", cause, "attempts", f.attempts, "failing_for", now.Sub(f.since).Round(time.Millisecond)}, attrs...)...)
}

// Succeeded ends an outage; it reports how many attempts failed and for
// how long (zero if none).
func (f *FailureLog) Succeeded() (attempts int, outage time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	attempts, outage = f.attempts, time.Since(f.since)
	if attempts == 0 {
		outage = 0
	}
	f.attempts, f.cause = 0, ""
	return attempts, outage
}
