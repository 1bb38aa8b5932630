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

func mtlsService(name, mode string) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	if mode != "" {
		s.Annotations = map[string]string{api.AnnotationMTLSMode: mode}
	}
	return s
}

func meshMTLS(mode string) *api.MeshConfig {
	return &api.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: api.MeshConfigSpec{MTLS: &api.MTLSConfig{Mode: mode}}}
}

// TestServiceMTLSMode checks the mode each Service resource gets: the Service
// annotation's, else the MeshConfig's, else STRICT.
func TestServiceMTLSMode(t *testing.T) {
	const strict, permissive = weftv1.MTLSMode_MTLS_STRICT, weftv1.MTLSMode_MTLS_PERMISSIVE
	tests := []struct {
		name string
		cfg  *api.Set
		want map[string]weftv1.MTLSMode // by service name
	}{
		{"no config", nil, map[string]weftv1.MTLSMode{"a": strict}},
		{"mesh permissive", &api.Set{MeshConfig: meshMTLS(api.MTLSPermissive)}, map[string]weftv1.MTLSMode{"a": permissive}},
		{"mesh strict, one service permissive", &api.Set{
			MeshConfig: meshMTLS(api.MTLSStrict),
			Services:   []*corev1.Service{mtlsService("a", api.MTLSPermissive), mtlsService("b", "")},
		}, map[string]weftv1.MTLSMode{"a": permissive, "b": strict}},
		{"mesh permissive, one service strict", &api.Set{
			MeshConfig: meshMTLS(api.MTLSPermissive),
			Services:   []*corev1.Service{mtlsService("a", api.MTLSStrict), mtlsService("b", "")},
		}, map[string]weftv1.MTLSMode{"a": strict, "b": permissive}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRouting(tt.cfg)
			for name, want := range tt.want {
				got := r.Service(&mesh.Service{Name: name, Namespace: "default"})
				if got.GetMtlsMode() != want {
					t.Errorf("%s: mtls_mode %v, want %v", name, got.GetMtlsMode(), want)
				}
				if err := weftv1.ValidateService(got); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
}

// TestUpdateMTLSAnnotation checks that Update reports a Service whose
// annotation alone changed its mode (the mesh.Builder does not), and no
// Service whose change left its mode as it was.
func TestUpdateMTLSAnnotation(t *testing.T) {
	base := &api.Set{Services: []*corev1.Service{mtlsService("a", ""), mtlsService("b", "")}}
	tests := []struct {
		name     string
		services []*corev1.Service
		wantKeys []string
		want     map[string]weftv1.MTLSMode
	}{
		{"annotated permissive", []*corev1.Service{mtlsService("a", api.MTLSPermissive), mtlsService("b", "")},
			[]string{"a.default"}, map[string]weftv1.MTLSMode{"a": weftv1.MTLSMode_MTLS_PERMISSIVE, "b": weftv1.MTLSMode_MTLS_STRICT}},
		{"annotated strict (the default)", []*corev1.Service{mtlsService("a", api.MTLSStrict), mtlsService("b", "")},
			nil, map[string]weftv1.MTLSMode{"a": weftv1.MTLSMode_MTLS_STRICT}},
		{"service removed", []*corev1.Service{mtlsService("b", "")}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRouting(base)
			next, keys, all := r.Update(&api.Set{Services: tt.services})
			if all || !slices.Equal(keys, tt.wantKeys) {
				t.Errorf("Update: keys %v all %v, want %v", keys, all, tt.wantKeys)
			}
			for name, want := range tt.want {
				if got := next.Service(&mesh.Service{Name: name, Namespace: "default"}).GetMtlsMode(); got != want {
					t.Errorf("%s: mtls_mode %v, want %v", name, got, want)
				}
			}
			// And back: the first configuration's modes again.
			back, keys, _ := next.Update(base)
			if !slices.Equal(keys, tt.wantKeys) {
				t.Errorf("Update back: keys %v, want %v", keys, tt.wantKeys)
			}
			if got := back.Service(&mesh.Service{Name: "a", Namespace: "default"}).GetMtlsMode(); got != weftv1.MTLSMode_MTLS_STRICT {
				t.Errorf("back: a: mtls_mode %v, want STRICT", got)
			}
		})
	}
}
