package tap

import (
	"io"
	"net/http"
	"sync"

	"weft.dev/weft/internal/proxy/observe"
)

// BodyLimit is how much of each body a tap shows.
const BodyLimit = 4 << 10

// prefix keeps the first BodyLimit bytes written to it. A request body
// may still be read by a transport goroutine when the handler returns,
// hence the lock.
type prefix struct {
	mu        sync.Mutex
	buf       []byte
	truncated bool
}

func (p *prefix) keep(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	room := BodyLimit - len(p.buf)
	if len(b) > room {
		b = b[:room]
		p.truncated = true
	}
	p.buf = append(p.buf, b...)
}

// Capture records the start of a request's and its response's bodies
// while they stream, for a tap that asked for bodies.
type Capture struct {
	reqHeader http.Header
	req, resp prefix
}

// NewCapture starts capturing r: it keeps a redacted copy of r's header
// and wraps r.Body.
func NewCapture(r *http.Request) *Capture {
	c := &Capture{reqHeader: RedactHeader(r.Header)}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &captureBody{ReadCloser: r.Body, p: &c.req}
	}
	return c
}

// Writer wraps w so that the response body is captured too.
func (c *Capture) Writer(w http.ResponseWriter) http.ResponseWriter {
	return &captureWriter{ResponseWriter: w, p: &c.resp}
}

// Bodies returns what was captured, redacted; respHeader is the
// response's header.
func (c *Capture) Bodies(respHeader http.Header) *observe.Bodies {
	b := &observe.Bodies{RequestHeaders: c.reqHeader, ResponseHeaders: RedactHeader(respHeader)}
	b.Request, b.RequestTrunc = c.req.redacted(c.reqHeader.Get("Content-Type"))
	b.Response, b.ResponseTrunc = c.resp.redacted(respHeader.Get("Content-Type"))
	return b
}

func (p *prefix) redacted(contentType string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return RedactBody(contentType, p.buf), p.truncated
}

type captureBody struct {
	io.ReadCloser
	p *prefix
}

func (b *captureBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.p.keep(p[:n])
	return n, err
}

type captureWriter struct {
	http.ResponseWriter
	p *prefix
}

func (w *captureWriter) Write(b []byte) (int, error) {
	w.p.keep(b)
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (w *captureWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *captureWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
