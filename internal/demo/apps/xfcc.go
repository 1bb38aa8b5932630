package apps

import "strings"

// XFCCHeader is the header (and gRPC metadata key) in which the sidecar
// reports the caller's certificate, in Envoy's x-forwarded-client-cert format.
const XFCCHeader = "x-forwarded-client-cert"

// CallerFromXFCC returns the caller's SPIFFE ID from an Envoy-format
// x-forwarded-client-cert value such as
//
//	By=spiffe://weft.local/ns/default/sa/backend;Hash=...;URI=spiffe://weft.local/ns/default/sa/frontend
//
// The value may hold several comma-separated elements, one per proxy hop; the
// last one was added by the proxy nearest to this app, so its URI is the
// direct caller. Values may be double-quoted (with \" escapes). It returns ""
// when there is no spiffe:// URI.
func CallerFromXFCC(v string) string {
	elems := splitQuoted(v, ',')
	if len(elems) == 0 {
		return ""
	}
	for _, kv := range splitQuoted(elems[len(elems)-1], ';') {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "URI") {
			continue
		}
		val = unquote(strings.TrimSpace(val))
		if strings.HasPrefix(val, "spiffe://") {
			return val
		}
	}
	return ""
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	inQuote, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case c == '\\' && inQuote:
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case c == sep && !inQuote:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// unquote strips surrounding double quotes and \" / \\ escapes.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
