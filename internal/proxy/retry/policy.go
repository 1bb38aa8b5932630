// Package retry decides whether a failed attempt of a mesh request is sent
// again: a compiled, immutable Policy (how many retries, on which outcomes,
// with what backoff) built once per config push, a long-lived per-destination
// Budget that caps the extra load retries add, and a Body that keeps a
// request body replayable while it stays small. The attempt loop itself is
// outbound's (outbound/retry.go); this package holds no request state.
package retry

import (
	"math/rand/v2"
	"time"
)

// Condition is a set of outcome classes a Policy retries.
type Condition uint16

// Retry conditions; the names are those of DestinationPolicy retryOn.
const (
	// On5xx retries any 5xx response (and a per-try timeout, a 504).
	On5xx Condition = 1 << iota
	// OnGatewayError retries 502, 503 and 504.
	OnGatewayError
	// OnReset retries a request whose connection was reset (or refused
	// the stream) before any byte of the response.
	OnReset
	// OnConnectFailure retries a request whose connection could not be
	// established: nothing was sent.
	OnConnectFailure
	// OnRetriable4xx retries 409 Conflict.
	OnRetriable4xx
	// OnPerTryTimeout retries an attempt its per-try (backendRequest)
	// timeout ended; On5xx and OnGatewayError imply it.
	OnPerTryTimeout
)

// Reason says why an attempt is retried; it labels the retry metrics, so it
// takes few values.
type Reason uint8

// Retry reasons.
const (
	NoRetry Reason = iota
	ReasonConnectFailure
	ReasonReset
	ReasonStatus
	ReasonGRPC
	ReasonPerTryTimeout
)

var reasonNames = [...]string{"", "connect-failure", "reset", "status", "grpc-status", "backend-request-timeout"}

// String is the metrics label of r.
func (r Reason) String() string { return reasonNames[r] }

// Failure classifies how an attempt failed without a usable response.
type Failure uint8

// Attempt failures the caller classifies from transport errors.
const (
	// NoFailure: the attempt got a response (see Outcome.Status).
	NoFailure Failure = iota
	// ConnectFailure: the connection could not be established.
	ConnectFailure
	// Reset: the connection or stream ended before any response byte.
	Reset
	// PerTryTimeout: the attempt's own timeout (backendRequest) passed.
	PerTryTimeout
	// OtherFailure is never retried (e.g. the request's own deadline).
	OtherFailure
)

// Outcome is the result of one attempt as a Policy sees it.
type Outcome struct {
	Failure Failure
	// Status is the HTTP status of the response when Failure is NoFailure.
	Status int
	// GRPC is the grpc-status of a trailers-only gRPC response, or -1.
	GRPC int
}

// MaxAttempts bounds Policy.Attempts (the API's limit).
const MaxAttempts = 10

// DefaultMaxBufferedBody is how much of a request body is kept for replay
// unless a DestinationPolicy says otherwise.
const DefaultMaxBufferedBody = 64 << 10

// Policy is a compiled retry policy. The zero Policy never retries. It is
// immutable once built.
type Policy struct {
	// Attempts is the most retries after the first attempt.
	Attempts int
	// On are the outcome classes retried.
	On Condition
	// codes are the HTTP statuses 400-599 retried, a bit each.
	codes [4]uint64
	// grpc are the gRPC status codes (0-16) retried, a bit each.
	grpc uint32
	// Backoff is the minimum wait before a retry; each further retry
	// doubles it (capped at 10 times), jittered up to +50%. Zero retries
	// at once.
	Backoff time.Duration
	// PerTry bounds each attempt; zero means only the request's own
	// deadline bounds it.
	PerTry time.Duration
	// IdempotentOnly limits retries on a response (statuses, gRPC codes,
	// per-try timeouts) to requests that are safe to repeat; a connect
	// failure or a reset before any response byte is retried for every
	// method (the request was not processed).
	IdempotentOnly bool
	// MaxBufferedBody is how many bytes of a request body are kept for
	// replay; a longer body is streamed and not retried after any of it
	// was sent.
	MaxBufferedBody int64
}

// Default is the policy of a destination without DestinationPolicy retry
// and of a route without retry: two retries on another endpoint, on a
// connect failure or reset for every method and on any 5xx (or a
// backendRequest timeout) for requests safe to repeat, 10 ms backoff.
var Default = Policy{
	Attempts:        2,
	On:              On5xx | OnReset | OnConnectFailure,
	Backoff:         10 * time.Millisecond,
	IdempotentOnly:  true,
	MaxBufferedBody: DefaultMaxBufferedBody,
}

// DefaultOff is the default policy with MeshConfig defaults.retry
// enabled false: only requests that were not processed are retried.
var DefaultOff = Policy{
	Attempts:        2,
	On:              OnReset | OnConnectFailure,
	Backoff:         10 * time.Millisecond,
	MaxBufferedBody: DefaultMaxBufferedBody,
}

// AddCode makes HTTP status code (400-599) retryable; other codes are
// ignored (validation refuses them before).
func (p *Policy) AddCode(code int) {
	if code >= 400 && code <= 599 {
		c := code - 400
		p.codes[c/64] |= 1 << (c % 64)
	}
}

// AddGRPC makes gRPC status code (0-16) retryable.
func (p *Policy) AddGRPC(code int) {
	if code >= 0 && code <= 16 {
		p.grpc |= 1 << code
	}
}

// Enabled reports whether p retries anything.
func (p *Policy) Enabled() bool { return p.Attempts > 0 }

// statusRetryable reports whether p retries HTTP status s.
func (p *Policy) statusRetryable(s int) bool {
	switch {
	case s >= 400 && s <= 599 && p.codes[(s-400)/64]&(1<<((s-400)%64)) != 0:
		return true
	case s >= 500 && p.On&On5xx != 0:
		return true
	case (s == 502 || s == 503 || s == 504) && p.On&OnGatewayError != 0:
		return true
	case s == 409 && p.On&OnRetriable4xx != 0:
		return true
	}
	return false
}

// Decide reports why the attempt that ended with o should be retried, or
// NoRetry. retried is how many retries were already made; idempotent says
// whether the request is safe to repeat.
func (p *Policy) Decide(o Outcome, retried int, idempotent bool) Reason {
	if retried >= p.Attempts {
		return NoRetry
	}
	switch o.Failure {
	case ConnectFailure:
		if p.On&OnConnectFailure != 0 {
			return ReasonConnectFailure
		}
		return NoRetry
	case Reset:
		if p.On&OnReset != 0 {
			return ReasonReset
		}
		return NoRetry
	case OtherFailure:
		return NoRetry
	}
	if p.IdempotentOnly && !idempotent {
		return NoRetry
	}
	if o.Failure == PerTryTimeout {
		if p.On&OnPerTryTimeout != 0 || p.statusRetryable(504) {
			return ReasonPerTryTimeout
		}
		return NoRetry
	}
	if o.GRPC > 0 && o.GRPC <= 16 && p.grpc&(1<<o.GRPC) != 0 {
		return ReasonGRPC
	}
	if p.statusRetryable(o.Status) {
		return ReasonStatus
	}
	return NoRetry
}

// Wait is the backoff before retry number n (1 for the first retry).
func (p *Policy) Wait(n int) time.Duration {
	if p.Backoff <= 0 {
		return 0
	}
	d := p.Backoff
	for i := 1; i < n && d < 10*p.Backoff; i++ {
		d *= 2
	}
	d = min(d, 10*p.Backoff)
	// GEP-1731: never sooner than the configured backoff; jitter only adds.
	return d + time.Duration(rand.Int64N(int64(d)/2+1))
}

// ParseGRPCStatus parses a grpc-status header value ("0" to "16"); it
// returns -1 for anything else.
func ParseGRPCStatus(v string) int {
	switch len(v) {
	case 1:
		if v[0] >= '0' && v[0] <= '9' {
			return int(v[0] - '0')
		}
	case 2:
		if v[0] == '1' && v[1] >= '0' && v[1] <= '6' {
			return 10 + int(v[1]-'0')
		}
	}
	return -1
}
