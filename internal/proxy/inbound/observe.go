package inbound

import (
	"net/http"
	"strings"
	"time"

	"weft.dev/weft/internal/proxy/accesslog"
	"weft.dev/weft/internal/proxy/observe"
	"weft.dev/weft/internal/proxy/tap"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/proxy/trace"
	"weft.dev/weft/internal/proxy/upstream"
)

// exchange observes one inbound request for metrics, the access log and
// tap (a value on ServeHTTP's stack: no allocation unless tapped).
type exchange struct {
	start    time.Time
	r        *http.Request
	sw       *upstream.StatusWriter
	peer     *peerInfo
	reqID    string
	reqBytes int64
	body     *observe.CountingBody
	mode     accesslog.Mode
	rec      *observe.Record
	capture  *tap.Capture
	span     *trace.Span
	route    string // routelabel.go
}

// observe starts observing *r: while the service's requests are logged or
// someone taps, the request ID (generated for a caller that sent none,
// e.g. a plaintext one) and, while someone taps, a
// decision record and, when a tap asked for bodies and the service opted
// in, a capture of the bodies. It returns the writer the request's
// response goes to.
func (l *Listener) observe(ex *exchange, r **http.Request, sw *upstream.StatusWriter, peer *peerInfo, start time.Time) http.ResponseWriter {
	req := *r
	*ex = exchange{start: start, sw: sw, peer: peer, reqBytes: req.ContentLength, route: l.routeLabel(req.Header, peer)}
	if req.ContentLength < 0 && req.Body != nil && req.Body != http.NoBody {
		ex.body = &observe.CountingBody{ReadCloser: req.Body}
		req.Body = ex.body
	}
	tapBodies := false
	if l.opts.Provider != nil {
		if s := l.opts.Provider.Load().Services[l.dest]; s != nil {
			ex.mode, tapBodies = s.AccessLog, s.TapBodies
		}
	}
	tapped := l.opts.Tap.Active()
	if tapped || ex.mode != accesslog.Off {
		ex.reqID = observe.RequestID(req.Header)
	}
	var w http.ResponseWriter = sw
	if tapped {
		ex.rec = &observe.Record{}
		req = req.WithContext(observe.WithRecord(req.Context(), ex.rec))
		if tapBodies && l.opts.Tap.WantBodies() {
			ex.capture = tap.NewCapture(req)
			w = ex.capture.Writer(sw)
		}
		*r = req
	}
	ex.span = l.opts.Tracer.Start(req, "server", l.dest, start)
	ex.r = req
	return w
}

// finish records the request once its response is sent.
func (l *Listener) finish(ex *exchange) {
	sw, peer := ex.sw, ex.peer
	d := time.Since(ex.start)
	lb := telemetry.RequestLabels{
		SourceService: peer.service, SourceNamespace: peer.namespace, SourceIdentity: peer.id,
		DestinationService: l.dest, DestinationNamespace: l.opts.Namespace, DestinationVersion: l.opts.Version,
		Method: ex.r.Method, Route: ex.route, Status: sw.Status, GRPCStatus: telemetry.GRPCStatus(sw.Header()), TLS: !peer.plaintext,
	}
	reqBytes := ex.reqBytes
	if ex.body != nil {
		reqBytes = ex.body.N()
	}
	l.opts.Metrics.ServerRequest(lb, d, reqBytes, sw.Bytes)
	ex.span.End(trace.Outcome{Status: lb.Status, GRPCStatus: lb.GRPCStatus, Route: lb.Route, Endpoint: l.appAddr,
		SourceService: lb.SourceService, SourceIdentity: lb.SourceIdentity, Failed: observe.Failed(lb.Status, lb.GRPCStatus)})
	logIt := l.opts.AccessLog != nil && ex.mode.Wants(observe.Failed(lb.Status, lb.GRPCStatus))
	if !logIt && ex.rec == nil {
		return
	}
	r := ex.r
	e := observe.Event{
		Time: ex.start, Side: "server", RequestID: ex.reqID,
		Source: lb.SourceService, SourceIdentity: lb.SourceIdentity, Destination: l.dest,
		Endpoint: l.appAddr, Method: r.Method, Authority: r.Host, Path: r.URL.Path,
		Status: lb.Status, GRPCStatus: lb.GRPCStatus, Duration: observe.Millis(d),
		RequestBytes: reqBytes, ResponseBytes: sw.Bytes, Route: lb.Route, TLS: lb.TLS,
	}
	if logIt {
		l.opts.AccessLog.Log(&e)
	}
	if ex.rec != nil {
		e.Decisions = ex.rec.Decisions()
		if reason := sw.Header().Get("X-Weft-Reason"); reason != "" {
			e.Decisions = append(e.Decisions, observe.Decision{Stage: "refused", Detail: reason})
		}
		if ex.capture != nil {
			e.Bodies = ex.capture.Bodies(sw.Header())
		}
		l.opts.Tap.Publish(&e)
	}
}

// peerService splits a mesh SPIFFE ID, spiffe://<td>/ns/<ns>/sa/<sa>,
// into the caller's service ("<sa>.<ns>": a weft workload's service
// account is its service) and namespace; "" for other IDs.
func peerService(id string) (service, namespace string) {
	_, path, ok := strings.Cut(strings.TrimPrefix(id, "spiffe://"), "/")
	if !ok {
		return "", ""
	}
	parts := strings.Split(path, "/")
	if len(parts) != 4 || parts[0] != "ns" || parts[2] != "sa" {
		return "", ""
	}
	return parts[3] + "." + parts[1], parts[1]
}
