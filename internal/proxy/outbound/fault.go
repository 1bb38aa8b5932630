package outbound

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/fault"
	"weft.dev/weft/internal/proxy/upstream"
)

// injectFault carries out route's fault injection for request r to
// destination service dest: it waits out an injected delay (ending early
// when ctx — the request's, bounded by the route timeout — ends) and
// answers an injected abort. It reports whether it answered the request
// (or the client went away), in which case the caller stops.
//
// The route's fault applies first, then the one of b, the backend picked.
func (l *Listener) injectFault(ctx context.Context, w http.ResponseWriter, r *http.Request, route *config.Route, b *config.Backend, dest string) bool {
	if route.Fault != nil && l.injectOne(ctx, w, r, route, route.Fault, dest) {
		return true
	}
	if bf := route.BackendFault(b); bf != nil && bf.Fault != nil {
		return l.injectOne(ctx, w, r, route, bf.Fault, dest)
	}
	return false
}

// injectOne carries out fault f of route (see injectFault).
func (l *Listener) injectOne(ctx context.Context, w http.ResponseWriter, r *http.Request, route *config.Route, f *fault.Fault, dest string) bool {
	d := f.Decide(r, rand.Uint32N)
	if d.Delay > 0 {
		l.opts.Metrics.FaultInjected(dest, route.Name, "delay")
		t := time.NewTimer(d.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				upstream.WriteError(w, r, http.StatusGatewayTimeout, fmt.Sprintf("weft: route %q timed out during a delay injected by FaultInjection %s", route.Name, f.Name))
			}
			return true
		}
	}
	if !d.Abort {
		return false
	}
	l.opts.Metrics.FaultInjected(dest, route.Name, "abort")
	msg := "weft: fault injected by FaultInjection " + f.Name
	h := w.Header()
	h.Set("X-Weft-Reason", fault.Reason)
	if f.GRPCStatus != 0 && upstream.IsGRPC(r) {
		// Trailers-only: the status travels in the headers of an empty 200.
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(f.GRPCStatus))
		h.Set("Grpc-Message", msg)
		w.WriteHeader(http.StatusOK)
		return true
	}
	upstream.WriteError(w, r, f.AbortHTTPStatus(), msg)
	return true
}
