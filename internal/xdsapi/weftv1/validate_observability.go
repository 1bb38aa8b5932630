package weftv1

import "fmt"

// validateObservability checks the Service's observability fields
// (100-119).
func validateObservability(s *Service) error {
	if _, ok := AccessLogMode_name[int32(s.GetAccessLog())]; !ok {
		return fmt.Errorf("access_log: unknown mode %d", s.GetAccessLog())
	}
	return nil
}
