package retry

import (
	"errors"
	"io"
	"sync"
)

// errSuperseded ends the reads of an attempt once a later attempt replays
// the body.
var errSuperseded = errors.New("request body handed to a later attempt")

// Body records a request body as attempts read it, up to a limit, so that
// a retry can send it again: each attempt reads through its own View, which
// replays what earlier attempts read and then continues from the client.
// Once more than the limit was read the body is no longer replayable and a
// retry that would need it is not made.
type Body struct {
	mu       sync.Mutex
	src      io.ReadCloser
	buf      []byte
	limit    int64
	overflow bool
	eof      bool
	err      error
	gen      int
}

// NewBody wraps src, keeping up to limit bytes for replay.
func NewBody(src io.ReadCloser, limit int64) *Body {
	return &Body{src: src, limit: limit}
}

// Replayable reports whether a new attempt can send the body from its
// start: no more than the limit was read so far.
func (b *Body) Replayable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.overflow
}

// View starts an attempt's reading of the body from its start; the views
// of earlier attempts fail their next read. Call it only while Replayable.
func (b *Body) View() io.ReadCloser {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	return &view{b: b, gen: b.gen}
}

type view struct {
	b   *Body
	gen int
	off int
}

func (v *view) Read(p []byte) (int, error) {
	b := v.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if v.gen != b.gen {
		return 0, errSuperseded
	}
	if v.off < len(b.buf) {
		n := copy(p, b.buf[v.off:])
		v.off += n
		return n, nil
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(p)
	if n > 0 && !b.overflow {
		if int64(len(b.buf)+n) > b.limit {
			b.overflow = true
			b.buf = nil
		} else {
			b.buf = append(b.buf, p[:n]...)
			v.off = len(b.buf)
		}
	}
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.err = err
	}
	return n, err
}

// Close does not close the client's body, which the server owns and a
// later attempt may still read.
func (v *view) Close() error { return nil }
