package stats

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The request duration histograms the proxies expose, by side.
const (
	clientHistogram = "http_client_request_duration_seconds"
	serverHistogram = "http_server_request_duration_seconds"
	tcpConnections  = "weft_tcp_connections_total"
)

// Scrape is what one proxy's /metrics says.
type Scrape struct {
	// Series are the cumulative counts, summed per Key.
	Series map[Key]Counts
	// Started is the proxy process's start (process_start_time_seconds),
	// zero if it does not expose it.
	Started time.Time
}

// Parse reads a proxy's /metrics (Prometheus text format) and returns the
// cumulative counts of its request duration histograms, summed per Key.
// It keys on the labels source_service, destination_service, route and
// http_response_status_code (plus rpc_grpc_status_code when present) and
// ignores any other label, so proxies that add labels parse the same.
// Opaque TCP connections (weft_tcp_connections_total) count per listener
// and destination service, with no source.
func Parse(r io.Reader) (Scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Scrape{}, fmt.Errorf("parsing metrics: %w", err)
	}
	sc := Scrape{}
	if fam := fams["process_start_time_seconds"]; fam != nil && len(fam.GetMetric()) == 1 {
		sec := fam.GetMetric()[0].GetGauge().GetValue()
		sc.Started = time.Unix(0, int64(sec*1e9))
	}
	out := map[Key]Counts{}
	for name, side := range map[string]Side{clientHistogram: Outbound, serverHistogram: Inbound} {
		fam := fams[name]
		if fam == nil {
			continue
		}
		for _, m := range fam.GetMetric() {
			h := m.GetHistogram()
			if h == nil {
				continue
			}
			k, failed := seriesKey(side, m.GetLabel())
			c := out[k]
			n := float64(h.GetSampleCount())
			c.Requests += n
			if failed {
				c.Failures += n
			}
			addBuckets(&c, h)
			out[k] = c
		}
	}
	if fam := fams[tcpConnections]; fam != nil {
		for _, m := range fam.GetMetric() {
			k := Key{}
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "listener":
					k.Side = Side(l.GetValue())
				case "destination_service":
					k.Destination = l.GetValue()
				}
			}
			if k.Side != Inbound && k.Side != Outbound {
				continue
			}
			c := out[k]
			c.TCP += m.GetCounter().GetValue()
			out[k] = c
		}
	}
	sc.Series = out
	return sc, nil
}

// seriesKey reads a series' key and whether its requests failed.
func seriesKey(side Side, labels []*dto.LabelPair) (Key, bool) {
	k := Key{Side: side}
	var status, grpc string
	for _, l := range labels {
		switch l.GetName() {
		case "source_service":
			k.Source = l.GetValue()
		case "destination_service":
			k.Destination = l.GetValue()
		case "route":
			k.Route = l.GetValue()
		case "http_response_status_code":
			status = l.GetValue()
		case "rpc_grpc_status_code":
			grpc = l.GetValue()
		}
	}
	return k, Failed(status, grpc)
}

// Failed says whether a request failed: an HTTP 5xx (or no status at all:
// the proxy answered nothing), or a gRPC status that means the server
// failed (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE,
// DATA_LOSS) — the classification Linkerd's success rate uses.
func Failed(httpStatus, grpcStatus string) bool {
	switch grpcStatus {
	case "2", "4", "12", "13", "14", "15":
		return true
	}
	code, err := strconv.Atoi(httpStatus)
	return err != nil || code == 0 || code >= 500
}

// addBuckets folds h's cumulative buckets onto Bounds and adds them, per
// bucket, to c.
func addBuckets(c *Counts, h *dto.Histogram) {
	bs := h.GetBucket()
	les, cums := make([]float64, len(bs)), make([]float64, len(bs))
	for i, b := range bs {
		les[i], cums[i] = b.GetUpperBound(), float64(b.GetCumulativeCount())
	}
	foldBuckets(c, les, cums, float64(h.GetSampleCount()))
}

// foldBuckets adds to c the per-bucket counts of a cumulative histogram
// with upper bounds les (ascending) and counts cums, of total requests.
func foldBuckets(c *Counts, les, cums []float64, total float64) {
	var cum [NumBuckets]float64
	j := 0
	for i, b := range Bounds[:NumBuckets-1] {
		for j < len(les) && les[j] <= b*(1+1e-9) {
			cum[i] = cums[j]
			j++
		}
		if i > 0 && cum[i] < cum[i-1] {
			cum[i] = cum[i-1]
		}
	}
	cum[NumBuckets-1] = total
	prev := 0.0
	for i := range cum {
		c.Buckets[i] += math.Max(0, cum[i]-prev)
		prev = math.Max(prev, cum[i])
	}
}
