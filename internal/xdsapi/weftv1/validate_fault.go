package weftv1

import "fmt"

// Bounds of fault injection and mirroring.
const (
	// PerMillion is a share of 100%.
	PerMillion = 1000000
	// MaxFaultDelayMs bounds FaultDelay.delay_ms (one hour).
	MaxFaultDelayMs = 3600000
	// MaxGRPCStatus is the largest gRPC status code (UNAUTHENTICATED).
	MaxGRPCStatus = 16
)

// validateFaultMirror checks the fault and mirrors of a route and of its
// backends.
func validateFaultMirror(r *Route) error {
	if err := validateFaultMirrorOf(r.GetFault(), r.GetMirrors()); err != nil {
		return err
	}
	for i, b := range r.GetBackends() {
		if err := validateFaultMirrorOf(b.GetFault(), b.GetMirrors()); err != nil {
			return fmt.Errorf("backends[%d].%w", i, err)
		}
	}
	return nil
}

// validateFaultMirrorOf checks a fault and mirrors of a route or backend.
func validateFaultMirrorOf(f *FaultInjection, mirrors []*RequestMirror) error {
	if f != nil {
		if f.GetDelay() == nil && f.GetAbort() == nil {
			return fmt.Errorf("fault: set delay, abort or both")
		}
		if d := f.GetDelay(); d != nil {
			if d.GetDelayMs() == 0 || d.GetDelayMs() > MaxFaultDelayMs {
				return fmt.Errorf("fault.delay.delay_ms: %d out of range 1-%d", d.GetDelayMs(), MaxFaultDelayMs)
			}
			if d.GetPerMillion() > PerMillion {
				return fmt.Errorf("fault.delay.per_million: %d exceeds %d", d.GetPerMillion(), PerMillion)
			}
		}
		if a := f.GetAbort(); a != nil {
			h, g := a.GetHttpStatus(), a.GetGrpcStatus()
			switch {
			case h != 0 && g != 0:
				return fmt.Errorf("fault.abort: both http_status and grpc_status are set")
			case h == 0 && g == 0:
				return fmt.Errorf("fault.abort: one of http_status and grpc_status is required")
			case h != 0 && (h < 400 || h > 599):
				return fmt.Errorf("fault.abort.http_status: %d is not an HTTP error status (400-599)", h)
			case g > MaxGRPCStatus:
				return fmt.Errorf("fault.abort.grpc_status: %d is not a gRPC error status (1-%d)", g, MaxGRPCStatus)
			}
			if a.GetPerMillion() > PerMillion {
				return fmt.Errorf("fault.abort.per_million: %d exceeds %d", a.GetPerMillion(), PerMillion)
			}
		}
		for i, h := range f.GetHeaders() {
			if h.GetName() == "" {
				return fmt.Errorf("fault.headers[%d].name: must not be empty", i)
			}
		}
	}
	for i, m := range mirrors {
		if m.GetService() == "" || m.GetNamespace() == "" {
			return fmt.Errorf("mirrors[%d]: service and namespace are required", i)
		}
		if m.GetPerMillion() > PerMillion {
			return fmt.Errorf("mirrors[%d].per_million: %d exceeds %d", i, m.GetPerMillion(), PerMillion)
		}
	}
	return nil
}
