package h1parse

import "bytes"

// MaxChunkLine is the longest chunk-size line (with extensions) accepted,
// as in net/http.
const MaxChunkLine = 4096

// maxChunkSize bounds one chunk's size so that it fits an int64 with room.
const maxChunkSize = 1 << 62

// CheckChunked checks the framing of a chunked request body (RFC 9112
// §7.1) as far as it is in b, the body bytes received so far, so that a
// malformed body is refused before its request is forwarded. It reports
// whether b holds the whole body; a body that is only partly in b is
// checked by the decoder that reads it (net/http's), which refuses the same
// framing errors.
func CheckChunked(b []byte) (bool, error) {
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(b) > MaxChunkLine {
				return false, ErrChunkLineTooLong
			}
			line := b
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if _, err := chunkLine(line, true); err != nil {
				return false, err
			}
			return false, nil
		}
		if i > MaxChunkLine {
			return false, ErrChunkLineTooLong
		}
		if i == 0 || b[i-1] != '\r' {
			return false, ErrChunkSize
		}
		size, err := chunkLine(b[:i-1], false)
		if err != nil {
			return false, err
		}
		b = b[i+1:]
		if size == 0 {
			return trailers(b)
		}
		if uint64(len(b)) < size+2 {
			if uint64(len(b)) == size+1 && b[size] != '\r' {
				return false, ErrChunkData
			}
			return false, nil
		}
		if b[size] != '\r' || b[size+1] != '\n' {
			return false, ErrChunkData
		}
		b = b[size+2:]
	}
}

// chunkLine checks chunk-size [ chunk-ext ] and returns the size; partial
// accepts a line still being received (possibly empty).
func chunkLine(line []byte, partial bool) (uint64, error) {
	var size uint64
	digits := 0
	for ; digits < len(line); digits++ {
		v, ok := hexVal(line[digits])
		if !ok {
			break
		}
		size = size<<4 | uint64(v)
		if size > maxChunkSize || digits >= 16 {
			return 0, ErrChunkSize
		}
	}
	if digits == 0 && !(partial && len(line) == 0) {
		return 0, ErrChunkSize
	}
	rest := line[digits:]
	if len(rest) == 0 {
		return size, nil
	}
	// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ): only
	// its bytes are checked; weft ignores extensions.
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	if len(rest) == 0 {
		if partial {
			return size, nil
		}
		return 0, ErrChunkSize
	}
	if rest[0] != ';' {
		return 0, ErrChunkSize
	}
	for _, c := range rest {
		if !valueByte[c] {
			return 0, ErrChunkSize
		}
	}
	return size, nil
}

// trailers checks the trailer section after the last chunk.
func trailers(b []byte) (bool, error) {
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(b) > MaxChunkLine {
				return false, ErrTrailer
			}
			return false, nil
		}
		if i == 0 || b[i-1] != '\r' {
			return false, ErrTrailer
		}
		line := b[:i-1]
		if len(line) == 0 {
			return true, nil
		}
		if _, _, err := field(line); err != nil {
			return false, ErrTrailer
		}
		b = b[i+1:]
	}
}

func hexVal(c byte) (byte, bool) {
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
