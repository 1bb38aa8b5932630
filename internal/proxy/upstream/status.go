package upstream

import (
	"net/http"
	"sync"
)

// StatusWriter wraps a ResponseWriter to remember the status code sent. It
// supports http.ResponseController through Unwrap, so flushing, hijacking
// and full duplex keep working.
type StatusWriter struct {
	http.ResponseWriter
	// Status is the status code written, 0 before the header is sent.
	Status int
	// Bytes counts the body bytes written.
	Bytes int64
}

var statusWriters = sync.Pool{New: func() any { return new(StatusWriter) }}

// NewStatusWriter returns a pooled StatusWriter around w; Release it after
// the handler returns.
func NewStatusWriter(w http.ResponseWriter) *StatusWriter {
	sw := statusWriters.Get().(*StatusWriter)
	sw.ResponseWriter, sw.Status, sw.Bytes = w, 0, 0
	return sw
}

// Release returns sw to the pool; sw must not be used afterwards.
func (sw *StatusWriter) Release() {
	sw.ResponseWriter = nil
	statusWriters.Put(sw)
}

// WriteHeader implements http.ResponseWriter.
func (sw *StatusWriter) WriteHeader(code int) {
	if sw.Status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		sw.Status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (sw *StatusWriter) Write(b []byte) (int, error) {
	if sw.Status == 0 {
		sw.Status = http.StatusOK
	}
	n, err := sw.ResponseWriter.Write(b)
	sw.Bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher (ReverseProxy flushes streamed responses).
func (sw *StatusWriter) Flush() {
	if sw.Status == 0 {
		sw.Status = http.StatusOK
	}
	http.NewResponseController(sw.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (sw *StatusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }
