// Package accesslog writes one JSON line per request through log/slog.
// The request path only hands its observe.Event to a buffered channel;
// a goroutine formats and writes. When the buffer is full the line is
// dropped and counted (weft_proxy_access_log_lines_total{result="dropped"}):
// a slow log sink never slows requests.
package accesslog

import (
	"context"
	"io"
	"log/slog"

	"weft.dev/weft/internal/proxy/observe"
	"weft.dev/weft/internal/proxy/telemetry"
)

// Mode is which requests of a service get a line.
type Mode int8

// Modes, as the Service resource's access_log field carries them.
const (
	Off    Mode = iota // no lines (the default)
	On                 // every request
	Errors             // failed requests only (observe.Event.Failed)
)

// String implements fmt.Stringer.
func (m Mode) String() string {
	switch m {
	case On:
		return "on"
	case Errors:
		return "errors"
	}
	return "off"
}

// Wants reports whether a request that ended as failed gets a line in
// mode m.
func (m Mode) Wants(failed bool) bool {
	return m == On || m == Errors && failed
}

// DefaultBuffer is the number of lines a Logger buffers before dropping.
const DefaultBuffer = 4096

// Logger writes access log lines. A nil *Logger logs nothing.
type Logger struct {
	ch      chan observe.Event
	h       slog.Handler
	metrics *telemetry.Metrics
}

// New returns a Logger writing JSON lines to w, buffering up to buffer
// lines (DefaultBuffer when buffer <= 0). Run must run for lines to be
// written.
func New(w io.Writer, buffer int, m *telemetry.Metrics) *Logger {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Logger{
		ch:      make(chan observe.Event, buffer),
		h:       slog.NewJSONHandler(w, nil),
		metrics: m,
	}
}

// Log queues a line for e without blocking; it reports false (and counts
// the drop) when the buffer is full.
func (l *Logger) Log(e *observe.Event) bool {
	if l == nil {
		return false
	}
	select {
	case l.ch <- *e:
		return true
	default:
		l.metrics.AccessLogLine(true)
		return false
	}
}

// Run writes queued lines until ctx ends, then writes those still queued
// and returns.
func (l *Logger) Run(ctx context.Context) {
	for {
		select {
		case e := <-l.ch:
			l.write(&e)
		case <-ctx.Done():
			for {
				select {
				case e := <-l.ch:
					l.write(&e)
				default:
					return
				}
			}
		}
	}
}

func (l *Logger) write(e *observe.Event) {
	attrs := [...]slog.Attr{
		slog.String("side", e.Side),
		slog.String("request_id", e.RequestID),
		slog.String("source", e.Source),
		slog.String("source_identity", e.SourceIdentity),
		slog.String("destination", e.Destination),
		slog.String("endpoint", e.Endpoint),
		slog.String("route", e.Route),
		slog.String("method", e.Method),
		slog.String("authority", e.Authority),
		slog.String("path", e.Path),
		slog.Int("status", e.Status),
		slog.String("grpc_status", e.GRPCStatus),
		slog.Float64("duration_ms", float64(e.Duration)/1e6),
		slog.Int64("request_bytes", e.RequestBytes),
		slog.Int64("response_bytes", e.ResponseBytes),
		slog.Bool("tls", e.TLS),
	}
	// The line's time is the request's start, not the write's.
	rec := slog.NewRecord(e.Time, slog.LevelInfo, "access", 0)
	rec.AddAttrs(attrs[:]...)
	_ = l.h.Handle(context.Background(), rec)
	l.metrics.AccessLogLine(false)
}
