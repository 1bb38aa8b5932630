// Package admin serves the proxy's local admin endpoints: readiness, metrics
// and a JSON dump of the config the proxy is running with.
package admin

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// index is what GET / answers: the endpoints below.
const index = `weft sidecar admin endpoints:

  /ready         200 "ready", or 503 with the reason
  /metrics       Prometheus metrics (golden metrics per route, TCP, refusals)
  /config_dump   the configuration the proxy runs with, as JSON
  /xds           the state of its stream to the control plane, as JSON
  /tap           live stream of requests as NDJSON (?path=&method=&status=&bodies=1; loopback only)
  /debug/pprof/  Go profiles
`

// New returns the admin handler:
//
//   - GET /: the list of these endpoints;
//   - GET /ready: 200 "ready", or 503 with the reason ready returned;
//   - GET /metrics: the Prometheus metrics of reg;
//   - GET /config_dump: dump() as indented JSON;
//   - GET /xds: xds() as indented JSON, the state of the stream to the
//     control plane (connected, since when, failed attempts, last error);
//   - GET /tap: tap's live stream of requests as NDJSON (see package
//     tap; ?path=&method=&status=&bodies=), when tap is not nil;
//   - /debug/pprof/: Go profiles of the proxy (the admin port listens on
//     loopback only), e.g. `go tool pprof http://127.0.0.1:PORT/debug/pprof/profile?seconds=10`.
func New(reg *prometheus.Registry, ready func() error, dump, xds func() any, tap http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(index))
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /config_dump", jsonHandler("config dump", dump))
	mux.HandleFunc("GET /xds", jsonHandler("xds state", xds))
	if tap != nil {
		mux.Handle("GET /tap", tap)
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// jsonHandler serves v() as indented JSON.
func jsonHandler(what string, v func() any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		b, err := json.MarshalIndent(v(), "", "  ")
		if err != nil {
			http.Error(w, what+": "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(b, '\n'))
	}
}
