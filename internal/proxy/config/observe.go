package config

import (
	"weft.dev/weft/internal/proxy/accesslog"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// buildObservability compiles the Service's observability fields into svc.
func buildObservability(svc *Service, s *weftv1.Service) {
	switch s.GetAccessLog() {
	case weftv1.AccessLogMode_ACCESS_LOG_ON:
		svc.AccessLog = accesslog.On
	case weftv1.AccessLogMode_ACCESS_LOG_ERRORS:
		svc.AccessLog = accesslog.Errors
	}
	svc.TapBodies = s.GetTapBodies()
	svc.TraceEndpoint = s.GetTraceOtlpEndpoint()
	svc.TraceSampling = -1
	if s.TraceSampling != nil {
		svc.TraceSampling = s.GetTraceSampling()
	}
}
