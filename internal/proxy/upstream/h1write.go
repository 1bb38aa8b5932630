package upstream

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// writeRequest writes req as HTTP/1.1 the way req.Write does for the
// requests H1Transport carries (no body or one of known length, no
// Transfer-Encoding, Upgrade or Expect), without req.Write's per-request
// transfer writer and sorted header copy: a proxied request costs no
// allocation here. Requests of any other shape, or with a header value
// that needs cleaning, go to req.Write. Like req.Write it closes the body.
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	if !plainRequest(req) {
		return req.Write(bw)
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(req.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	if ua, ok := req.Header["User-Agent"]; !ok {
		bw.WriteString("User-Agent: Go-http-client/1.1\r\n")
	} else if len(ua) > 0 && ua[0] != "" {
		bw.WriteString("User-Agent: ")
		bw.WriteString(ua[0])
		bw.WriteString("\r\n")
	}
	// As net/http: a length when there is a body, and "0" for the
	// methods many servers expect one with.
	if req.ContentLength > 0 || req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch {
		bw.WriteString("Content-Length: ")
		var num [20]byte
		bw.Write(strconv.AppendInt(num[:0], req.ContentLength, 10))
		bw.WriteString("\r\n")
	}
	if req.Close && !hasToken(req.Header["Connection"], "close") {
		bw.WriteString("Connection: close\r\n")
	}
	for k, vs := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(trimSpaceTab(v))
			bw.WriteString("\r\n")
		}
	}
	_, err := bw.WriteString("\r\n")
	if req.Body == nil || req.Body == http.NoBody {
		return err
	}
	defer req.Body.Close()
	if err != nil {
		return err
	}
	// A body larger than the buffer flushes it anyway; send the header
	// first then, so the server sees the request before the body.
	if req.ContentLength > int64(bw.Available()) {
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	n, err := io.Copy(bw, io.LimitReader(req.Body, req.ContentLength))
	if err != nil {
		return err
	}
	if n != req.ContentLength {
		return fmt.Errorf("http: ContentLength=%d with Body length %d", req.ContentLength, n)
	}
	return nil
}

// plainRequest reports whether writeRequest can write req itself: the
// shape H1Transport handles, an origin-form target, a valid Host, and header
// names and values that are valid as they are (req.Write cleans or rejects
// the others).
func plainRequest(req *http.Request) bool {
	if req.Method == "" || req.Method == http.MethodConnect || req.URL == nil || req.URL.Opaque != "" ||
		req.ContentLength < 0 || len(req.TransferEncoding) > 0 || len(req.Trailer) > 0 {
		return false
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if host == "" || !httpguts.ValidHostHeader(host) || strings.ContainsAny(host, "/%") || !httpguts.ValidHeaderFieldName(req.Method) {
		return false
	}
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

// hasToken reports whether a comma-separated header holds token, ignoring
// case.
func hasToken(vs []string, token string) bool {
	for _, v := range vs {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// trimSpaceTab trims the spaces and tabs around a header value, as
// net/http does when it writes one.
func trimSpaceTab(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
