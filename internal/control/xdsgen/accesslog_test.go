package xdsgen

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

func obsService(name string, annotations map[string]string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Annotations: annotations}}
}

func meshAccessLog(mode string) *api.MeshConfig {
	return &api.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: api.MeshConfigSpec{AccessLog: &api.AccessLogConfig{Mode: mode}}}
}

type obsWant struct {
	mode   weftv1.AccessLogMode
	bodies bool
}

// TestServiceObservability checks the access log mode (annotation, else
// MeshConfig, else off) and tap-bodies opt-in each Service resource gets.
func TestServiceObservability(t *testing.T) {
	const off, on, errs = weftv1.AccessLogMode_ACCESS_LOG_OFF, weftv1.AccessLogMode_ACCESS_LOG_ON, weftv1.AccessLogMode_ACCESS_LOG_ERRORS
	tests := []struct {
		name string
		cfg  *api.Set
		want map[string]obsWant
	}{
		{"no config", nil, map[string]obsWant{"a": {off, false}}},
		{"mesh errors", &api.Set{MeshConfig: meshAccessLog(api.AccessLogErrors)}, map[string]obsWant{"a": {errs, false}}},
		{"mesh on", &api.Set{MeshConfig: meshAccessLog(api.AccessLogOn)}, map[string]obsWant{"a": {on, false}}},
		{"annotation overrides mesh", &api.Set{
			MeshConfig: meshAccessLog(api.AccessLogErrors),
			Services: []*corev1.Service{
				obsService("a", map[string]string{api.AnnotationAccessLog: api.AccessLogOff}),
				obsService("b", map[string]string{api.AnnotationAccessLog: api.AccessLogOn}),
				obsService("c", nil),
			},
		}, map[string]obsWant{"a": {off, false}, "b": {on, false}, "c": {errs, false}}},
		{"tap bodies opt-in keeps the mesh mode", &api.Set{
			MeshConfig: meshAccessLog(api.AccessLogErrors),
			Services: []*corev1.Service{
				obsService("a", map[string]string{api.AnnotationTapBodies: "true"}),
				obsService("b", map[string]string{api.AnnotationTapBodies: "false"}),
			},
		}, map[string]obsWant{"a": {errs, true}, "b": {errs, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRouting(tt.cfg)
			for name, want := range tt.want {
				got := r.Service(&mesh.Service{Name: name, Namespace: "default"})
				if got.GetAccessLog() != want.mode || got.GetTapBodies() != want.bodies {
					t.Errorf("%s: access_log %v tap_bodies %v, want %v %v", name, got.GetAccessLog(), got.GetTapBodies(), want.mode, want.bodies)
				}
				if err := weftv1.ValidateService(got); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
}

// TestUpdateObservabilityAnnotation checks that Update reports a Service
// whose annotations alone changed its settings, and only those.
func TestUpdateObservabilityAnnotation(t *testing.T) {
	base := &api.Set{Services: []*corev1.Service{obsService("a", nil), obsService("b", nil)}}
	tests := []struct {
		name     string
		services []*corev1.Service
		wantKeys []string
	}{
		{"access log on", []*corev1.Service{obsService("a", map[string]string{api.AnnotationAccessLog: api.AccessLogOn}), obsService("b", nil)}, []string{"a.default"}},
		{"tap bodies", []*corev1.Service{obsService("a", nil), obsService("b", map[string]string{api.AnnotationTapBodies: "true"})}, []string{"b.default"}},
		{"annotated with the default", []*corev1.Service{obsService("a", map[string]string{api.AnnotationAccessLog: api.AccessLogOff}), obsService("b", nil)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRouting(base)
			next, keys, all := r.Update(&api.Set{Services: tt.services})
			if all || !slices.Equal(keys, tt.wantKeys) {
				t.Errorf("Update: keys %v all %v, want %v", keys, all, tt.wantKeys)
			}
			for _, k := range tt.wantKeys {
				name := k[:len(k)-len(".default")]
				got := next.Service(&mesh.Service{Name: name, Namespace: "default"})
				if got.GetAccessLog() == weftv1.AccessLogMode_ACCESS_LOG_OFF && !got.GetTapBodies() {
					t.Errorf("%s: settings not applied: %v", name, got)
				}
			}
			if _, keys, _ := next.Update(base); !slices.Equal(keys, tt.wantKeys) {
				t.Errorf("Update back: keys %v, want %v", keys, tt.wantKeys)
			}
		})
	}
}

// TestServiceTraceSampling checks MeshConfig spec.tracing.sampling and
// otlpEndpoint reach every Service resource, and that no MeshConfig leaves
// them unset.
func TestServiceTraceSampling(t *testing.T) {
	half := 0.5
	for _, tt := range []struct {
		name         string
		cfg          *api.Set
		want         *float64
		wantEndpoint string
	}{
		{"unset", nil, nil, ""},
		{"mesh tracing", &api.Set{MeshConfig: &api.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: api.MeshConfigSpec{Tracing: &api.TracingConfig{Sampling: &half}}}}, &half, ""},
		{"mesh collector", &api.Set{MeshConfig: &api.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: api.MeshConfigSpec{Tracing: &api.TracingConfig{OTLPEndpoint: "http://otel:4317"}}}}, nil, "http://otel:4317"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := NewRouting(tt.cfg).Service(&mesh.Service{Name: "a", Namespace: "default"})
			if (got.TraceSampling == nil) != (tt.want == nil) || tt.want != nil && got.GetTraceSampling() != *tt.want {
				t.Errorf("trace_sampling %v, want %v", got.TraceSampling, tt.want)
			}
			if got.GetTraceOtlpEndpoint() != tt.wantEndpoint {
				t.Errorf("trace_otlp_endpoint %q, want %q", got.GetTraceOtlpEndpoint(), tt.wantEndpoint)
			}
			if err := weftv1.ValidateService(got); err != nil {
				t.Error(err)
			}
		})
	}
}
