// Package h1parse is the proxy's one set of rules for HTTP/1.x request
// framing: a strict, allocation-free scanner over the raw bytes of a
// request head (and of the buffered part of a chunked body) that every
// HTTP/1.x request on every listener passes before anything else parses it.
//
// Two parsers that disagree on where a request ends are how requests are
// smuggled (RFC 9112 §11.2), so the rules here are the strict reading of RFC
// 9112 and where the RFC lets a server choose, they refuse: no whitespace
// before a field's colon, no obs-fold, no bare LF, no control bytes in
// values, exactly one Host on HTTP/1.1, at most one Content-Length, a
// Transfer-Encoding that is exactly "chunked" and never with a
// Content-Length or on HTTP/1.0. A head that passes is also accepted by
// net/http's parser (checked by the differential fuzz target), which then
// builds the *http.Request. docs/http1.md lists every rule with its RFC
// section.
package h1parse

import (
	"bytes"
	"net/http"
)

// Default limits on a request head.
const (
	// DefaultMaxHeaderBytes bounds a request head: request line, header
	// fields and the empty line.
	DefaultMaxHeaderBytes = 60 << 10
	// DefaultMaxHeaders bounds the number of header fields of a request.
	DefaultMaxHeaders = 100
)

// Limits bound a request head; zero fields take the defaults.
type Limits struct {
	// MaxHeaderBytes is the largest head accepted, in bytes, counting the
	// request line, every field line and the final empty line.
	MaxHeaderBytes int
	// MaxHeaders is the largest number of header field lines accepted.
	MaxHeaders int
}

// WithDefaults returns l with zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = DefaultMaxHeaders
	}
	return l
}

// Error is a request the proxy refuses: the status to answer with (the
// connection is then closed), a short reason usable as a metric label, and
// a message for the response body and the log.
type Error struct {
	Status int
	Reason string
	Msg    string
}

func (e *Error) Error() string { return "h1parse: " + e.Msg }

func newErr(status int, reason, msg string) *Error {
	return &Error{Status: status, Reason: reason, Msg: msg}
}

// The refusals. They are values, never modified, so that refusing costs no
// allocation.
var (
	ErrBareLF             = newErr(http.StatusBadRequest, "bare_lf", "line ending in LF without CR (RFC 9112 §2.2)")
	ErrBareCR             = newErr(http.StatusBadRequest, "bare_cr", "CR not followed by LF (RFC 9112 §2.2)")
	ErrHeadTooLarge       = newErr(http.StatusRequestHeaderFieldsTooLarge, "header_too_large", "request header larger than the limit")
	ErrTooManyHeaders     = newErr(http.StatusRequestHeaderFieldsTooLarge, "too_many_headers", "more header fields than the limit")
	ErrRequestLine        = newErr(http.StatusBadRequest, "request_line", "malformed request line (RFC 9112 §3)")
	ErrMethod             = newErr(http.StatusBadRequest, "method", "method is not a token (RFC 9112 §3.1)")
	ErrTarget             = newErr(http.StatusBadRequest, "request_target", "invalid request-target (RFC 9112 §3.2)")
	ErrVersion            = newErr(http.StatusBadRequest, "version", "malformed HTTP-version (RFC 9112 §2.3)")
	ErrVersionUnsupported = newErr(http.StatusHTTPVersionNotSupported, "version_unsupported", "HTTP version not supported (HTTP/1.0 and HTTP/1.1 only)")
	ErrFieldName          = newErr(http.StatusBadRequest, "field_name", "invalid header field name (RFC 9110 §5.1)")
	ErrSpaceBeforeColon   = newErr(http.StatusBadRequest, "space_before_colon", "whitespace between header field name and colon (RFC 9112 §5.1)")
	ErrObsFold            = newErr(http.StatusBadRequest, "obs_fold", "obsolete line folding (RFC 9112 §5.2)")
	ErrFieldValue         = newErr(http.StatusBadRequest, "field_value", "invalid byte in header field value (RFC 9110 §5.5)")
	ErrNoHost             = newErr(http.StatusBadRequest, "host_missing", "HTTP/1.1 request without Host (RFC 9112 §3.2)")
	ErrMultipleHost       = newErr(http.StatusBadRequest, "host_duplicate", "more than one Host (RFC 9112 §3.2)")
	ErrHost               = newErr(http.StatusBadRequest, "host_invalid", "invalid Host (RFC 9110 §7.2)")
	ErrContentLength      = newErr(http.StatusBadRequest, "content_length", "invalid Content-Length (RFC 9112 §6.3)")
	ErrMultipleCL         = newErr(http.StatusBadRequest, "content_length_duplicate", "more than one Content-Length (RFC 9112 §6.3)")
	ErrTransferEncoding   = newErr(http.StatusBadRequest, "transfer_encoding", "Transfer-Encoding other than exactly chunked (RFC 9112 §6.1)")
	ErrTEWithCL           = newErr(http.StatusBadRequest, "te_and_cl", "both Transfer-Encoding and Content-Length (RFC 9112 §6.1)")
	ErrTEOnHTTP10         = newErr(http.StatusBadRequest, "te_http10", "Transfer-Encoding on an HTTP/1.0 request (RFC 9112 §6.1)")
	ErrExpect             = newErr(http.StatusExpectationFailed, "expect", "unsupported Expect (RFC 9110 §10.1.1)")
	ErrChunkSize          = newErr(http.StatusBadRequest, "chunk_size", "malformed chunk size line (RFC 9112 §7.1)")
	ErrChunkLineTooLong   = newErr(http.StatusBadRequest, "chunk_line_too_long", "chunk size line too long")
	ErrChunkData          = newErr(http.StatusBadRequest, "chunk_data", "chunk data not followed by CRLF (RFC 9112 §7.1)")
	ErrTrailer            = newErr(http.StatusBadRequest, "trailer", "malformed trailer field (RFC 9112 §7.1.2)")
)

// Head is what the proxy needs to know of a request head that passed.
type Head struct {
	// Len is the length of the head, through the empty line.
	Len int
	// HTTP10 is true for HTTP/1.0, false for HTTP/1.1.
	HTTP10 bool
	// H2Preface is true for the head of the HTTP/2 connection preface
	// ("PRI * HTTP/2.0"); nothing else is set then.
	H2Preface bool
	// Connect is true for the CONNECT method.
	Connect bool
	// Chunked is true for Transfer-Encoding: chunked.
	Chunked bool
	// ContentLength is the Content-Length, -1 when there is none.
	ContentLength int64
	// Upgrade is true when the request has an Upgrade field.
	Upgrade bool
	// Expect100 is true for Expect: 100-continue on HTTP/1.1.
	Expect100 bool
	// Fields is the number of header field lines.
	Fields int
}

// Scanner finds the end of a request head as its bytes arrive, refusing a
// bare LF, an invalid request line or an oversize head as soon as it is
// seen rather than when the head is complete. The zero Scanner is ready;
// Reset it for each request.
type Scanner struct {
	scanned  int  // bytes of the head already looked at
	lineDone bool // the request line was checked
}

// Reset prepares s for a new request.
func (s *Scanner) Reset() { *s = Scanner{} }

// Scan looks at the start of a request, b, which grows between calls (the
// caller passes all bytes received so far). It returns the head's length
// once b holds the whole head, 0 while more bytes are needed, or the
// refusal.
func (s *Scanner) Scan(b []byte, lim Limits) (int, error) {
	lim = lim.WithDefaults()
	for {
		i := bytes.IndexByte(b[s.scanned:], '\n')
		if i < 0 {
			s.scanned = len(b)
			if len(b) >= lim.MaxHeaderBytes {
				return 0, ErrHeadTooLarge
			}
			return 0, nil
		}
		i += s.scanned
		s.scanned = i + 1
		if i == 0 || b[i-1] != '\r' {
			return 0, ErrBareLF
		}
		if i+1 > lim.MaxHeaderBytes {
			return 0, ErrHeadTooLarge
		}
		if !s.lineDone {
			s.lineDone = true
			if _, err := requestLine(b[:i-1]); err != nil {
				return 0, err
			}
			continue // the request line's end cannot end the head
		}
		if i >= 3 && b[i-2] == '\n' && b[i-3] == '\r' {
			return i + 1, nil
		}
	}
}

// requestLine checks method SP request-target SP HTTP-version (RFC 9112 §3)
// and returns what the head needs of it.
func requestLine(line []byte) (Head, error) {
	h := Head{ContentLength: -1}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return h, ErrRequestLine
	}
	method := line[:sp1]
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return h, ErrRequestLine
	}
	target, version := rest[:sp2], rest[sp2+1:]
	for _, c := range method {
		if !isTchar(c) {
			return h, ErrMethod
		}
	}
	if len(version) != 8 || string(version[:5]) != "HTTP/" || !isDigit(version[5]) || version[6] != '.' || !isDigit(version[7]) {
		return h, ErrVersion
	}
	switch string(version) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		h.HTTP10 = true
	case "HTTP/2.0":
		if string(method) == "PRI" && string(target) == "*" {
			h.H2Preface = true
			return h, nil
		}
		return h, ErrVersionUnsupported
	default:
		return h, ErrVersionUnsupported
	}
	for i, c := range target {
		if c <= ' ' || c >= 0x7f {
			return h, ErrTarget
		}
		if c == '%' {
			if i+2 >= len(target) {
				return h, ErrTarget
			}
			if _, ok := hexVal(target[i+1]); !ok {
				return h, ErrTarget
			}
			if _, ok := hexVal(target[i+2]); !ok {
				return h, ErrTarget
			}
		}
	}
	h.Connect = string(method) == "CONNECT"
	switch {
	case h.Connect:
		if !authorityForm(target) {
			return h, ErrTarget
		}
	case target[0] == '/':
	case len(target) == 1 && target[0] == '*':
		if string(method) != "OPTIONS" {
			return h, ErrTarget
		}
	default:
		if !absoluteForm(target) {
			return h, ErrTarget
		}
	}
	return h, nil
}

// authorityForm: host ":" port (RFC 9112 §3.2.3).
func authorityForm(t []byte) bool { return validAuthority(t, true) }

// absoluteForm: scheme "://" authority path-abempty [ "?" query ]; weft
// takes only http and https URLs (RFC 9112 §3.2.2).
func absoluteForm(t []byte) bool {
	var rest []byte
	switch {
	case len(t) > 7 && equalFold(t[:7], "http://"):
		rest = t[7:]
	case len(t) > 8 && equalFold(t[:8], "https://"):
		rest = t[8:]
	default:
		return false
	}
	end := bytes.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	return validAuthority(rest[:end], false)
}

// validAuthority accepts host [":" port] where host is a reg-name or IPv4
// address, or an IPv6 address in brackets, and port is digits (required
// when needPort). It refuses userinfo and percent-encoding: RFC 3986 allows
// pct-encoded reg-names, but no mesh name needs one and net/http refuses
// most of them, so the proxy and the app would read the host differently.
func validAuthority(a []byte, needPort bool) bool {
	if len(a) == 0 || bytes.IndexAny(a, "@%") >= 0 || !validHostBytes(a) {
		return false
	}
	var host, port []byte
	if a[0] == '[' {
		end := bytes.IndexByte(a, ']')
		if end < 2 {
			return false
		}
		host, port = a[1:end], a[end+1:]
		if bytes.IndexAny(host, "[]") >= 0 {
			return false
		}
	} else {
		host, port = a, nil
		if c := bytes.IndexByte(a, ':'); c >= 0 {
			host, port = a[:c], a[c:]
		}
		if len(host) == 0 || bytes.IndexAny(host, "[]") >= 0 {
			return false
		}
	}
	if len(port) == 0 {
		return !needPort
	}
	if port[0] != ':' || (needPort && len(port) == 1) {
		return false
	}
	for _, c := range port[1:] {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// Parse checks a complete request head, b[:n] where n came from Scan, and
// describes it. It assumes Scan passed it: every line ends in CRLF.
func Parse(b []byte, lim Limits) (Head, error) {
	lim = lim.WithDefaults()
	if len(b) > lim.MaxHeaderBytes {
		return Head{}, ErrHeadTooLarge
	}
	eol := bytes.IndexByte(b, '\n')
	if eol < 1 || b[eol-1] != '\r' {
		return Head{}, ErrBareLF
	}
	h, err := requestLine(b[:eol-1])
	if err != nil {
		return h, err
	}
	h.Len = len(b)
	if h.H2Preface {
		if eol+3 != len(b) {
			return h, ErrVersionUnsupported
		}
		return h, nil
	}
	hosts, cls, tes := 0, 0, 0
	rest := b[eol+1:]
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 1 || rest[i-1] != '\r' {
			return h, ErrBareLF
		}
		line := rest[:i-1]
		rest = rest[i+1:]
		if len(line) == 0 {
			if len(rest) != 0 {
				return h, ErrBareLF // cannot happen after Scan
			}
			break
		}
		h.Fields++
		if h.Fields > lim.MaxHeaders {
			return h, ErrTooManyHeaders
		}
		name, value, err := field(line)
		if err != nil {
			return h, err
		}
		switch len(name) {
		case 4:
			if equalFold(name, "host") {
				hosts++
				if hosts > 1 {
					return h, ErrMultipleHost
				}
				if !validHostBytes(value) {
					return h, ErrHost
				}
			}
		case 6:
			if equalFold(name, "expect") {
				if !equalFold(value, "100-continue") {
					return h, ErrExpect
				}
				h.Expect100 = !h.HTTP10 // RFC 9110 §10.1.1: ignored on 1.0
			}
		case 7:
			if equalFold(name, "upgrade") {
				h.Upgrade = true
			}
		case 14:
			if equalFold(name, "content-length") {
				cls++
				if cls > 1 {
					return h, ErrMultipleCL
				}
				n, ok := parseLength(value)
				if !ok {
					return h, ErrContentLength
				}
				h.ContentLength = n
			}
		case 17:
			if equalFold(name, "transfer-encoding") {
				tes++
				if tes > 1 || !equalFold(value, "chunked") {
					return h, ErrTransferEncoding
				}
				h.Chunked = true
			}
		}
	}
	if h.Chunked {
		if h.HTTP10 {
			return h, ErrTEOnHTTP10
		}
		if cls > 0 {
			return h, ErrTEWithCL
		}
	}
	if hosts == 0 && !h.HTTP10 {
		return h, ErrNoHost
	}
	return h, nil
}

// field splits a field line into name and value (OWS trimmed) and checks
// both (RFC 9112 §5, RFC 9110 §5.5).
func field(line []byte) (name, value []byte, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, ErrObsFold
	}
	colon := -1
	for i, c := range line {
		if c == ':' {
			colon = i
			break
		}
		if !isTchar(c) {
			if c == ' ' || c == '\t' {
				return nil, nil, ErrSpaceBeforeColon
			}
			return nil, nil, ErrFieldName
		}
	}
	if colon <= 0 {
		return nil, nil, ErrFieldName
	}
	name, value = line[:colon], line[colon+1:]
	for _, c := range value {
		if !valueByte[c] {
			if c == '\r' {
				return nil, nil, ErrBareCR
			}
			return nil, nil, ErrFieldValue
		}
	}
	for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
		value = value[1:]
	}
	for len(value) > 0 && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
		value = value[:len(value)-1]
	}
	return name, value, nil
}

// parseLength parses 1*DIGIT without overflow (at most 18 digits).
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validHostBytes accepts the bytes of reg-name, IPv4, IPv6 (inside the
// brackets) and a port: unreserved, sub-delims, pct-encoded, ":" and "[]"
// (RFC 3986 §3.2.2), as net/http's ValidHostHeader does.
func validHostBytes(v []byte) bool {
	for _, c := range v {
		if !hostByte[c] {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isTchar(c byte) bool { return tchar[c] }

// equalFold compares b with the lower-case ASCII string s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

var tchar, valueByte, hostByte [256]bool

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		tchar[c] = alnum || bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), b) >= 0
		// VCHAR, obs-text, SP and HTAB (RFC 9110 §5.5).
		valueByte[c] = b == ' ' || b == '\t' || (b > ' ' && b != 0x7f)
		hostByte[c] = alnum || bytes.IndexByte([]byte("-._~!$&'()*+,;=:[]%"), b) >= 0
	}
}
