package upstream

import (
	"net/http"
	"strconv"
	"strings"
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
