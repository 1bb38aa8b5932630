package outbound

import (
	"net/http"
	"sync"
	"time"

	"weft.dev/weft/internal/proxy/accesslog"
	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/observe"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/proxy/trace"
	"weft.dev/weft/internal/proxy/upstream"
)

// exchange observes one mesh request for metrics, the access log and tap.
// forward starts it with observe and ends it with finish; stages set
// labels (route, destination) and st as they go.
type exchange struct {
	l      *Listener
	r      *http.Request
	sw     *upstream.StatusWriter
	svc    *config.Service
	start  time.Time
	labels telemetry.RequestLabels
	reqID  string
	// reqBytes is the request's Content-Length, or -1 while body counts
	// a body of unknown length.
	reqBytes int64
	body     *observe.CountingBody
	rec      *observe.Record
	st       *reqState
	span     *trace.Span
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// observe starts observing *r, a request for mesh service svc. While the
// service's requests are logged or someone taps, it sets the request ID
// (x-request-id, generated when absent, forwarded to the peer, whose
// inbound logs the same requests: the mode is the destination's) and,
// while someone taps, a decision record in *r's context.
func (l *Listener) observe(r **http.Request, sw *upstream.StatusWriter, svc *config.Service, start time.Time) *exchange {
	req := *r
	ex := exchanges.Get().(*exchange)
	*ex = exchange{l: l, sw: sw, svc: svc, start: start, reqBytes: req.ContentLength,
		labels: telemetry.RequestLabels{SourceService: l.source, SourceNamespace: l.opts.Namespace, SourceIdentity: l.selfID,
			DestinationService: svc.Key, Method: req.Method, TLS: true}}
	tapped := l.opts.Tap.Active()
	if tapped || svc.AccessLog != accesslog.Off {
		ex.reqID = observe.RequestID(req.Header)
	}
	if req.ContentLength < 0 && req.Body != nil && req.Body != http.NoBody {
		ex.body = &observe.CountingBody{ReadCloser: req.Body}
		req.Body = ex.body
	}
	if tapped {
		ex.rec = &observe.Record{}
		req = req.WithContext(observe.WithRecord(req.Context(), ex.rec))
		*r = req
	}
	ex.span = l.opts.Tracer.Start(req, "client", svc.Key, start)
	ex.r = req
	return ex
}

// finish records the request once its response is sent.
func (ex *exchange) finish() {
	l, sw := ex.l, ex.sw
	d := time.Since(ex.start)
	lb := &ex.labels
	lb.Status = sw.Status
	lb.GRPCStatus = telemetry.GRPCStatus(sw.Header())
	lb.DestinationNamespace = telemetry.ServiceNamespace(lb.DestinationService)
	var endpoint string
	if ex.st != nil && ex.st.lease.Endpoint != nil {
		endpoint = ex.st.lease.Endpoint.Address
		lb.DestinationVersion = ex.st.lease.Endpoint.Labels["version"]
	}
	reqBytes := ex.reqBytes
	if ex.body != nil {
		reqBytes = ex.body.N()
	}
	l.opts.Metrics.ClientRequest(*lb, d, reqBytes, sw.Bytes)
	ex.span.End(trace.Outcome{Status: lb.Status, GRPCStatus: lb.GRPCStatus, Route: lb.Route, Endpoint: endpoint,
		Failed: observe.Failed(lb.Status, lb.GRPCStatus)})
	logIt := l.opts.AccessLog != nil && ex.svc.AccessLog.Wants(observe.Failed(lb.Status, lb.GRPCStatus))
	if logIt || l.opts.Tap.Active() {
		r := ex.r
		e := observe.Event{
			Time: ex.start, Side: "client", RequestID: ex.reqID,
			Source: lb.SourceService, SourceIdentity: lb.SourceIdentity, Destination: lb.DestinationService,
			Endpoint: endpoint, Method: r.Method, Authority: r.Host, Path: r.URL.Path,
			Status: lb.Status, GRPCStatus: lb.GRPCStatus, Duration: observe.Millis(d),
			RequestBytes: reqBytes, ResponseBytes: sw.Bytes, Route: lb.Route, TLS: true,
		}
		if logIt {
			l.opts.AccessLog.Log(&e)
		}
		if ex.rec != nil {
			e.Decisions = clientDecisions(lb.Route, sw.Header(), ex.rec)
			l.opts.Tap.Publish(&e)
		}
	}
	*ex = exchange{}
	exchanges.Put(ex)
}

// clientDecisions are a tapped request's decisions: the route, then what
// the stages noted, then a weft refusal's reason.
func clientDecisions(route string, h http.Header, rec *observe.Record) []observe.Decision {
	if route == "" {
		route = "none: the service's own endpoints"
	}
	ds := append([]observe.Decision{{Stage: "route", Detail: route}}, rec.Decisions()...)
	if reason := h.Get("X-Weft-Reason"); reason != "" {
		ds = append(ds, observe.Decision{Stage: "refused", Detail: reason})
	}
	return ds
}
