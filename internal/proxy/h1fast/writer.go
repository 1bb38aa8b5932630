package h1fast

import (
	"bufio"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"weft.dev/weft/internal/proxy/h1parse"
)

// responseWriter writes an HTTP/1.1 response straight to the connection:
// with the handler's Content-Length, or chunked when it set none.
type responseWriter struct {
	bw          *bufio.Writer
	req         *http.Request
	h           http.Header
	wroteHeader bool
	noBody      bool
	chunked     bool
	remaining   int64
	closeAfter  bool
	trailers    []string
	err         error
	body        *checkedBody // the request's chunked body, if any
	discard     bool         // the handler's response was replaced
}

var errBodyTooLong = errors.New("h1fast: handler wrote more than its Content-Length")

func (w *responseWriter) Header() http.Header { return w.h }

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader || w.err != nil {
		return
	}
	if code >= 100 && code < 200 {
		// Informational responses pass through; the final one follows.
		w.writeStatus(code)
		w.writeFields(w.h)
		w.bw.WriteString("\r\n")
		return
	}
	w.wroteHeader = true
	if w.body != nil {
		if e := w.body.refused.Load(); e != nil {
			w.writeRefusal(e)
			return
		}
	}
	h := w.h
	w.noBody = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	w.remaining = -1
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			h.Del("Content-Length")
			w.closeAfter = true
		} else {
			w.remaining = n
		}
	}
	if !w.req.ProtoAtLeast(1, 1) {
		// HTTP/1.0 has no chunked encoding: a body of unknown length
		// ends with the connection, and 1.0 connections are not kept.
		w.closeAfter = true
		h.Set("Connection", "close")
	} else if w.remaining < 0 && !w.noBody {
		w.chunked = true
		h.Set("Transfer-Encoding", "chunked")
		for _, v := range h["Trailer"] {
			for _, k := range strings.Split(v, ",") {
				if k = strings.TrimSpace(k); k != "" {
					w.trailers = append(w.trailers, http.CanonicalHeaderKey(k))
				}
			}
		}
	}
	if w.req.Close || h.Get("Connection") == "close" {
		w.closeAfter = true
		h.Set("Connection", "close")
	}
	if _, ok := h["Date"]; !ok {
		h["Date"] = []string{httpDate()}
	}
	w.writeStatus(code)
	w.writeFields(h)
	w.bw.WriteString("\r\n")
}

// writeRefusal answers a request refused while the handler ran (its body
// was malformed) in place of the handler's response.
func (w *responseWriter) writeRefusal(e *h1parse.Error) {
	msg := "weft: " + e.Msg + "\n"
	w.discard, w.closeAfter = true, true
	w.writeStatus(e.Status)
	w.bw.WriteString("Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ")
	w.bw.WriteString(strconv.Itoa(len(msg)))
	w.bw.WriteString("\r\n\r\n")
	w.bw.WriteString(msg)
}

func (w *responseWriter) writeStatus(code int) {
	w.bw.WriteString("HTTP/1.1 ")
	w.bw.WriteString(strconv.Itoa(code))
	w.bw.WriteByte(' ')
	w.bw.WriteString(http.StatusText(code))
	w.bw.WriteString("\r\n")
}

// writeFields writes header fields, skipping trailer values and any value
// that could split the header (never produced by net/http's parser).
func (w *responseWriter) writeFields(h http.Header) {
	for k, vs := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n") || strings.ContainsAny(k, "\r\n: ") {
				continue
			}
			w.bw.WriteString(k)
			w.bw.WriteString(": ")
			w.bw.WriteString(v)
			w.bw.WriteString("\r\n")
		}
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.discard {
		return len(p), nil
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.chunked {
		w.bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		w.bw.WriteString("\r\n")
		w.bw.Write(p)
		_, err := w.bw.WriteString("\r\n")
		if err != nil {
			w.err = err
			return 0, err
		}
		return len(p), nil
	}
	if w.remaining >= 0 && int64(len(p)) > w.remaining {
		w.err = errBodyTooLong
		return 0, w.err
	}
	n, err := w.bw.Write(p)
	if w.remaining >= 0 {
		w.remaining -= int64(n)
	}
	if err != nil {
		w.err = err
	}
	return n, err
}

// FlushError sends what is buffered (http.ResponseController uses it).
func (w *responseWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	return w.bw.Flush()
}

// EnableFullDuplex implements http.ResponseController's method: the fast
// lane lets a handler read the request body while it writes the response.
func (w *responseWriter) EnableFullDuplex() error { return nil }

// Flush implements http.Flusher.
func (w *responseWriter) Flush() { w.FlushError() }

// finish completes the response; a body shorter than its Content-Length
// leaves the connection unusable, so it will be closed.
func (w *responseWriter) finish() error {
	if !w.wroteHeader {
		w.h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	if w.discard {
		return w.bw.Flush()
	}
	if w.chunked {
		w.bw.WriteString("0\r\n")
		for _, k := range w.trailers {
			for _, v := range w.h[k] {
				if !strings.ContainsAny(v, "\r\n") {
					w.bw.WriteString(k + ": " + v + "\r\n")
				}
			}
		}
		for k, vs := range w.h {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				for _, v := range vs {
					if !strings.ContainsAny(v, "\r\n") {
						w.bw.WriteString(http.CanonicalHeaderKey(name) + ": " + v + "\r\n")
					}
				}
			}
		}
		w.bw.WriteString("\r\n")
	} else if w.remaining > 0 && !w.noBody {
		w.closeAfter = true
	}
	return w.bw.Flush()
}

// httpDate caches the Date header value for a second.
var dateCache atomic.Pointer[cachedDate]

type cachedDate struct {
	sec int64
	v   string
}

func httpDate() string {
	now := time.Now().Unix()
	if c := dateCache.Load(); c != nil && c.sec == now {
		return c.v
	}
	v := time.Unix(now, 0).UTC().Format(http.TimeFormat)
	dateCache.Store(&cachedDate{now, v})
	return v
}
