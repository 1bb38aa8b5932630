package outbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/observe"
	"weft.dev/weft/internal/proxy/retry"
	"weft.dev/weft/internal/proxy/upstream"
)

// timeoutError is a weft timeout: the cause of a timed-out context and the
// error of an attempt it ended. It is a context.DeadlineExceeded.
type timeoutError struct{ reason string }

func (e *timeoutError) Error() string { return e.reason }
func (e *timeoutError) Unwrap() error { return context.DeadlineExceeded }

// The timeouts of HTTPRoute rules; the reason is the x-weft-reason header of
// the 504 each produces.
var (
	errRequestTimeout        = &timeoutError{"request-timeout"}
	errBackendRequestTimeout = &timeoutError{"backend-request-timeout"}
)

// retryState is the retry stage's part of a request's reqState: the policy,
// budget and per-attempt timeout that apply to it.
type retryState struct {
	l      *Listener
	policy *retry.Policy
	budget *retry.Budget
	limits *retry.BudgetParams
	// perTry bounds each attempt (the route's backendRequest, else the
	// destination's perTryTimeout); zero means none.
	perTry    time.Duration
	bodyLimit int64
	route     string // for metrics
}

// retryFor returns the retry state of a request to destination key on
// route (nil for none), counting the request in the destination's budget.
func (l *Listener) retryFor(cfg *config.Config, route *config.Route, key string, now time.Time) retryState {
	dst := &config.DefaultRetry
	if s := cfg.Services[key]; s != nil {
		dst = &s.Retry
	}
	rs := retryState{l: l, policy: &dst.Policy, budget: l.budgets.For(key), limits: &dst.Budget,
		perTry: dst.Policy.PerTry, bodyLimit: dst.Policy.MaxBufferedBody}
	if route != nil {
		rs.route = route.Name
		if route.Retry != nil {
			rs.policy = route.Retry
		}
		if route.BackendTimeout > 0 {
			rs.perTry = route.BackendTimeout
		}
	}
	rs.budget.Request(now, rs.limits)
	return rs
}

// RoundTrip sends req to the leased endpoint and, while the request's retry
// policy and its destination's budget allow, sends it again to another
// endpoint after a failed attempt (retry.Policy.Decide): never after a
// response was returned (nothing reached the client before RoundTrip
// returns), and a request with a body only while the body is still
// replayable (retry.Body) or nothing of it was sent (a connect failure).
// Each attempt is bounded by the per-try timeout; the request's own
// deadline bounds them all, backoffs included.
func (t leaseTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st := req.Context().Value(stateKey{}).(*reqState)
	rs := &st.retry
	pol := rs.policy
	ctx := req.Context()
	idempotent := upstream.Idempotent(req)
	hasBody := req.Body != nil && req.Body != http.NoBody
	var body *retry.Body
	if hasBody && pol.Enabled() && (idempotent || !pol.IdempotentOnly) && rs.bodyLimit > 0 && req.ContentLength <= rs.bodyLimit {
		body = retry.NewBody(req.Body, rs.bodyLimit)
		req.Body = body.View()
	}
	held := false // a retry taken from the budget is in flight
	for n := 0; ; n++ {
		rt := st.lease.HTTP1()
		if t.h2 {
			rt = st.lease.HTTP2()
		}
		areq, cancel := req, context.CancelFunc(nil)
		if rs.perTry > 0 {
			actx, c := context.WithTimeoutCause(ctx, rs.perTry, errBackendRequestTimeout)
			areq, cancel = req.WithContext(actx), c
		}
		began := time.Now()
		resp, err := rt.RoundTrip(areq)
		o := outcome(resp, err, areq.Context(), ctx)
		st.lease.Observe(o.Status, err, time.Since(began)) // EWMA and outlier detection
		if held {
			rs.budget.Release()
			held = false
		}
		reason := pol.Decide(o, n, idempotent)
		if reason != retry.NoRetry && hasBody && o.Failure != retry.ConnectFailure && (body == nil || !body.Replayable()) {
			reason = retry.NoRetry // the body streamed: it cannot be sent again
		}
		if reason == retry.NoRetry {
			return finish(resp, err, o, cancel)
		}
		if !rs.budget.TryRetry(time.Now(), rs.limits) {
			rs.l.opts.Metrics.RetryBudgetExhausted(st.dest)
			observe.Note(ctx, "retry", "budget exhausted: not retried ("+reason.String()+" from "+st.lease.Endpoint.Address+")")
			return finish(resp, err, o, cancel)
		}
		held = true
		others := otherEndpoints(st.eps, st.lease.Endpoint.Address)
		next, perr := st.pool.Pick(st.dest, st.lb, others)
		if perr != nil {
			rs.budget.Release()
			return finish(resp, err, o, cancel)
		}
		observe.Note(ctx, "retry", reason.String()+" from "+st.lease.Endpoint.Address+": retry "+strconv.Itoa(n+1)+" on "+next.Endpoint.Address)
		discard(resp)
		if cancel != nil {
			cancel()
		}
		st.lease.Done()
		st.lease, st.eps = next, others
		if d := pol.Wait(n + 1); d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				rs.budget.Release()
				return nil, fmt.Errorf("waiting to retry: %w", context.Cause(ctx))
			}
		}
		rs.l.opts.Metrics.Retry(st.dest, rs.route, reason.String())
		req = req.Clone(ctx)
		req.URL.Host = next.Endpoint.Address
		if body != nil {
			req.Body = body.View()
		}
	}
}

// outcome classifies an attempt for the retry policy; actx is the
// attempt's context, ctx the request's.
func outcome(resp *http.Response, err error, actx, ctx context.Context) retry.Outcome {
	if err == nil {
		o := retry.Outcome{Status: resp.StatusCode, GRPC: -1}
		if v, ok := resp.Header["Grpc-Status"]; ok && len(v) > 0 {
			o.GRPC = retry.ParseGRPCStatus(v[0]) // a trailers-only response
		}
		return o
	}
	switch {
	case upstream.IsConnectError(err):
		return retry.Outcome{Failure: retry.ConnectFailure, GRPC: -1}
	case ctx.Err() != nil:
		return retry.Outcome{Failure: retry.OtherFailure, GRPC: -1}
	case actx != ctx && context.Cause(actx) == errBackendRequestTimeout:
		return retry.Outcome{Failure: retry.PerTryTimeout, GRPC: -1}
	case errors.Is(err, upstream.ErrNoResponse):
		return retry.Outcome{Failure: retry.Reset, GRPC: -1}
	}
	return retry.Outcome{Failure: retry.OtherFailure, GRPC: -1}
}

// finish returns an attempt's result: a per-try timeout as
// errBackendRequestTimeout, and a response whose body ends the attempt's
// context when closed.
func finish(resp *http.Response, err error, o retry.Outcome, cancel context.CancelFunc) (*http.Response, error) {
	if err != nil {
		if cancel != nil {
			cancel()
		}
		if o.Failure == retry.PerTryTimeout {
			return nil, fmt.Errorf("%w: %v", errBackendRequestTimeout, err)
		}
		return nil, err
	}
	if cancel != nil {
		resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	}
	return resp, nil
}

// cancelBody ends an attempt's context when its response body is closed:
// the per-try timeout covers the whole response.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// discard drops a response that will be retried, reading a little of it so
// that its connection may be reused.
func discard(resp *http.Response) {
	if resp == nil {
		return
	}
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// otherEndpoints is eps without the one at failed, or eps itself when it
// has no other.
func otherEndpoints(eps []config.Endpoint, failed string) []config.Endpoint {
	others := make([]config.Endpoint, 0, len(eps))
	for _, e := range eps {
		if e.Address != failed {
			others = append(others, e)
		}
	}
	if len(others) == 0 {
		return eps
	}
	return others
}

// markTimeout names, in the x-weft-reason header, the weft timeout that
// ended st's request with err, and counts it; a deadline of the caller's
// own (gRPC grpc-timeout) gets no reason.
func (l *Listener) markTimeout(w http.ResponseWriter, st *reqState, err error) {
	var te *timeoutError
	if !errors.As(err, &te) && !errors.As(context.Cause(st), &te) {
		return
	}
	w.Header().Set("X-Weft-Reason", te.reason)
	l.opts.Metrics.Timeout(st.dest, st.retry.route, strings.TrimSuffix(te.reason, "-timeout"))
}
