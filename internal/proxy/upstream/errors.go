package upstream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WriteError answers r with a weft error: msg as a plain-text body with the
// given HTTP status, or, for gRPC requests, a trailers-only response carrying
// the matching grpc-status and msg as grpc-message, which gRPC clients
// surface as a status error instead of an opaque HTTP failure.
func WriteError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h := w.Header()
	if IsGRPC(r) {
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(grpcCode(status)))
		h.Set("Grpc-Message", grpcEncode(msg))
		w.WriteHeader(http.StatusOK)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}

// IsGRPC reports whether r is a gRPC call.
func IsGRPC(r *http.Request) bool {
	return r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// grpcCode maps an HTTP status to the gRPC status code a proxy returns.
func grpcCode(status int) int {
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return 14 // UNAVAILABLE
	case http.StatusGatewayTimeout:
		return 4 // DEADLINE_EXCEEDED
	case http.StatusNotFound:
		return 12 // UNIMPLEMENTED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusBadRequest:
		return 13 // INTERNAL
	}
	return 2 // UNKNOWN
}

// grpcEncode percent-encodes msg as the gRPC spec requires for grpc-message.
func grpcEncode(msg string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// WithGRPCDeadline bounds the context of a gRPC request by its grpc-timeout
// header, so that a call whose deadline passes in the proxy ends with
// DEADLINE_EXCEEDED rather than an upstream reset reported as UNAVAILABLE.
// The returned cancel must be called; r is returned unchanged when there is
// no deadline.
func WithGRPCDeadline(r *http.Request) (*http.Request, context.CancelFunc) {
	d, ok := grpcTimeout(r.Header.Get("Grpc-Timeout"))
	if !ok || !IsGRPC(r) {
		return r, func() {}
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return r.WithContext(ctx), cancel
}

// grpcTimeout parses the gRPC wire format: up to 8 digits and a unit.
func grpcTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second, 'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}[v[len(v)-1]]
	if unit == 0 {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// IsConnectError reports whether err happened while connecting, before any
// byte of a request was written: such a request may go to another endpoint.
func IsConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
