package upstream

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// upgradeType returns the protocol an HTTP/1.1 request asks to switch to
// (RFC 9110 §7.8: an Upgrade field named by Connection), "" for none. An
// upgrade to h2c is not relayed: the sidecars speak HTTP/2 themselves, and
// the request is served as HTTP/1.1 (RFC 9113 dropped that upgrade).
func upgradeType(h http.Header) string {
	if !headerHasToken(h, "Connection", "upgrade") {
		return ""
	}
	if u := h.Get("Upgrade"); !strings.EqualFold(u, "h2c") {
		return u
	}
	return ""
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// errUpgradeMismatch is a 101 for another protocol than the one asked for.
var errUpgradeMismatch = errors.New("upgrade: the backend switched to a protocol the client did not ask for")

// serveUpgrade relays a 101 Switching Protocols: it hijacks the client's
// connection, writes the response head and copies bytes both ways until
// either side closes. The status recorded by a StatusWriter around w is
// 101.
func (f *Forwarder) serveUpgrade(w http.ResponseWriter, r *http.Request, resp *http.Response, asked string) {
	if got := resp.Header.Get("Upgrade"); !strings.EqualFold(got, asked) {
		resp.Body.Close()
		f.ErrorHandler(w, r, fmt.Errorf("%w: asked %q, got %q", errUpgradeMismatch, asked, got))
		return
	}
	back, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		f.ErrorHandler(w, r, errors.New("upgrade: the backend connection is not writable (a per-try timeout applies to this route)"))
		return
	}
	defer back.Close()
	markSwitched(w)
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		f.ErrorHandler(w, r, fmt.Errorf("upgrade: %w", err))
		return
	}
	defer conn.Close()
	removeHopHeaders(resp.Header)
	resp.Header["Connection"] = []string{"Upgrade"}
	resp.Header["Upgrade"] = []string{asked}
	conn.SetDeadline(time.Time{}) // the server's read and write timeouts do not apply to the stream
	if _, err := fmt.Fprintf(brw, "HTTP/1.1 101 %s\r\n", http.StatusText(http.StatusSwitchingProtocols)); err != nil {
		return
	}
	if err := resp.Header.Write(brw); err != nil {
		return
	}
	if _, err := brw.WriteString("\r\n"); err != nil || brw.Flush() != nil {
		return
	}
	// Bytes the client sent after its request head are in brw.Reader.
	var once sync.Once
	done := make(chan struct{})
	end := func() { once.Do(func() { close(done) }) }
	go func() {
		copyStream(back, brw.Reader)
		end()
	}()
	go func() {
		copyStream(conn, back)
		end()
	}()
	select {
	case <-done:
	case <-r.Context().Done():
	}
}

// markSwitched records 101 in the StatusWriter w is or wraps (observers
// may wrap it): the hijacked connection never calls WriteHeader.
func markSwitched(w http.ResponseWriter) {
	for {
		if sw, ok := w.(*StatusWriter); ok {
			sw.Status = http.StatusSwitchingProtocols
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// copyStream copies src to dst with a pooled buffer.
func copyStream(dst io.Writer, src io.Reader) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	io.CopyBuffer(dst, src, *bp)
}
