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
	type bucket struct{ le, cum float64 }
	type hist struct {
		buckets []bucket
		total   float64
	}
	for name, side := range map[string]Side{clientHistogram: Outbound, serverHistogram: Inbound} {
		q := fmt.Sprintf("sum by (source_service, destination_service, route, http_response_status_code, rpc_grpc_status_code, le) (increase(%s_bucket[%s]))", name, rng)
		res, err := p.query(ctx, q)
		if err != nil {
			return Window{}, err
		}
		type series struct {
			key    Key
			failed bool
		}
		hs := map[series]*hist{}
		for _, r := range res {
			m := r.Metric
			s := series{key: Key{Side: side, Source: m["source_service"], Destination: m["destination_service"], Route: m["route"]},
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
				return Window{}, fmt.Errorf("prometheus: bucket bound %q: %w", m["le"], err)
			}
			h.buckets = append(h.buckets, bucket{le, r.value})
		}
		for s, h := range hs {
			slices.SortFunc(h.buckets, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
			les, cums := make([]float64, len(h.buckets)), make([]float64, len(h.buckets))
			for i, b := range h.buckets {
				les[i], cums[i] = b.le, b.cum
			}
			c := w.Series[s.key]
			c.Requests += h.total
			if s.failed {
				c.Failures += h.total
			}
			foldBuckets(&c, les, cums, h.total)
			w.Series[s.key] = c
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

type promSample struct {
	Metric map[string]string
	value  float64
}

// query runs an instant query and returns its vector.
func (p *Prometheus) query(ctx context.Context, q string) ([]promSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("querying prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading prometheus answer: %w", err)
	}
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("prometheus answered %s: %w", resp.Status, err)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("prometheus refused %q: %s", q, out.Error)
	}
	if out.Data.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus answered a %s, want a vector", out.Data.ResultType)
	}
	res := make([]promSample, 0, len(out.Data.Result))
	for _, r := range out.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus sample %v: %w", r.Value, err)
		}
		res = append(res, promSample{Metric: r.Metric, value: v})
	}
	return res, nil
}
