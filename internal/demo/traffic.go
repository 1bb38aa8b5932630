package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// counts are requests by destination service, split by outcome.
type counts map[string]struct{ total, failed float64 }

// scrapeOutbound reads the outbound request counters of one sidecar.
func scrapeOutbound(ctx context.Context, adminAddr string) (counts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := readyClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return parseOutbound(resp.Body)
}

func parseOutbound(r io.Reader) (counts, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	out := counts{}
	fam := fams["http_client_request_duration_seconds"]
	if fam == nil {
		return out, nil
	}
	for _, m := range fam.GetMetric() {
		var dest, status string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "destination_service":
				dest = l.GetValue()
			case "http_response_status_code":
				status = l.GetValue()
			}
		}
		c := out[dest]
		n := float64(m.GetHistogram().GetSampleCount())
		c.total += n
		if strings.HasPrefix(status, "5") {
			c.failed += n
		}
		out[dest] = c
	}
	return out, nil
}

// reportTraffic prints, every interval, the calls the given sidecars made
// in that interval, per destination: what a newcomer watches the mesh do.
func reportTraffic(ctx context.Context, out io.Writer, admins []string, interval time.Duration) {
	prev := counts{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := counts{}
		for _, a := range admins {
			c, err := scrapeOutbound(ctx, a)
			if err != nil {
				continue
			}
			for k, v := range c {
				s := cur[k]
				s.total += v.total
				s.failed += v.failed
				cur[k] = s
			}
		}
		if line := trafficLine(prev, cur, interval); line != "" {
			fmt.Fprintln(out, line)
		}
		prev = cur
	}
}

// trafficLine describes the change from prev to cur.
func trafficLine(prev, cur counts, interval time.Duration) string {
	keys := make([]string, 0, len(cur))
	for k := range cur {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		n := cur[k].total - prev[k].total
		f := cur[k].failed - prev[k].failed
		if n <= 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.0f calls, %.0f%% 5xx", strings.TrimSuffix(k, ".default"), n, 100*f/n))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("last %s: %s", interval, strings.Join(parts, " | "))
}
