package outbound

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"weft.dev/weft/internal/proxy/adaptive"
	"weft.dev/weft/internal/proxy/breaker"
	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/upstream"
)

// ReasonHeader names the limit or mechanism behind a response weft made up
// on the data path instead of forwarding the request.
const ReasonHeader = "X-Weft-Reason"

// reasonAdaptive is the ReasonHeader of a request shed by adaptive
// concurrency.
const reasonAdaptive = "adaptive-concurrency"

// admission holds the long-lived state of the breaker and adaptive stages
// of each destination with limits, by service key: it outlives config
// pushes. Entries are made on a destination's first limited request and
// kept (a few words each) for the listener's life.
type admission struct{ dests sync.Map } // key -> *destAdmission

type destAdmission struct {
	breaker *breaker.Destination
	limiter atomic.Pointer[adaptive.Limiter] // made on first use
}

func (a *admission) get(key string) *destAdmission {
	if d, ok := a.dests.Load(key); ok {
		return d.(*destAdmission)
	}
	d, _ := a.dests.LoadOrStore(key, &destAdmission{breaker: breaker.NewDestination(key)})
	return d.(*destAdmission)
}

// adaptive returns the destination's limiter, made on first use.
func (d *destAdmission) adaptive(cfg *adaptive.Config) *adaptive.Limiter {
	if l := d.limiter.Load(); l != nil {
		return l
	}
	d.limiter.CompareAndSwap(nil, adaptive.New(cfg, nil))
	return d.limiter.Load()
}

// admitted is a request let through the breaker and adaptive stages; Done
// releases it once it ends.
type admitted struct {
	ticket  breaker.Ticket
	limiter *adaptive.Limiter
	token   adaptive.Token
}

// Done releases the request's slots and samples its latency.
func (a admitted) Done() {
	a.ticket.Done()
	if a.limiter != nil {
		a.limiter.Release(a.token)
	}
}

// admit runs the breaker (connectionPool) and adaptive concurrency stages
// for a request to destination key, before any endpoint is picked. A
// refused request has been answered 503 with ReasonHeader and counted;
// admit then reports false. The returned context carries the destination's
// connection gate when it limits connections (upstream.ConnGate). A
// destination without limits costs one map read.
func (l *Listener) admit(ctx context.Context, w http.ResponseWriter, r *http.Request, cfg *config.Config, key string) (context.Context, admitted, bool) {
	dst := cfg.Services[key]
	if dst == nil || dst.Breaker == nil && dst.Adaptive == nil {
		return ctx, admitted{}, true
	}
	d := l.admission.get(key)
	var a admitted
	if dst.Breaker != nil {
		t, err := d.breaker.Admit(ctx, dst.Breaker)
		if err != nil {
			l.writeRejection(w, r, err)
			return ctx, a, false
		}
		a.ticket = t
		if dst.Breaker.MaxConnections > 0 {
			ctx = context.WithValue(ctx, upstream.ConnGateKey{}, upstream.ConnGate(d.breaker))
		}
	}
	if dst.Adaptive != nil {
		lim := d.adaptive(dst.Adaptive)
		tok, ok := lim.Acquire(dst.Adaptive)
		if !ok {
			a.ticket.Done()
			l.opts.Metrics.ShedRequest(key)
			w.Header().Set(ReasonHeader, reasonAdaptive)
			upstream.WriteError(w, r, http.StatusServiceUnavailable, "weft: "+key+": shed by adaptive concurrency (limit "+strconv.FormatInt(lim.Limit(), 10)+")")
			return ctx, a, false
		}
		a.limiter, a.token = lim, tok
	}
	return ctx, a, true
}

// writeRejection answers a request refused by a connection limit — at
// admission, or when its connection could not be opened — with 503 and the
// limit's name, and counts it. It reports false when err is no rejection.
func (l *Listener) writeRejection(w http.ResponseWriter, r *http.Request, err error) bool {
	var rej *breaker.Rejection
	if !errors.As(err, &rej) {
		return false
	}
	l.opts.Metrics.BreakerRejection(rej.Destination, rej.Reason)
	w.Header().Set(ReasonHeader, rej.Reason)
	upstream.WriteError(w, r, http.StatusServiceUnavailable, rej.Error())
	return true
}
