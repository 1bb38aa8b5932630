package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/control/stats"
)

// statTestGraph is the graph of a demo with a broken backend over one
// minute: loadgen → frontend → backend (two routes) and greeter, a TCP
// service, and backend failing 48% of requests.
func statTestGraph() stats.Graph {
	w := stats.Window{Seconds: 60, Series: map[stats.Key]stats.Counts{}}
	add := func(k stats.Key, req, bad float64, bucket int) {
		c := w.Series[k]
		c.Requests += req
		c.Failures += bad
		c.Buckets[bucket] += req - bad
		c.Buckets[bucket+3] += bad
		w.Series[k] = c
	}
	out := func(src, dst, route string) stats.Key {
		return stats.Key{Side: stats.Outbound, Source: src + ".default", Destination: dst + ".default", Route: route}
	}
	in := func(dst string) stats.Key { return stats.Key{Side: stats.Inbound, Destination: dst + ".default"} }
	add(out("loadgen", "frontend", ""), 300, 144, 3)
	add(in("frontend"), 300, 144, 3)
	add(out("frontend", "backend", "backend-v1"), 240, 115, 1)
	add(out("frontend", "backend", "backend-canary"), 60, 29, 1)
	add(in("backend"), 300, 144, 1)
	add(out("frontend", "greeter", ""), 300, 0, 0)
	add(in("greeter"), 300, 0, 0)
	w.Series[stats.Key{Side: stats.Inbound, Destination: "db.default"}] = stats.Counts{TCP: 12}
	return stats.Build(w, time.Minute, "embedded", nil)
}

// statTestPlane serves statTestGraph, the given proxies and a version.
func statTestPlane(t *testing.T, proxies string) *globalFlags {
	g, _ := apiTestControlPlaneWith(t, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /api/v1/stats/graph", func(w http.ResponseWriter, r *http.Request) {
			if _, err := stats.ParseWindow(r.URL.Query().Get("window")); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
				return
			}
			json.NewEncoder(w).Encode(statTestGraph())
		})
		mux.HandleFunc("GET /api/v1/proxies", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(proxies)) })
		mux.HandleFunc("GET /api/v1/ca/rotation", func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"phase":"none","signing":"01","bundle":["01"]}`))
		})
		mux.HandleFunc("GET /api/v1/version", func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"version":"v0.9.0","commit":"abc123","goVersion":"go1.26.8","platform":"linux/amd64"}`))
		})
	})
	return g
}

func TestStatCmd(t *testing.T) {
	g := statTestPlane(t, "[]")
	var all strings.Builder
	for _, args := range [][]string{
		{},
		{"service/backend"},
		{"svc/frontend", "-o", "json"},
		{"edges", "--from", "frontend"},
		{"service/frontend", "--to", "backend"},
		{"routes", "--to", "backend"},
		{"route/backend-canary", "-o", "json"},
		{"service/nobody"},
	} {
		out, _, err := apiTestRun(t, g, newStatCmd, args...)
		if err != nil {
			t.Fatalf("stat %v: %v", args, err)
		}
		all.WriteString("$ weft stat " + strings.Join(args, " ") + "\n" + out + "\n")
	}
	apiTestGolden(t, "stat.txt", all.String())

	// The JSON names the culprit, and not its callers.
	out, _, err := apiTestRun(t, g, newStatCmd, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var res statOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Verdicts) != 1 || res.Verdicts[0].Culprit != "backend.default" {
		t.Errorf("verdicts = %+v, want backend.default alone", res.Verdicts)
	}
	for _, r := range res.Rows {
		if r.Culprit != (r.Service == "backend.default") {
			t.Errorf("row %s: culprit = %v", r.Service, r.Culprit)
		}
	}

	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"pods/x"}, `unknown kind "pods"`},
		{[]string{"--window", "1h"}, "window: 1h0m0s is outside 10s..15m0s"},
		{[]string{"-o", "yaml"}, "--output: must be table or json"},
	} {
		if _, _, err := apiTestRun(t, g, newStatCmd, tt.args...); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("stat %v: error %v, want %q", tt.args, err, tt.wantErr)
		}
	}
}
