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
func (l *Listener) injectFault(ctx context.Context, w http.ResponseWriter, r *http.Request, route *config.Route, dest string) bool {
	f := route.Fault
	if f == nil {
		return false
	}
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
