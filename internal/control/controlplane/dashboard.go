package controlplane

import (
	"net/http"
)

// dashboardPage is what /dashboard serves until the dashboard's web UI
// lands: the data API it will be built on. It holds no mesh data, so it
// needs no token; the API it lists does.
const dashboardPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>weft dashboard</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}code{background:#f3f3f3;padding:0 .2em}</style>
</head><body>
<h1>weft dashboard</h1>
<p>The web UI is not built yet. Its data API is served here, with the admin token
(<code>Authorization: Bearer $(cat DATA_DIR/admin-token)</code>):</p>
<ul>
<li><code>GET /api/v1/stats/graph?window=1m</code>: the service graph: nodes and edges with
requests/s, success rate, p50/p95/p99, and the verdicts naming the failing service</li>
<li><code>GET /api/v1/stats/services/NAME?window=1m</code>: one service: its edges, routes,
verdicts and golden metrics over the last 15 minutes</li>
<li><code>GET /api/v1/mesh</code>: services and their endpoints</li>
<li><code>GET /api/v1/proxies</code>: proxies, their sync state and certificates</li>
<li><code>GET /api/v1/version</code>: the control plane's build</li>
</ul>
<p>From a terminal: <code>weft stat</code>, <code>weft top</code>, <code>weft check</code>.</p>
</body></html>
`

// dashboardHandler serves the dashboard placeholder.
func dashboardHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.Write([]byte(dashboardPage))
	})
}
