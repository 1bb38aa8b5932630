package config

import (
	"time"

	"weft.dev/weft/internal/proxy/adaptive"
	"weft.dev/weft/internal/proxy/breaker"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// buildBreaker compiles a Service's connection limits and adaptive
// concurrency (validated by weftv1.ValidateService) into svc.
func buildBreaker(svc *Service, s *weftv1.Service) {
	if cl := s.GetConnectionLimits(); cl != nil {
		svc.Breaker = &breaker.Limits{
			MaxConnections:        int64(cl.GetMaxConnections()),
			MaxPendingRequests:    int64(cl.GetMaxPendingRequests()),
			MaxConcurrentRequests: int64(cl.GetMaxConcurrentRequests()),
		}
	}
	if ac := s.GetAdaptiveConcurrency(); ac != nil {
		svc.Adaptive = &adaptive.Config{
			UpdateInterval: time.Duration(ac.GetUpdateIntervalMs()) * time.Millisecond,
			MinRTTInterval: time.Duration(ac.GetMinRttIntervalMs()) * time.Millisecond,
			MinLimit:       int64(ac.GetMinLimit()),
			MaxLimit:       int64(ac.GetMaxLimit()),
			InitialLimit:   int64(ac.GetInitialLimit()),
			LatencyBuffer:  float64(ac.GetLatencyBufferPercent()) / 100,
		}
	}
}
