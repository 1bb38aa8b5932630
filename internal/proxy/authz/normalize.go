package authz

import (
	"errors"
	"strings"
)

// ErrBadPath is returned by NormalizePath for a path it refuses to
// evaluate (the inbound answers 400).
var ErrBadPath = errors.New("path has an invalid or NUL percent-escape")

// ErrFragment is the inbound's refusal of a request-target with a
// fragment ("#"), which RFC 9112 does not allow.
var ErrFragment = errors.New("request target has a fragment")

// NormalizePath returns the path policies are evaluated against and the
// inbound forwards, like Istio's DECODE_AND_MERGE_SLASHES with RFC 3986
// normalisation: the fragment ("#...") is dropped, every percent-escape is
// decoded (so "%2F" is "/", "%5C" is "\", "%2e%2e" is ".."), "\" becomes
// "/", path parameters (";..." up to the next "/") are dropped, runs of
// "/" merge into one and "." and ".." segments are resolved (".." never
// climbs above the root). The result starts with "/". A "%00" or a
// malformed escape is refused. The query is not part of the path.
func NormalizePath(p string) (string, error) {
	if i := strings.IndexByte(p, '#'); i >= 0 {
		p = p[:i]
	}
	if !needsNormalizing(p) {
		return p, nil
	}
	var b strings.Builder
	b.Grow(len(p) + 1)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			if i+2 >= len(p) {
				return "", ErrBadPath
			}
			h, ok1 := unhex(p[i+1])
			l, ok2 := unhex(p[i+2])
			if !ok1 || !ok2 || h == 0 && l == 0 {
				return "", ErrBadPath
			}
			c = h<<4 | l
			i += 2
		}
		if c == '\\' {
			c = '/'
		}
		b.WriteByte(c)
	}
	decoded := b.String()
	// Segments: drop ";params", merge slashes, resolve dot segments.
	segs := make([]string, 0, 8)
	trailing := strings.HasSuffix(decoded, "/")
	for _, seg := range strings.Split(decoded, "/") {
		if j := strings.IndexByte(seg, ';'); j >= 0 {
			seg = seg[:j]
		}
		switch seg {
		case "", ".":
			continue
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
			continue
		}
		segs = append(segs, seg)
	}
	last := ""
	if n := strings.LastIndexByte(decoded, '/'); n >= 0 {
		last = decoded[n+1:]
		if j := strings.IndexByte(last, ';'); j >= 0 {
			last = last[:j]
		}
	}
	out := "/" + strings.Join(segs, "/")
	if len(segs) > 0 && (trailing || last == "." || last == "..") {
		out += "/"
	}
	return out, nil
}

// needsNormalizing reports whether p is already in normal form: starts
// with "/" and has no "%", "\", ";", "//" nor dot segment.
func needsNormalizing(p string) bool {
	if p == "" || p[0] != '/' {
		return true
	}
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%', '\\', ';':
			return true
		case '/':
			if i+1 < len(p) && p[i+1] == '/' {
				return true
			}
		case '.':
			if p[i-1] == '/' && (i+1 == len(p) || p[i+1] == '/' || p[i+1] == '.' && (i+2 == len(p) || p[i+2] == '/')) {
				return true
			}
		}
	}
	return false
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// NormalizeHost returns host (an authority) in lowercase without port nor
// trailing dot, and the port (0 if none or not a number).
func NormalizeHost(host string) (string, uint32) {
	var port uint32
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		for _, c := range host[i+1:] {
			if c < '0' || c > '9' || port > 65535 {
				port = 0
				break
			}
			port = port*10 + uint32(c-'0')
		}
		host = host[:i]
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host, port
}
