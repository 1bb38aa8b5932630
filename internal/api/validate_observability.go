package api

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

var accessLogModes = []string{AccessLogOff, AccessLogOn, AccessLogErrors}

func validateAccessLogMode(e *errs, p fieldPath, mode string) {
	if !slices.Contains(accessLogModes, mode) {
		e.add(p, "must be one of %s, got %q", strings.Join(accessLogModes, ", "), mode)
	}
}

// validateMeshObservability checks MeshConfig spec.accessLog and
// spec.tracing.
func validateMeshObservability(e *errs, p fieldPath, m *MeshConfig) {
	if al := m.Spec.AccessLog; al != nil && al.Mode != "" {
		validateAccessLogMode(e, p.child("accessLog").child("mode"), al.Mode)
	}
	if tr := m.Spec.Tracing; tr != nil && tr.Sampling != nil {
		if v := *tr.Sampling; !(v >= 0 && v <= 1) {
			e.add(p.child("tracing").child("sampling"), "must be between 0 and 1, got %v", v)
		}
	}
	if tr := m.Spec.Tracing; tr != nil && tr.OTLPEndpoint != "" {
		if err := weftv1.ValidateOTLPEndpoint(tr.OTLPEndpoint); err != nil {
			e.add(p.child("tracing").child("otlpEndpoint"), "%v", err)
		}
	}
}

// validateServiceObservability checks a Service's weft.dev/access-log and
// weft.dev/tap-bodies annotations.
func validateServiceObservability(e *errs, s *corev1.Service) {
	if mode, ok := s.Annotations[AnnotationAccessLog]; ok {
		validateAccessLogMode(e, fieldPath("metadata.annotations["+AnnotationAccessLog+"]"), mode)
	}
	if v, ok := s.Annotations[AnnotationTapBodies]; ok && v != "true" && v != "false" {
		e.add(fieldPath("metadata.annotations["+AnnotationTapBodies+"]"), `must be "true" or "false", got %q`, v)
	}
}
