// Package fault is the fault-injection stage of the proxy's request path:
// a route's FaultInjection (weft.dev/v1alpha1, referenced by an ExtensionRef
// filter), compiled once from xDS into an immutable Fault, decides per
// request — with two cheap random draws and no lock — whether the request
// is delayed and whether it is aborted. The outbound listener carries the
// decision out (outbound/fault.go).
package fault

import (
	"net/http"
	"time"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Reason is the x-weft-reason header value of an injected abort.
const Reason = "fault-injected"

// Fault is one compiled FaultInjection. The zero value injects nothing.
type Fault struct {
	// Name is "<namespace>/<name>" of the FaultInjection.
	Name string
	// Delay and DelayShare: a share (parts per million) of the matching
	// requests is held back for Delay.
	Delay      time.Duration
	DelayShare uint32
	// HTTPStatus or GRPCStatus (exactly one is set when AbortShare is) is
	// what a share of the matching requests is answered with.
	HTTPStatus int
	GRPCStatus int
	AbortShare uint32
	headers    []header
}

type header struct{ name, value string }

// Compile compiles the fault of a route (validated by
// weftv1.ValidateService); nil for none.
func Compile(f *weftv1.FaultInjection) *Fault {
	if f == nil {
		return nil
	}
	out := &Fault{Name: f.GetName()}
	if d := f.GetDelay(); d != nil {
		out.Delay = time.Duration(d.GetDelayMs()) * time.Millisecond
		out.DelayShare = d.GetPerMillion()
	}
	if a := f.GetAbort(); a != nil {
		out.HTTPStatus, out.GRPCStatus = int(a.GetHttpStatus()), int(a.GetGrpcStatus())
		out.AbortShare = a.GetPerMillion()
	}
	for _, h := range f.GetHeaders() {
		out.headers = append(out.headers, header{http.CanonicalHeaderKey(h.GetName()), h.GetValue()})
	}
	return out
}

// Decision is what to do to one request.
type Decision struct {
	// Delay to wait before going on; 0 for none.
	Delay time.Duration
	// Abort the request (with the Fault's status) after the delay.
	Abort bool
}

// Decide draws the fault of request r. draw returns uniformly
// distributed numbers in [0, 1000000) (math/rand/v2's Uint32N in
// production); it is called at most twice.
func (f *Fault) Decide(r *http.Request, draw func(uint32) uint32) Decision {
	var d Decision
	if f == nil || !f.matches(r) {
		return d
	}
	if f.DelayShare > 0 && draw(weftv1.PerMillion) < f.DelayShare {
		d.Delay = f.Delay
	}
	if f.AbortShare > 0 && draw(weftv1.PerMillion) < f.AbortShare {
		d.Abort = true
	}
	return d
}

func (f *Fault) matches(r *http.Request) bool {
	for _, h := range f.headers {
		if r.Header.Get(h.name) != h.value {
			return false
		}
	}
	return true
}

// grpcToHTTP maps gRPC status codes to the HTTP status a plain HTTP
// request aborted with that gRPC status gets (the mapping of
// google.rpc.Code).
var grpcToHTTP = [...]int{
	1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429,
	9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
}

// AbortHTTPStatus is the HTTP status of an abort answered to a plain HTTP
// request.
func (f *Fault) AbortHTTPStatus() int {
	if f.HTTPStatus != 0 {
		return f.HTTPStatus
	}
	if f.GRPCStatus > 0 && f.GRPCStatus < len(grpcToHTTP) {
		return grpcToHTTP[f.GRPCStatus]
	}
	return http.StatusInternalServerError
}
