package sidecar

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"weft.dev/weft/internal/proxy/accesslog"
	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/tap"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/proxy/xdsclient"
)

// observability is what the listeners share to be observed beyond
// request metrics: the access log writer and the tap hub.
type observability struct {
	log *accesslog.Logger
	tap *tap.Hub
}

// newObservability registers the proxy health gauges and makes the access
// logger (writing to w, default os.Stdout) and the tap hub.
func newObservability(reg prometheus.Registerer, m *telemetry.Metrics, src *identity.Source, xc *xdsclient.Client, w io.Writer) (observability, error) {
	err := telemetry.RegisterHealth(reg, telemetry.HealthSource{
		ConfigVersion: func() string {
			if c := xc.Load(); c != nil {
				return c.Version
			}
			return ""
		},
		XDSConnected: func() bool { return xc.ConnState().Connected },
		CertExpiry:   func() time.Time { return src.Expiry() },
	})
	if err != nil {
		return observability{}, fmt.Errorf("health metrics: %w", err)
	}
	if w == nil {
		w = os.Stdout
	}
	return observability{log: accesslog.New(w, 0, m), tap: tap.NewHub(m)}, nil
}
