package weftv1

import "fmt"

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
	return nil
}
