package api

// AdaptiveConcurrency turns on a gradient concurrency limit for calls to
// the service: each client proxy learns the service's latency with little
// load (its min-RTT baseline) and keeps the requests it has in flight to
// the service at a limit that moves with the ratio of that baseline to the
// latency it samples, so that when the service slows down because work
// queues up, the limit falls and requests over it are shed at once with 503
// (x-weft-reason: adaptive-concurrency) instead of joining the queue.
// Every field is optional; `adaptiveConcurrency: {}` takes the defaults.
// See docs/traffic/adaptive-concurrency.md.
//
//	adaptiveConcurrency:
//	  updateInterval: 100ms
//	  minRTTInterval: 30s
//	  minLimit: 3
//	  maxLimit: 1000
type AdaptiveConcurrency struct {
	// UpdateInterval is how often the limit is recomputed from the latency
	// of the requests that completed since the last update, 10ms..10s
	// (default 100ms).
	UpdateInterval string `json:"updateInterval,omitempty"`
	// MinRTTInterval is how often the baseline is measured again, pinning
	// the limit at MinLimit while it is, 1s..1h (default 30s); it must be
	// longer than UpdateInterval.
	MinRTTInterval string `json:"minRTTInterval,omitempty"`
	// MinLimit is the lowest the limit falls, and the limit while the
	// baseline is measured, 1..100000 (default 3).
	MinLimit int32 `json:"minLimit,omitempty"`
	// MaxLimit is the highest the limit grows, MinLimit..100000 (default
	// 1000).
	MaxLimit int32 `json:"maxLimit,omitempty"`
	// InitialLimit is the limit before the first update, MinLimit..MaxLimit
	// (default 20, or the bound it falls outside).
	InitialLimit int32 `json:"initialLimit,omitempty"`
	// LatencyBufferPercent is how much above the baseline the sampled
	// latency may be before the limit falls, 1..1000 (default 25: the
	// limit falls once latency is more than 1.25 times the baseline).
	LatencyBufferPercent int32 `json:"latencyBufferPercent,omitempty"`
}

// Defaults of AdaptiveConcurrency and ConnectionPool bounds; the control
// plane fills them in (xdsgen/breaker.go).
const (
	DefaultAdaptiveUpdateInterval = "100ms"
	DefaultAdaptiveMinRTTInterval = "30s"
	DefaultAdaptiveMinLimit       = 3
	DefaultAdaptiveMaxLimit       = 1000
	DefaultAdaptiveInitialLimit   = 20
	DefaultAdaptiveLatencyBuffer  = 25
	// MaxAdaptiveLimit bounds MinLimit, MaxLimit and InitialLimit.
	MaxAdaptiveLimit = 100000
	// MaxConnectionPoolLimit bounds every ConnectionPool limit.
	MaxConnectionPoolLimit = 1000000
)
