package h1parse

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// scanAll feeds b to a Scanner whole and returns the head it finds, parsed.
func scanAll(b []byte, lim Limits) (Head, error) {
	var s Scanner
	n, err := s.Scan(b, lim)
	if err != nil {
		return Head{}, err
	}
	if n == 0 {
		return Head{}, errIncomplete
	}
	return Parse(b[:n], lim)
}

var errIncomplete = &Error{Reason: "incomplete"}

func TestHead(t *testing.T) {
	ok := func(h Head) Head { h.ContentLength = -1; return h }
	for _, tc := range []struct {
		name, head string
		want       Head
		err        error
	}{
		{"simple", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", ok(Head{Fields: 1}), nil},
		{"http/1.0 without host", "GET / HTTP/1.0\r\n\r\n", ok(Head{HTTP10: true}), nil},
		{"absolute form", "GET http://orders:80/x?y HTTP/1.1\r\nHost: orders\r\n\r\n", ok(Head{Fields: 1}), nil},
		{"options asterisk", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", ok(Head{Fields: 1}), nil},
		{"connect", "CONNECT orders:443 HTTP/1.1\r\nHost: orders:443\r\n\r\n", ok(Head{Connect: true, Fields: 1}), nil},
		{"connect ipv6", "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n", ok(Head{Connect: true, Fields: 1}), nil},
		{"content-length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n", Head{ContentLength: 12, Fields: 2}, nil},
		{"chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", ok(Head{Chunked: true, Fields: 2}), nil},
		{"chunked any case", "POST / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: Chunked\r\n\r\n", ok(Head{Chunked: true, Fields: 2}), nil},
		{"expect", "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", Head{Expect100: true, ContentLength: 1, Fields: 3}, nil},
		{"expect on 1.0 ignored", "POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", ok(Head{HTTP10: true, Fields: 1}), nil},
		{"upgrade", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", ok(Head{Upgrade: true, Fields: 3}), nil},
		{"ows and tab and obs-text", "GET / HTTP/1.1\r\nHost:x\r\nX-A: \t v\xe9 w \t\r\n\r\n", ok(Head{Fields: 2}), nil},
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\n", ok(Head{H2Preface: true}), nil},

		{"space before colon", "GET / HTTP/1.1\r\nHost: x\r\nX-Foo : bar\r\n\r\n", Head{}, ErrSpaceBeforeColon},
		{"TE space before colon", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n", Head{}, ErrSpaceBeforeColon},
		{"tab before colon", "GET / HTTP/1.1\r\nHost: x\r\nX-Foo\t: bar\r\n\r\n", Head{}, ErrSpaceBeforeColon},
		{"CL and TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", Head{}, ErrTEWithCL},
		{"TE and CL", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", Head{}, ErrTEWithCL},
		{"duplicate CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", Head{}, ErrMultipleCL},
		{"CL list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\n", Head{}, ErrContentLength},
		{"CL sign", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n", Head{}, ErrContentLength},
		{"CL overflow", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", Head{}, ErrContentLength},
		{"CL empty", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", Head{}, ErrContentLength},
		{"TE chunked, identity", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", Head{}, ErrTransferEncoding},
		{"TE identity, chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n", Head{}, ErrTransferEncoding},
		{"TE xchunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", Head{}, ErrTransferEncoding},
		{"TE gzip", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", Head{}, ErrTransferEncoding},
		{"TE twice", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Head{}, ErrTransferEncoding},
		{"TE quoted", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", Head{}, ErrTransferEncoding},
		{"TE folded", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\tchunked\r\n\r\n", Head{}, ErrTransferEncoding},
		{"TE tab value", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tchunked\r\n\r\n", ok(Head{Chunked: true, Fields: 2}), nil},
		{"TE vertical tab", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\vchunked\r\n\r\n", Head{}, ErrFieldValue},
		{"TE on 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Head{}, ErrTEOnHTTP10},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", Head{}, ErrObsFold},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", Head{}, ErrFieldValue},
		{"CR in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", Head{}, ErrBareCR},
		{"DEL in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n", Head{}, ErrFieldValue},
		{"bad name byte", "GET / HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n", Head{}, ErrFieldName},
		{"empty name", "GET / HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n", Head{}, ErrFieldName},
		{"no colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A\r\n\r\n", Head{}, ErrFieldName},
		{"no host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", Head{}, ErrNoHost},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Head{}, ErrMultipleHost},
		{"bad host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Head{}, ErrHost},
		{"host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", Head{}, ErrHost},
		{"bare LF request line", "GET / HTTP/1.1\nHost: x\r\n\r\n", Head{}, ErrBareLF},
		{"bare LF header", "GET / HTTP/1.1\r\nHost: x\n\r\n", Head{}, ErrBareLF},
		{"bare LF end", "GET / HTTP/1.1\r\nHost: x\r\n\n", Head{}, ErrBareLF},
		{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", Head{}, ErrRequestLine},
		{"two spaces", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", Head{}, ErrRequestLine},
		{"no version", "GET /\r\nHost: x\r\n\r\n", Head{}, ErrRequestLine},
		{"lower version", "GET / http/1.1\r\nHost: x\r\n\r\n", Head{}, ErrVersion},
		{"version 1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", Head{}, ErrVersionUnsupported},
		{"version 2 not preface", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", Head{}, ErrVersionUnsupported},
		{"version 0.9", "GET / HTTP/0.9\r\n\r\n", Head{}, ErrVersionUnsupported},
		{"version 11", "GET / HTTP/11\r\n\r\n", Head{}, ErrVersion},
		{"method not token", "G@T / HTTP/1.1\r\nHost: x\r\n\r\n", Head{}, ErrMethod},
		{"target control", "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", Head{}, ErrTarget},
		{"target utf8", "GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", Head{}, ErrTarget},
		{"target relative", "GET x HTTP/1.1\r\nHost: x\r\n\r\n", Head{}, ErrTarget},
		{"target ftp", "GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n", Head{}, ErrTarget},
		{"target userinfo", "GET http://u@x/ HTTP/1.1\r\nHost: x\r\n\r\n", Head{}, ErrTarget},
		{"target escaped host", "GET http://000%0000000 HTTP/1.0\r\n\r\n", Head{}, ErrTarget},
		{"connect escaped host", "CONNECT a%41b:443 HTTP/1.1\r\nHost: x\r\n\r\n", Head{}, ErrTarget},
		{"target open bracket", "GET http://[ HTTP/1.0\r\n\r\n", Head{}, ErrTarget},
		{"target bad port", "GET http://a:8x/ HTTP/1.1\r\nHost: a\r\n\r\n", Head{}, ErrTarget},
		{"target bad escape", "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", Head{}, ErrTarget},
		{"asterisk not options", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", Head{}, ErrTarget},
		{"connect origin form", "CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n", Head{}, ErrTarget},
		{"connect no port", "CONNECT orders HTTP/1.1\r\nHost: x\r\n\r\n", Head{}, ErrTarget},
		{"expect other", "POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", Head{}, ErrExpect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := scanAll([]byte(tc.head), Limits{})
			if tc.err != nil {
				if err != tc.err {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			tc.want.Len = len(tc.head)
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if _, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.head))); err != nil {
				t.Errorf("net/http refuses what h1parse accepts: %v", err)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	lim := Limits{MaxHeaderBytes: 1000, MaxHeaders: 5}
	head := func(fields int, pad int) []byte {
		var b bytes.Buffer
		b.WriteString("GET / HTTP/1.1\r\nHost: x\r\n")
		for i := 1; i < fields; i++ {
			b.WriteString("X-A: b\r\n")
		}
		if pad > 0 {
			b.WriteString("X-P: " + strings.Repeat("p", pad) + "\r\n")
		}
		b.WriteString("\r\n")
		return b.Bytes()
	}
	if _, err := scanAll(head(5, 0), lim); err != nil {
		t.Errorf("5 fields: %v", err)
	}
	if _, err := scanAll(head(6, 0), lim); err != ErrTooManyHeaders {
		t.Errorf("6 fields: %v, want %v", err, ErrTooManyHeaders)
	}
	base := len(head(1, 1)) - 1
	if _, err := scanAll(head(1, 1000-base), lim); err != nil {
		t.Errorf("head of exactly the limit: %v", err)
	}
	if _, err := scanAll(head(1, 1001-base), lim); err != ErrHeadTooLarge {
		t.Errorf("head one byte over: %v, want %v", err, ErrHeadTooLarge)
	}
	// An unterminated head is refused as soon as it reaches the limit.
	var s Scanner
	if _, err := s.Scan(bytes.Repeat([]byte("a"), 1000), lim); err != ErrRequestLine && err != ErrHeadTooLarge {
		t.Errorf("unterminated: %v", err)
	}
	s.Reset()
	b := append([]byte("GET / HTTP/1.1\r\nX-A: "), bytes.Repeat([]byte("a"), 1000)...)
	if _, err := s.Scan(b, lim); err != ErrHeadTooLarge {
		t.Errorf("unterminated field: %v, want %v", err, ErrHeadTooLarge)
	}
}

// TestScanIncremental: a head fed one byte at a time is found at the same
// place, and a bad request line is refused when its line ends.
func TestScanIncremental(t *testing.T) {
	head := []byte("GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\r\nNEXT")
	var s Scanner
	for i := 1; i <= len(head); i++ {
		n, err := s.Scan(head[:i], Limits{})
		if err != nil {
			t.Fatalf("at %d: %v", i, err)
		}
		if n != 0 {
			if n != len(head)-4 || i != n {
				t.Fatalf("head end %d found at %d, want %d", n, i, len(head)-4)
			}
			break
		}
	}
	s.Reset()
	bad := []byte("GET /\r\n")
	if _, err := s.Scan(bad, Limits{}); err != ErrRequestLine {
		t.Fatalf("short request line: %v, want %v at once", err, ErrRequestLine)
	}
}

func TestChunked(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		done       bool
		err        error
	}{
		{"whole", "5\r\nhello\r\n0\r\n\r\n", true, nil},
		{"ext and trailer", "5;a=b\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: v\r\n\r\n", true, nil},
		{"partial size", "5", false, nil},
		{"partial line", "5\r", false, nil},
		{"partial data", "5\r\nhel", false, nil},
		{"partial after data", "5\r\nhello\r", false, nil},
		{"partial trailer", "0\r\nX-T: v", false, nil},
		{"empty", "", false, nil},
		{"bad size", "zz\r\nhello\r\n0\r\n\r\n", false, ErrChunkSize},
		{"bad size partial", "z", false, ErrChunkSize},
		{"size then space", "5 \r\nhello\r\n0\r\n\r\n", false, ErrChunkSize},
		{"negative", "-5\r\nhello\r\n0\r\n\r\n", false, ErrChunkSize},
		{"too large", "fffffffffffffffff\r\n", false, ErrChunkSize},
		{"bare LF size", "5\nhello\r\n0\r\n\r\n", false, ErrChunkSize},
		{"no CRLF after data", "5\r\nhelloXX0\r\n\r\n", false, ErrChunkData},
		{"LF only after data", "5\r\nhello\n0\r\n\r\n", false, ErrChunkData},
		{"oversize line", strings.Repeat("0", MaxChunkLine+1), false, ErrChunkLineTooLong},
		{"oversize ext", "5;" + strings.Repeat("a", MaxChunkLine) + "\r\n", false, ErrChunkLineTooLong},
		{"ext control", "5;a\x00\r\nhello\r\n0\r\n\r\n", false, ErrChunkSize},
		{"bad trailer", "0\r\nX-T : v\r\n\r\n", false, ErrTrailer},
		{"bare LF trailer end", "0\r\n\n", false, ErrTrailer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done, err := CheckChunked([]byte(tc.body))
			if err != tc.err || done != tc.done {
				t.Fatalf("CheckChunked = %v, %v; want %v, %v", done, err, tc.done, tc.err)
			}
		})
	}
}

// FuzzHead checks the scanner against itself (whole and byte by byte) and
// against net/http's parser: every head h1parse accepts, net/http accepts
// with the same body framing.
func FuzzHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST http://orders/x HTTP/1.1\r\nHost: orders\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Scanner
		n, err := s.Scan(b, Limits{})
		// Byte by byte finds the same end or the same refusal.
		var s2 Scanner
		n2, err2 := 0, error(nil)
		for i := 1; i <= len(b) && n2 == 0 && err2 == nil; i++ {
			n2, err2 = s2.Scan(b[:i], Limits{})
		}
		if n != n2 || err != err2 {
			t.Fatalf("whole: %d %v; byte by byte: %d %v", n, err, n2, err2)
		}
		if err != nil || n == 0 {
			return
		}
		h, err := Parse(b[:n], Limits{})
		if err != nil {
			return
		}
		if h.H2Preface {
			return
		}
		req, rerr := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:n])))
		if rerr != nil {
			t.Fatalf("h1parse accepts %q, net/http refuses it: %v", b[:n], rerr)
		}
		switch {
		case h.Chunked:
			if len(req.TransferEncoding) != 1 || req.TransferEncoding[0] != "chunked" {
				t.Fatalf("%q: h1parse chunked, net/http %v", b[:n], req.TransferEncoding)
			}
		case h.ContentLength >= 0:
			if req.ContentLength != h.ContentLength {
				t.Fatalf("%q: h1parse length %d, net/http %d", b[:n], h.ContentLength, req.ContentLength)
			}
		default:
			if req.ContentLength != 0 || len(req.TransferEncoding) != 0 {
				t.Fatalf("%q: h1parse no body, net/http %d %v", b[:n], req.ContentLength, req.TransferEncoding)
			}
		}
	})
}

func BenchmarkScanParse(b *testing.B) {
	for _, tc := range []struct{ name, head string }{
		{"small", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"typical", "GET http://orders/api/v1/items?id=7 HTTP/1.1\r\nHost: orders\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nX-Request-Id: 4f1c2a9e-5d7b-4c1e-9a3f-2b8d6e0f1a7c\r\n\r\n"},
		{"cookies-2k", "GET / HTTP/1.1\r\nHost: x\r\nCookie: " + strings.Repeat("k=v; ", 400) + "\r\n\r\n"},
	} {
		head := []byte(tc.head)
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(head)))
			b.ReportAllocs()
			var s Scanner
			for b.Loop() {
				s.Reset()
				n, err := s.Scan(head, Limits{})
				if err != nil || n == 0 {
					b.Fatal(n, err)
				}
				if _, err := Parse(head[:n], Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzChunked checks CheckChunked against net/http's chunked decoder: a
// body h1parse finds complete and well-formed, net/http decodes without
// error; and a prefix of a body never gets a verdict the whole body
// contradicts.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{"5\r\nhello\r\n0\r\n\r\n", "5;a=b\r\nhello\r\n0\r\nX-T: v\r\n\r\n", "zz\r\n", "5\r\nhelloXX"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		done, err := CheckChunked(b)
		for i := range len(b) {
			pdone, perr := CheckChunked(b[:i])
			if perr != nil && err == nil {
				t.Fatalf("prefix %q refused (%v), whole %q accepted", b[:i], perr, b)
			}
			if pdone && (!done || err != nil) {
				t.Fatalf("prefix %q complete, whole %q not", b[:i], b)
			}
		}
		if !done || err != nil {
			return
		}
		head := "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		req, rerr := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(head), bytes.NewReader(b))))
		if rerr != nil {
			t.Fatal(rerr)
		}
		if _, rerr := io.ReadAll(req.Body); rerr != nil {
			t.Fatalf("h1parse accepts chunked body %q, net/http: %v", b, rerr)
		}
	})
}
