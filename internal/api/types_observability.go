package api

// Access log modes of MeshConfig spec.accessLog.mode and of the Service
// annotation AnnotationAccessLog. (Not "on" and "off": YAML reads those
// unquoted as booleans.)
const (
	// AccessLogOff logs no request (the default).
	AccessLogOff = "none"
	// AccessLogOn logs every request.
	AccessLogOn = "all"
	// AccessLogErrors logs failed requests only: 5xx, no response, or a
	// server-side gRPC error.
	AccessLogErrors = "errors"
)

// AnnotationAccessLog on a Service overrides MeshConfig
// spec.accessLog.mode for requests to that service: off, on or errors.
const AnnotationAccessLog = "weft.dev/access-log"

// AnnotationTapBodies: "true" on a Service lets `weft tap --bodies` show
// the first KiB of the bodies of its requests and responses (redacted).
const AnnotationTapBodies = "weft.dev/tap-bodies"

// AccessLogConfig configures the proxies' access logs.
type AccessLogConfig struct {
	// Mode is none (the default), all or errors, for every service without
	// a weft.dev/access-log annotation.
	// +kubebuilder:validation:Enum=none;all;errors
	Mode string `json:"mode,omitempty"`
}

// TracingConfig configures the proxies' tracing.
type TracingConfig struct {
	// Sampling is the share of new traces sampled, 0 to 1 (default: the
	// sidecar's OTEL_TRACES_SAMPLER_ARG, else 0.01).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1
	Sampling *float64 `json:"sampling,omitempty"`
	// OTLPEndpoint is the OTLP/gRPC collector every proxy exports its
	// spans to, an http:// (plaintext) or https:// (TLS) URL with host and
	// port; the proxies switch to it, and back, when it changes. Empty:
	// each sidecar's OTEL_EXPORTER_OTLP_ENDPOINT, if any.
	OTLPEndpoint string `json:"otlpEndpoint,omitempty"`
}
