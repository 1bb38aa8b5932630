// Package observe is what the proxy knows about one finished request,
// shared by its access logs (package accesslog) and its live tap (package
// tap): the Event, the per-request decision Record the request path's
// stages append to, and the request ID.
//
// A Record exists only while someone taps the proxy: Note on a context
// without one is a context lookup and nothing else, so stages can note
// their decisions unconditionally.
package observe

import (
	"context"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"

	"weft.dev/weft/internal/tapwire"
)

// Event, Decision, Bodies and Millis are the tap stream's wire format
// (package tapwire), which the control plane and the CLI read too.
type (
	Event    = tapwire.Event
	Decision = tapwire.Decision
	Bodies   = tapwire.Bodies
	Millis   = tapwire.Millis
)

// Failed reports whether a request with this HTTP status and gRPC status
// ("" when not gRPC) failed: a 5xx, no status at all, or a gRPC status
// other than OK and the caller-side codes (CANCELLED 1, INVALID_ARGUMENT 3,
// NOT_FOUND 5, ALREADY_EXISTS 6, PERMISSION_DENIED 7, FAILED_PRECONDITION
// 9, OUT_OF_RANGE 11, UNAUTHENTICATED 16).
func Failed(status int, grpcStatus string) bool {
	if status == 0 || status >= 500 {
		return true
	}
	switch grpcStatus {
	case "", "0", "1", "3", "5", "6", "7", "9", "11", "16":
		return false
	}
	return true
}

// CountingBody counts the bytes read from a request body. A transport may
// still read the body after the handler returns, hence the atomic.
type CountingBody struct {
	io.ReadCloser
	n atomic.Int64
}

// Read implements io.Reader.
func (b *CountingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// N is the number of bytes read so far.
func (b *CountingBody) N() int64 { return b.n.Load() }

// Record collects the decisions taken for one tapped request. It is safe
// for concurrent use (a stage may run on a transport goroutine).
type Record struct {
	mu        sync.Mutex
	decisions []Decision
}

type recordKey struct{}

// WithRecord returns ctx carrying rec.
func WithRecord(ctx context.Context, rec *Record) context.Context {
	return context.WithValue(ctx, recordKey{}, rec)
}

// Note appends a decision to the Record of ctx, if the request is tapped;
// otherwise it does nothing. detail is only built by the caller, so pass
// constant strings or guard costly ones with Tapped.
func Note(ctx context.Context, stage, detail string) {
	rec, _ := ctx.Value(recordKey{}).(*Record)
	if rec == nil {
		return
	}
	rec.mu.Lock()
	rec.decisions = append(rec.decisions, Decision{Stage: stage, Detail: detail})
	rec.mu.Unlock()
}

// Tapped reports whether ctx's request is tapped (Note records).
func Tapped(ctx context.Context) bool {
	rec, _ := ctx.Value(recordKey{}).(*Record)
	return rec != nil
}

// Decisions returns a copy of the decisions noted so far; nil for a nil
// Record.
func (rec *Record) Decisions() []Decision {
	if rec == nil {
		return nil
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Decision(nil), rec.decisions...)
}

// RequestIDHeader is the request ID's header, propagated on every hop.
const RequestIDHeader = "X-Request-Id"

// maxRequestID bounds a caller-sent request ID; a longer one is replaced.
const maxRequestID = 128

// RequestID returns the request ID of h, generating (and setting) a new
// one when h has none or an unusable one (too long or not printable
// ASCII), so that every hop logs the same ID.
func RequestID(h http.Header) string {
	if v := h[RequestIDHeader]; len(v) == 1 && usableID(v[0]) {
		return v[0]
	}
	id := NewRequestID()
	h[RequestIDHeader] = []string{id}
	return id
}

func usableID(s string) bool {
	if s == "" || len(s) > maxRequestID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// NewRequestID returns 128 random bits in hex.
func NewRequestID() string {
	var b [16]byte
	a, c := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i], b[8+i] = byte(a>>(8*i)), byte(c>>(8*i))
	}
	return hex.EncodeToString(b[:])
}
