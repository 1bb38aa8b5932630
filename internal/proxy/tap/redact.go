package tap

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Redacted replaces every sensitive value.
const Redacted = "[REDACTED]"

// sensitiveWords mark a header, JSON field or form field as sensitive
// when its lowercased name contains one of them.
var sensitiveWords = []string{"authorization", "cookie", "password", "passwd", "token", "secret", "api-key", "api_key", "apikey", "credential", "session", "x-forwarded-client-cert"}

// Sensitive reports whether a header or field name is sensitive.
func Sensitive(name string) bool {
	n := strings.ToLower(name)
	for _, w := range sensitiveWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// RedactHeader returns a copy of h with the values of sensitive headers
// replaced.
func RedactHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		if Sensitive(k) {
			out[k] = []string{Redacted}
			continue
		}
		out[k] = append([]string(nil), v...)
	}
	return out
}

var (
	// jsonPair is a "name": value pair of (possibly truncated) JSON.
	jsonPair = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"(\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]\s]+)`)
	// formPair is a name=value pair of a form or query string.
	formPair = regexp.MustCompile(`([A-Za-z0-9_.\-\[\]]+)=([^&\s]*)`)
)

// RedactBody returns the start of a body, b, as text with the values of
// sensitive fields replaced: a complete JSON document field by field (at
// any depth; a sensitive field's whole value, object or not, goes), a form
// by its fields, anything else (truncated JSON among it) by pattern for
// "name": value and name=value pairs. A body that is not UTF-8 text
// (protobuf, images) is not shown, only its size.
func RedactBody(contentType string, b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if !utf8.Valid(b) {
		if t := trimPartialRune(b); utf8.Valid(t) {
			b = t
		} else {
			return "[binary body, " + strconv.Itoa(len(b)) + " bytes not shown]"
		}
	}
	var doc any
	if json.Unmarshal(b, &doc) == nil {
		out, err := json.Marshal(redactJSON(doc))
		if err == nil {
			return string(out)
		}
	}
	if strings.HasPrefix(contentType, "application/x-www-form-urlencoded") {
		if vs, err := url.ParseQuery(string(b)); err == nil {
			for k := range vs {
				if Sensitive(k) {
					vs[k] = []string{Redacted}
				}
			}
			return vs.Encode()
		}
	}
	s := jsonPair.ReplaceAllStringFunc(string(b), func(m string) string {
		p := jsonPair.FindStringSubmatch(m)
		if !Sensitive(p[1]) {
			return m
		}
		return `"` + p[1] + `"` + p[2] + `"` + Redacted + `"`
	})
	return formPair.ReplaceAllStringFunc(s, func(m string) string {
		p := formPair.FindStringSubmatch(m)
		if !Sensitive(p[1]) {
			return m
		}
		return p[1] + "=" + Redacted
	})
}

func redactJSON(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if Sensitive(k) {
				t[k] = Redacted
				continue
			}
			t[k] = redactJSON(x)
		}
	case []any:
		for i, x := range t {
			t[i] = redactJSON(x)
		}
	}
	return v
}

// trimPartialRune drops a UTF-8 sequence cut by truncation at the end.
func trimPartialRune(b []byte) []byte {
	for i := 0; i < utf8.UTFMax && i < len(b); i++ {
		if utf8.RuneStart(b[len(b)-1-i]) {
			return b[:len(b)-1-i]
		}
	}
	return b
}
