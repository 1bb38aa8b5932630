// Package tapwire is the wire format of a proxy's live tap stream (its
// admin endpoint /tap, NDJSON, one Event per line): the Event, the Filter a
// subscriber asks with, and Stream, the client the CLI (weft tap) and the
// control plane's dashboard read it with. It depends on nothing of the
// proxy, so the control plane may import it.
package tapwire

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Event is one request as a proxy saw it. Side is "client" for the
// outbound listener (the caller's proxy) and "server" for the inbound one.
type Event struct {
	Time           time.Time  `json:"time"`
	Side           string     `json:"side"`
	RequestID      string     `json:"requestId,omitempty"`
	Source         string     `json:"source"`
	SourceIdentity string     `json:"sourceIdentity,omitempty"`
	Destination    string     `json:"destination"`
	Endpoint       string     `json:"endpoint,omitempty"`
	Method         string     `json:"method"`
	Authority      string     `json:"authority"`
	Path           string     `json:"path"`
	Status         int        `json:"status"`
	GRPCStatus     string     `json:"grpcStatus,omitempty"`
	Duration       Millis     `json:"latencyMs"`
	RequestBytes   int64      `json:"requestBytes"`
	ResponseBytes  int64      `json:"responseBytes"`
	Route          string     `json:"route,omitempty"`
	TLS            bool       `json:"tls"`
	Decisions      []Decision `json:"decisions,omitempty"`
	// Bodies is set only for a tap subscriber that asked for bodies, of a
	// service that opted in (see package tap); redacted.
	Bodies *Bodies `json:"bodies,omitempty"`
}

// Millis is a duration that encodes in JSON as fractional milliseconds.
type Millis time.Duration

// MarshalJSON implements json.Marshaler.
func (m Millis) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(m)/1e6, 'f', 3, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (m *Millis) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	*m = Millis(f * 1e6)
	return nil
}

// Decision is one decision a stage took for a request: the stage ("route",
// "retry", "outlier", "authz", ...) and what it decided, in words.
type Decision struct {
	Stage  string `json:"stage"`
	Detail string `json:"detail"`
}

// Bodies are the first bytes of a request's and its response's bodies,
// with their headers, after redaction.
type Bodies struct {
	RequestHeaders  http.Header `json:"requestHeaders,omitempty"`
	Request         string      `json:"request"`
	RequestTrunc    bool        `json:"requestTruncated,omitempty"`
	ResponseHeaders http.Header `json:"responseHeaders,omitempty"`
	Response        string      `json:"response"`
	ResponseTrunc   bool        `json:"responseTruncated,omitempty"`
}

// Filter selects the events a subscriber gets; zero fields match all.
type Filter struct {
	// Path is a path prefix.
	Path string
	// Method matches case-insensitively.
	Method string
	// Status is a code ("503") or a class ("5xx").
	Status string
	// Bodies asks for request and response bodies, which only services
	// that opted in (annotation weft.dev/tap-bodies: "true") provide.
	Bodies bool
}

// ParseFilter reads a Filter from /tap's query: path, method, status and
// bodies (true or false).
func ParseFilter(q url.Values) (Filter, error) {
	f := Filter{Path: q.Get("path"), Method: strings.ToUpper(q.Get("method")), Status: strings.ToLower(q.Get("status"))}
	if f.Path != "" && !strings.HasPrefix(f.Path, "/") {
		return Filter{}, fmt.Errorf("path: %q must start with /", f.Path)
	}
	if s := f.Status; s != "" {
		ok := len(s) == 3 && s[0] >= '1' && s[0] <= '5'
		if ok && s[1:] != "xx" {
			_, err := strconv.Atoi(s)
			ok = err == nil
		}
		if !ok {
			return Filter{}, fmt.Errorf("status: %q is neither a status code (503) nor a class (5xx)", s)
		}
	}
	if b := q.Get("bodies"); b != "" {
		v, err := strconv.ParseBool(b)
		if err != nil {
			return Filter{}, fmt.Errorf("bodies: %q is not true or false", b)
		}
		f.Bodies = v
	}
	return f, nil
}

// Match reports whether e passes f.
func (f Filter) Match(e *Event) bool {
	if f.Path != "" && !strings.HasPrefix(e.Path, f.Path) {
		return false
	}
	if f.Method != "" && f.Method != e.Method {
		return false
	}
	if s := f.Status; s != "" {
		code := strconv.Itoa(e.Status)
		if s[1:] == "xx" {
			return len(code) == 3 && code[0] == s[0]
		}
		return code == s
	}
	return true
}
