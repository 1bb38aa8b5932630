package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
)

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

type closeWriter interface{ CloseWrite() error }

// Pipe copies bytes both ways between down (the connecting side) and up until
// both directions end, half-closing each side's write half when its source
// reaches EOF. It closes both connections when done, or at once when ctx
// ends. It returns the bytes copied down→up and up→down.
func Pipe(ctx context.Context, down, up net.Conn) (upBytes, downBytes int64) {
	stop := context.AfterFunc(ctx, func() {
		down.Close()
		up.Close()
	})
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		downBytes = copyHalf(up, down)
	}()
	upBytes = copyHalf(down, up)
	wg.Wait()
	down.Close()
	up.Close()
	return upBytes, downBytes
}

// copyHalf copies src to dst. On EOF it half-closes dst; on any other error
// it closes both so the opposite direction ends too.
func copyHalf(src, dst net.Conn) int64 {
	bp := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(dst, src, *bp)
	copyBufs.Put(bp)
	if err == nil || errors.Is(err, io.EOF) {
		if cw, ok := dst.(closeWriter); ok {
			if cw.CloseWrite() == nil {
				return n
			}
		}
	}
	src.Close()
	dst.Close()
	return n
}

// BufferPool is an httputil.BufferPool of 32 KiB copy buffers, shared with
// Pipe and the Forwarder, so the pass-through ReverseProxy does not allocate
// one per response.
var BufferPool bufferPool

type bufferPool struct{}

func (bufferPool) Get() []byte { return *copyBufs.Get().(*[]byte) }

func (bufferPool) Put(b []byte) {
	if cap(b) >= 32<<10 {
		b = b[:32<<10]
		copyBufs.Put(&b)
	}
}
