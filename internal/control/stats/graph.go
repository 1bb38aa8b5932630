package stats

import (
	"cmp"
	"slices"
	"time"
)

// Golden are the golden metrics of a set of requests over a window.
type Golden struct {
	Requests float64 `json:"requests"`
	Failures float64 `json:"failures"`
	// RPS is requests per second over the window.
	RPS float64 `json:"rps"`
	// SuccessRate is the fraction (0..1) of requests that did not fail;
	// null with no requests.
	SuccessRate *float64 `json:"successRate"`
	P50Ms       float64  `json:"p50Ms"`
	P95Ms       float64  `json:"p95Ms"`
	P99Ms       float64  `json:"p99Ms"`
	// TCPConnections counts the opaque TCP connections opened in the
	// window (inbound, per destination), if any.
	TCPConnections float64 `json:"tcpConnections,omitempty"`
}

// Node is one service of the graph.
type Node struct {
	Service string `json:"service"`
	// Inbound are the requests the service answered (as its own proxies
	// saw them, or its callers' when it has no proxy reporting).
	Inbound Golden `json:"inbound"`
	// Outbound are the calls it made to other services.
	Outbound Golden `json:"outbound"`
	// OwnFailures are the failures it answered that the failures of its
	// own calls do not explain.
	OwnFailures float64 `json:"ownFailures"`
	// Culprit is set when the service's own failures cause errors.
	Culprit bool `json:"culprit"`
	// ServedBy names the service whose workloads serve this one (a
	// declared Service selecting a subset, e.g. backend-v1 of backend):
	// its failures are that service's.
	ServedBy string `json:"servedBy,omitempty"`
}

// Edge is the traffic from one service to another, over all routes, or on
// one route.
type Edge struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Route       string `json:"route,omitempty"`
	Golden
}

// Graph is the service graph over a window: the body of GET
// /api/v1/stats/graph.
type Graph struct {
	// Window is the window asked for; Seconds how much of it has data.
	Window  string  `json:"window"`
	Seconds float64 `json:"seconds"`
	// Source is "embedded" (the control plane's own scrapes) or
	// "prometheus".
	Source string `json:"source"`
	Nodes  []Node `json:"nodes"`
	// Edges are summed over routes; Routes split them by route.
	Edges    []Edge    `json:"edges"`
	Routes   []Edge    `json:"routes"`
	Verdicts []Verdict `json:"verdicts"`
}

// Build turns a window into the service graph and its verdicts. servedBy
// maps a service to the service whose workloads are all its endpoints,
// when that is another one (see Node.ServedBy); nil for none.
func Build(w Window, window time.Duration, source string, servedBy map[string]string) Graph {
	g := Graph{Window: window.String(), Seconds: w.Seconds, Source: source, Nodes: []Node{}, Edges: []Edge{}, Routes: []Edge{}}
	type edgeKey struct{ src, dst, route string }
	edges, routes := map[edgeKey]Counts{}, map[edgeKey]Counts{}
	inbound, viaCallers, outbound := map[string]Counts{}, map[string]Counts{}, map[string]Counts{}
	names := map[string]bool{}
	add := func(m map[string]Counts, k string, c Counts) {
		acc := m[k]
		acc.add(c)
		m[k] = acc
	}
	addE := func(m map[edgeKey]Counts, k edgeKey, c Counts) {
		acc := m[k]
		acc.add(c)
		m[k] = acc
	}
	for k, c := range w.Series {
		if k.Destination == "" {
			continue
		}
		names[k.Destination] = true
		switch k.Side {
		case Inbound:
			add(inbound, k.Destination, c)
		case Outbound:
			add(viaCallers, k.Destination, c)
			if k.Source == "" {
				continue
			}
			names[k.Source] = true
			add(outbound, k.Source, c)
			addE(edges, edgeKey{k.Source, k.Destination, ""}, c)
			if k.Route != "" {
				addE(routes, edgeKey{k.Source, k.Destination, k.Route}, c)
			}
		}
	}
	for name := range names {
		in, ok := inbound[name]
		if !ok || in.Requests == 0 {
			// No proxy of its own reported requests: take its callers'
			// view (TCP connections stay the inbound listeners' count).
			in.Requests, in.Failures, in.Buckets = viaCallers[name].Requests, viaCallers[name].Failures, viaCallers[name].Buckets
		}
		n := Node{Service: name, Inbound: golden(in, w.Seconds), Outbound: golden(outbound[name], w.Seconds)}
		n.OwnFailures = max(0, in.Failures-outbound[name].Failures)
		if by := servedBy[name]; by != "" && by != name && inbound[by].Requests > 0 {
			// Its workloads report their requests under their own
			// service: the failures are by's.
			n.ServedBy, n.OwnFailures = by, 0
		}
		g.Nodes = append(g.Nodes, n)
	}
	slices.SortFunc(g.Nodes, func(a, b Node) int { return cmp.Compare(a.Service, b.Service) })
	for k, c := range edges {
		g.Edges = append(g.Edges, Edge{Source: k.src, Destination: k.dst, Golden: golden(c, w.Seconds)})
	}
	for k, c := range routes {
		g.Routes = append(g.Routes, Edge{Source: k.src, Destination: k.dst, Route: k.route, Golden: golden(c, w.Seconds)})
	}
	byEdge := func(a, b Edge) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Destination, b.Destination), cmp.Compare(a.Route, b.Route))
	}
	slices.SortFunc(g.Edges, byEdge)
	slices.SortFunc(g.Routes, byEdge)
	g.Verdicts = Analyze(g.Nodes, g.Edges)
	culprits := map[string]bool{}
	for _, v := range g.Verdicts {
		culprits[v.Culprit] = true
	}
	for i := range g.Nodes {
		g.Nodes[i].Culprit = culprits[g.Nodes[i].Service]
	}
	return g
}

// golden computes the golden metrics of c over seconds.
func golden(c Counts, seconds float64) Golden {
	g := Golden{Requests: c.Requests, Failures: c.Failures, TCPConnections: c.TCP}
	if seconds > 0 {
		g.RPS = round(c.Requests/seconds, 1000)
	}
	if c.Requests > 0 {
		sr := round(1-c.Failures/c.Requests, 10000)
		g.SuccessRate = &sr
		g.P50Ms = round(c.Quantile(0.50)*1000, 10)
		g.P95Ms = round(c.Quantile(0.95)*1000, 10)
		g.P99Ms = round(c.Quantile(0.99)*1000, 10)
	}
	return g
}

// round rounds v to 1/per, so that JSON stays readable and stable.
func round(v, per float64) float64 {
	return float64(int64(v*per+0.5)) / per
}
