package weftv1

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
)

// validateObservability checks the Service's observability fields
// (100-119).
func validateObservability(s *Service) error {
	if _, ok := AccessLogMode_name[int32(s.GetAccessLog())]; !ok {
		return fmt.Errorf("access_log: unknown mode %d", s.GetAccessLog())
	}
	if s.TraceSampling != nil {
		if v := s.GetTraceSampling(); !(v >= 0 && v <= 1) {
			return fmt.Errorf("trace_sampling: %v is not a ratio between 0 and 1", v)
		}
	}
	if ep := s.GetTraceOtlpEndpoint(); ep != "" {
		if err := ValidateOTLPEndpoint(ep); err != nil {
			return fmt.Errorf("trace_otlp_endpoint: %w", err)
		}
	}
	return nil
}

// ValidateOTLPEndpoint checks an OTLP/gRPC collector address: an http://
// (plaintext) or https:// (TLS) URL with a host and a port, and nothing
// else (no credentials, path, query or fragment).
func ValidateOTLPEndpoint(ep string) error {
	u, err := url.Parse(ep)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL: %w", ep, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: want an http:// or https:// URL (http: plaintext, https: TLS)", ep)
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q: want only scheme, host and port", ep)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return fmt.Errorf("%q: want host:port (e.g. http://otel-collector:4317)", ep)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q out of range", ep, port)
	}
	return nil
}
