package stats

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakePrometheus answers instant queries with canned vectors, keyed by the
// metric each query reads, and records the queries.
func fakePrometheus(t *testing.T, vectors map[string]string, queries *[]string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query().Get("query")
		*queries = append(*queries, q)
		for metric, vec := range vectors {
			if strings.Contains(q, metric+"_bucket[") || strings.Contains(q, metric+"[") {
				fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[%s]}}`, vec)
				return
			}
		}
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func promBucket(src, dst, code, le string, v float64) string {
	return fmt.Sprintf(`{"metric":{"source_service":%q,"destination_service":%q,"http_response_status_code":%q,"le":%q},"value":[1700000000,"%g"]}`, src, dst, code, le, v)
}

func TestPrometheusSource(t *testing.T) {
	var queries []string
	vec := strings.Join([]string{
		promBucket("frontend.default", "backend.default", "200", "0.05", 50),
		promBucket("frontend.default", "backend.default", "200", "+Inf", 52),
		promBucket("frontend.default", "backend.default", "200", "0.025", 40),
		promBucket("frontend.default", "backend.default", "503", "0.05", 48),
		promBucket("frontend.default", "backend.default", "503", "+Inf", 48),
	}, ",")
	srv := fakePrometheus(t, map[string]string{
		clientHistogram: vec,
		tcpConnections:  `{"metric":{"listener":"inbound","destination_service":"db.default"},"value":[1700000000,"3"]}`,
	}, &queries)
	p, err := NewPrometheus(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	w, err := p.Query(context.Background(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	k := Key{Side: Outbound, Source: "frontend.default", Destination: "backend.default"}
	c := w.Series[k]
	if c.Requests != 100 || c.Failures != 48 {
		t.Errorf("edge: %v requests, %v failures; want 100, 48", c.Requests, c.Failures)
	}
	var want [NumBuckets]float64
	want[2], want[3], want[NumBuckets-1] = 40, 10+48, 2
	if diff := cmp.Diff(want, c.Buckets); diff != "" {
		t.Errorf("buckets (-want +got):\n%s", diff)
	}
	if tcp := w.Series[Key{Side: Inbound, Destination: "db.default"}].TCP; tcp != 3 {
		t.Errorf("tcp = %v, want 3", tcp)
	}
	if w.Seconds != 60 || len(queries) != 3 || !strings.Contains(queries[0], "[60s]") {
		t.Errorf("seconds %v, queries %q", w.Seconds, queries)
	}
	g := Build(w, time.Minute, "prometheus", nil)
	if len(g.Verdicts) != 1 || g.Verdicts[0].Culprit != "backend.default" {
		t.Errorf("verdicts %+v, want backend.default", g.Verdicts)
	}
}

func TestPrometheusErrors(t *testing.T) {
	for _, tt := range []struct{ name, body, want string }{
		{"refused", `{"status":"error","error":"parse error"}`, "parse error"},
		{"not json", `<html>`, "prometheus answered 200 OK"},
		{"matrix", `{"status":"success","data":{"resultType":"matrix","result":[]}}`, "want a vector"},
		{"bad value", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}`, "prometheus sample"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, tt.body) }))
			defer srv.Close()
			p, _ := NewPrometheus(srv.URL)
			if _, err := p.Query(context.Background(), time.Minute); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "prometheus:9090", "ftp://x", "http://"} {
		if _, err := NewPrometheus(bad); err == nil {
			t.Errorf("NewPrometheus(%q) accepted", bad)
		}
	}
}

func TestHandler(t *testing.T) {
	st := NewStore(StoreOptions{Interval: 10 * time.Second})
	now := time.Now()
	st.Append(now.Add(-10*time.Second), map[Key]Counts{
		{Side: Outbound, Source: "frontend.default", Destination: "backend.default", Route: "r1"}: {Requests: 100, Failures: 48},
		{Side: Inbound, Destination: "backend.default"}:                                           {Requests: 100, Failures: 48},
		{Side: Inbound, Destination: "frontend.default"}:                                          {Requests: 100, Failures: 48},
	})
	mux := http.NewServeMux()
	NewHandler(HandlerOptions{Source: st, Name: "embedded", History: st.History}).Register(mux, func(h http.Handler) http.Handler { return h })
	get := func(path string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %v: %s", path, err, rec.Body)
		}
		return rec.Code, body
	}
	code, g := get("/api/v1/stats/graph?window=1m")
	if code != 200 || g["source"] != "embedded" || len(g["edges"].([]any)) != 1 {
		t.Fatalf("graph: %d %v", code, g)
	}
	v := g["verdicts"].([]any)
	if len(v) != 1 || v[0].(map[string]any)["culprit"] != "backend.default" {
		t.Errorf("verdicts = %v, want backend.default alone", v)
	}
	code, s := get("/api/v1/stats/services/backend")
	if code != 200 || s["node"].(map[string]any)["culprit"] != true || len(s["inbound"].([]any)) != 1 || len(s["history"].([]any)) == 0 {
		t.Errorf("service: %d %v", code, s)
	}
	for path, want := range map[string]int{
		"/api/v1/stats/graph?window=1s":     400,
		"/api/v1/stats/graph?window=1h":     400,
		"/api/v1/stats/graph?window=banana": 400,
		"/api/v1/stats/services/nobody":     404,
	} {
		if code, body := get(path); code != want || body["error"] == "" {
			t.Errorf("%s: %d %v, want %d with an error", path, code, body, want)
		}
	}
}

func TestPrometheusHistory(t *testing.T) {
	now := time.Unix(1_700_000_005, 0)
	at := func(d time.Duration) int64 { return now.Truncate(historyStep).Add(-d).Unix() }
	var got url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query_range" {
			http.NotFound(w, r)
			return
		}
		got = r.URL.Query()
		series := func(code, le string, v1, v2 float64) string {
			return fmt.Sprintf(`{"metric":{"http_response_status_code":%q,"le":%q},"values":[[%d,"%g"],[%d,"%g"]]}`, code, le, at(10*time.Second), v1, at(0), v2)
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[%s,%s,%s]}}`,
			series("200", "+Inf", 8, 10), series("200", "0.05", 8, 10), series("503", "+Inf", 2, 0))
	}))
	defer srv.Close()
	p, _ := NewPrometheus(srv.URL)
	pts, err := p.History(context.Background(), now, "backend.default")
	if err != nil {
		t.Fatal(err)
	}
	if q := got.Get("query"); !strings.Contains(q, `destination_service="backend.default"`) || got.Get("step") != "10" {
		t.Errorf("range query %v", got)
	}
	if len(pts) != 90 {
		t.Fatalf("%d points, want 90 (15 min of 10 s)", len(pts))
	}
	last, prev := pts[89], pts[88]
	if last.Time.Unix() != at(0) || last.Requests != 10 || last.Failures != 0 || prev.Requests != 10 || prev.Failures != 2 || pts[0].Requests != 0 {
		t.Errorf("history ends %+v, %+v; starts %+v", prev, last, pts[0])
	}
	if *prev.SuccessRate != 0.8 || prev.RPS != 1 {
		t.Errorf("point %+v: want success 0.8 at 1 rps", prev)
	}
}
