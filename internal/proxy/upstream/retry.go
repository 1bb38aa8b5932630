package upstream

import (
	"errors"
	"net/http"
)

// ErrNoResponse marks a request that failed before any byte of its response
// arrived, and that is safe to send again: it has no body and an idempotent
// method (GET, HEAD, OPTIONS, TRACE) or an Idempotency-Key header — the rule
// net/http.Transport applies to a dead pooled connection. The H1Transport
// has already retried it once on a fresh connection to the same
// destination when the first attempt was on a pooled one; the caller may
// send it to another endpoint (outbound's attempt loop, retry reason
// "reset").
var ErrNoResponse = errors.New("no response from the destination for a request that is safe to retry")

// Idempotent reports whether req may be sent twice, by its method or an
// idempotency key, as net/http.Transport decides: PUT and DELETE are
// idempotent by RFC 9110 §9.2.2 but, as there, are not repeated.
func Idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	if !ok {
		_, ok = req.Header["X-Idempotency-Key"]
	}
	return ok
}
