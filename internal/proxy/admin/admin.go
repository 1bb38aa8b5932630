// Package admin serves the proxy's local admin endpoints: readiness, metrics
// and a JSON dump of the config the proxy is running with.
package admin

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// New returns the admin handler:
//
//   - GET /ready: 200 "ready", or 503 with the reason ready returned;
//   - GET /metrics: the Prometheus metrics of reg;
//   - GET /config_dump: dump() as indented JSON.
func New(reg *prometheus.Registry, ready func() error, dump func() any) http.Handler {
	mux := http.NewServeMux()
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
	mux.HandleFunc("GET /config_dump", func(w http.ResponseWriter, _ *http.Request) {
		b, err := json.MarshalIndent(dump(), "", "  ")
		if err != nil {
			http.Error(w, "config dump: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(b, '\n'))
	})
	return mux
}
