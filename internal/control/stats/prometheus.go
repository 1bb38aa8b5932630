package stats

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Prometheus answers windows from an external Prometheus (or any server
// of its HTTP query API) that scrapes the proxies: the path for meshes too
// large for the control plane to scrape itself. It asks for the increase of
// the request duration buckets and the TCP connection counter over the
// window, summed by the labels Parse keys on.
type Prometheus struct {
	// URL is the server's base URL, e.g. http://prometheus:9090.
	URL    string
	Client *http.Client
}

// NewPrometheus returns a source that queries base.
func NewPrometheus(base string) (*Prometheus, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--prometheus %q: want an http(s)://host[:port] URL", base)
	}
	return &Prometheus{URL: u.String(), Client: &http.Client{Timeout: 10 * time.Second}}, nil
}

// Query returns the window of length d ending now.
func (p *Prometheus) Query(ctx context.Context, d time.Duration) (Window, error) {
	rng := strconv.Itoa(int(math.Ceil(d.Seconds()))) + "s"
	w := Window{Series: map[Key]Counts{}, Seconds: math.Ceil(d.Seconds())}
	for name, side := range map[string]Side{clientHistogram: Outbound, serverHistogram: Inbound} {
		q := fmt.Sprintf("sum by (source_service, destination_service, route, http_response_status_code, rpc_grpc_status_code, le) (increase(%s_bucket[%s]))", name, rng)
		res, err := p.query(ctx, q)
		if err != nil {
			return Window{}, err
		}
		if err := foldVector(w.Series, side, res); err != nil {
			return Window{}, err
		}
	}
	res, err := p.query(ctx, fmt.Sprintf("sum by (listener, destination_service) (increase(%s[%s]))", tcpConnections, rng))
	if err != nil {
		return Window{}, err
	}
	for _, r := range res {
		side := Side(r.Metric["listener"])
		if side != Inbound && side != Outbound {
			continue
		}
		k := Key{Side: side, Destination: r.Metric["destination_service"]}
		c := w.Series[k]
		c.TCP += r.value
		w.Series[k] = c
	}
	for k, c := range w.Series {
		if c.Requests == 0 && c.TCP == 0 {
			delete(w.Series, k)
		}
	}
	return w, nil
}

// historyStep is the resolution of a service's history from Prometheus.
const historyStep = 10 * time.Second

// History returns the requests service answered (its inbound series) per
// 10 s over the last 15 minutes before now, oldest first, from a range
// query.
func (p *Prometheus) History(ctx context.Context, now time.Time, service string) ([]Point, error) {
	q := fmt.Sprintf("sum by (http_response_status_code, rpc_grpc_status_code, le) (increase(%s_bucket{destination_service=%s}[%ds]))",
		serverHistogram, strconv.Quote(service), int(historyStep.Seconds()))
	end := now.Truncate(historyStep)
	start := end.Add(-MaxWindow + historyStep)
	v := url.Values{"query": {q}, "start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)},
		"step": {strconv.Itoa(int(historyStep.Seconds()))}}
	byTime, err := p.queryRange(ctx, v)
	if err != nil {
		return nil, err
	}
	out := []Point{}
	for t := start; !t.After(end); t = t.Add(historyStep) {
		series := map[Key]Counts{}
		if err := foldVector(series, Inbound, byTime[t.Unix()]); err != nil {
			return nil, err
		}
		var c Counts
		for _, s := range series {
			c.add(s)
		}
		out = append(out, Point{Time: t.UTC(), Golden: golden(c, historyStep.Seconds())})
	}
	return out, nil
}

// foldVector adds to series the request counts of a vector of summed
// histogram buckets (by the labels Parse keys on and le) of one side.
func foldVector(series map[Key]Counts, side Side, res []promSample) error {
	type bucket struct{ le, cum float64 }
	type hist struct {
		buckets []bucket
		total   float64
	}
	type id struct {
		key    Key
		failed bool
	}
	hs := map[id]*hist{}
	for _, r := range res {
		m := r.Metric
		s := id{key: Key{Side: side, Source: m["source_service"], Destination: m["destination_service"], Route: m["route"]},
			failed: Failed(m["http_response_status_code"], m["rpc_grpc_status_code"])}
		h := hs[s]
		if h == nil {
			h = &hist{}
			hs[s] = h
		}
		if m["le"] == "+Inf" {
			h.total = r.value
			continue
		}
		le, err := strconv.ParseFloat(m["le"], 64)
		if err != nil {
			return fmt.Errorf("prometheus: bucket bound %q: %w", m["le"], err)
		}
		h.buckets = append(h.buckets, bucket{le, r.value})
	}
	for s, h := range hs {
		slices.SortFunc(h.buckets, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
		les, cums := make([]float64, len(h.buckets)), make([]float64, len(h.buckets))
		for i, b := range h.buckets {
			les[i], cums[i] = b.le, b.cum
		}
		c := series[s.key]
		c.Requests += h.total
		if s.failed {
			c.Failures += h.total
		}
		foldBuckets(&c, les, cums, h.total)
		series[s.key] = c
	}
	return nil
}

type promSample struct {
	Metric map[string]string
	value  float64
}

// query runs an instant query and returns its vector.
func (p *Prometheus) query(ctx context.Context, q string) ([]promSample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus answered a %s, want a vector", data.ResultType)
	}
	res := make([]promSample, 0, len(data.Result))
	for _, r := range data.Result {
		v, _, err := sampleValue(r.Value)
		if err != nil {
			return nil, err
		}
		res = append(res, promSample{Metric: r.Metric, value: v})
	}
	return res, nil
}

// queryRange runs a range query and returns its samples by Unix second.
func (p *Prometheus) queryRange(ctx context.Context, v url.Values) (map[int64][]promSample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query_range", v, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "matrix" {
		return nil, fmt.Errorf("prometheus answered a %s, want a matrix", data.ResultType)
	}
	out := map[int64][]promSample{}
	for _, r := range data.Result {
		for _, pair := range r.Values {
			v, ts, err := sampleValue(pair)
			if err != nil {
				return nil, err
			}
			out[ts] = append(out[ts], promSample{Metric: r.Metric, value: v})
		}
	}
	return out, nil
}

// sampleValue reads a [time, "value"] pair.
func sampleValue(pair [2]any) (float64, int64, error) {
	ts, _ := pair[0].(float64)
	s, _ := pair[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("prometheus sample %v: %w", pair, err)
	}
	return v, int64(math.Round(ts)), nil
}

// get calls one endpoint of the query API and decodes its data.
func (p *Prometheus) get(ctx context.Context, path string, v url.Values, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path+"?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return fmt.Errorf("querying prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading prometheus answer: %w", err)
	}
	var out struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return fmt.Errorf("prometheus answered %s: %w", resp.Status, err)
	}
	if out.Status != "success" {
		return fmt.Errorf("prometheus refused %q: %s", v.Get("query"), out.Error)
	}
	if err := json.Unmarshal(out.Data, data); err != nil {
		return fmt.Errorf("prometheus data: %w", err)
	}
	return nil
}
