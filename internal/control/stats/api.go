package stats

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Source answers windows: the embedded Store or a Prometheus.
type Source interface {
	Query(ctx context.Context, d time.Duration) (Window, error)
}

// Query returns the window of length d ending now.
func (s *Store) Query(_ context.Context, d time.Duration) (Window, error) {
	return s.Window(time.Now(), d), nil
}

// Limits of the window parameter.
const (
	MinWindow     = 10 * time.Second
	MaxWindow     = 15 * time.Minute
	DefaultWindow = time.Minute
)

// ServiceStats is one service's view: the body of GET
// /api/v1/stats/services/NAME.
type ServiceStats struct {
	Window  string  `json:"window"`
	Seconds float64 `json:"seconds"`
	Source  string  `json:"source"`
	Node    Node    `json:"node"`
	// Inbound and Outbound are the edges into and out of the service;
	// Routes the routes of the calls into it.
	Inbound  []Edge    `json:"inbound"`
	Outbound []Edge    `json:"outbound"`
	Routes   []Edge    `json:"routes"`
	Verdicts []Verdict `json:"verdicts"`
	// History is the service's inbound golden metrics per interval over
	// the last 15 minutes, oldest first.
	History []Point `json:"history"`
}

// Point is one interval of a service's history.
type Point struct {
	Time time.Time `json:"time"`
	Golden
}

// Handler serves the stats data API:
//
//   - GET /api/v1/stats/graph?window=1m: the Graph;
//   - GET /api/v1/stats/services/{name}?window=1m: the ServiceStats of a
//     service ("<name>.<namespace>"; a bare name means namespace default).
//
// window is a Go duration between MinWindow and MaxWindow (default 1m). The
// caller authenticates requests (the control plane's admin token).
type Handler struct {
	opts HandlerOptions
}

// HandlerOptions configure a Handler.
type HandlerOptions struct {
	// Source answers windows; Name says which it is ("embedded" or
	// "prometheus").
	Source Source
	Name   string
	// History, if not nil, answers the history of a service.
	History func(ctx context.Context, now time.Time, service string) ([]Point, error)
	// ServedBy, if not nil, returns the services whose endpoints are all
	// workloads of another service (see Build).
	ServedBy func() map[string]string
}

// NewHandler serves the data API.
func NewHandler(opts HandlerOptions) *Handler {
	return &Handler{opts: opts}
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	mux.Handle("GET /api/v1/stats/graph", wrap(http.HandlerFunc(h.graph)))
	mux.Handle("GET /api/v1/stats/services/{name}", wrap(http.HandlerFunc(h.service)))
}

// ParseWindow reads a window parameter ("" for the default).
func ParseWindow(s string) (time.Duration, error) {
	if s == "" {
		return DefaultWindow, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("window: %w", err)
	}
	if d < MinWindow || d > MaxWindow {
		return 0, fmt.Errorf("window: %s is outside %s..%s", d, MinWindow, MaxWindow)
	}
	return d, nil
}

// Graph returns the graph over the window d.
func (h *Handler) Graph(ctx context.Context, d time.Duration) (Graph, error) {
	w, err := h.opts.Source.Query(ctx, d)
	if err != nil {
		return Graph{}, err
	}
	var servedBy map[string]string
	if h.opts.ServedBy != nil {
		servedBy = h.opts.ServedBy()
	}
	return Build(w, d, h.opts.Name, servedBy), nil
}

// windowGraph answers r's graph over its ?window, or writes the error
// (400 for a bad window, 502 when the source fails) and returns false.
func (h *Handler) windowGraph(w http.ResponseWriter, r *http.Request) (Graph, time.Duration, bool) {
	d, err := ParseWindow(r.URL.Query().Get("window"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return Graph{}, 0, false
	}
	g, err := h.Graph(r.Context(), d)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		return Graph{}, 0, false
	}
	return g, d, true
}

func (h *Handler) graph(w http.ResponseWriter, r *http.Request) {
	if g, _, ok := h.windowGraph(w, r); ok {
		writeJSON(w, http.StatusOK, g)
	}
}

func (h *Handler) service(w http.ResponseWriter, r *http.Request) {
	g, d, ok := h.windowGraph(w, r)
	if !ok {
		return
	}
	s, ok := ServiceOf(g, ServiceKey(r.PathValue("name")))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("service %q: no traffic in the last %s", r.PathValue("name"), d)})
		return
	}
	if h.opts.History != nil {
		var err error
		if s.History, err = h.opts.History(r.Context(), time.Now(), s.Node.Service); err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, s)
}

// ServiceKey turns a bare service name into "<name>.default"; a name that
// has a namespace stays as is.
func ServiceKey(name string) string {
	if strings.Contains(name, ".") {
		return name
	}
	return name + ".default"
}

// ServiceOf extracts one service's view from the graph, false if the
// service had no traffic.
func ServiceOf(g Graph, service string) (ServiceStats, bool) {
	s := ServiceStats{Window: g.Window, Seconds: g.Seconds, Source: g.Source, Inbound: []Edge{}, Outbound: []Edge{}, Routes: []Edge{}, Verdicts: []Verdict{}, History: []Point{}}
	i := slices.IndexFunc(g.Nodes, func(n Node) bool { return n.Service == service })
	if i < 0 {
		return s, false
	}
	s.Node = g.Nodes[i]
	for _, e := range g.Edges {
		if e.Destination == service {
			s.Inbound = append(s.Inbound, e)
		}
		if e.Source == service {
			s.Outbound = append(s.Outbound, e)
		}
	}
	for _, e := range g.Routes {
		if e.Destination == service {
			s.Routes = append(s.Routes, e)
		}
	}
	for _, v := range g.Verdicts {
		if v.Culprit == service || slices.Contains(v.Callers, service) {
			s.Verdicts = append(s.Verdicts, v)
		}
	}
	return s, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
