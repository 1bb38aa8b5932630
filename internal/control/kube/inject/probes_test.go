package inject

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"weft.dev/weft/internal/appprobe"
)

func httpProbe(port intstr.IntOrString, path string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: port, Path: path}}, PeriodSeconds: 7}
}

func TestRewriteProbes(t *testing.T) {
	cfg := testConfig(t)
	exec := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
	tcp := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}}
	grpc := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9000}}}
	otherHost := httpProbe(intstr.FromInt32(80), "/")
	otherHost.HTTPGet.Host = "10.0.0.1"

	pod := basePod()
	app := &pod.Spec.Containers[0]
	app.Ports = append(app.Ports, corev1.ContainerPort{Name: "admin", ContainerPort: 9901})
	app.LivenessProbe = httpProbe(intstr.FromInt32(8080), "/healthz?full=1")
	app.LivenessProbe.HTTPGet.HTTPHeaders = []corev1.HTTPHeader{{Name: "X-Probe", Value: "1"}}
	app.ReadinessProbe = httpProbe(intstr.FromString("admin"), "/ready")
	app.ReadinessProbe.HTTPGet.Scheme = corev1.URISchemeHTTPS
	app.StartupProbe = exec
	pod.Spec.Containers = append(pod.Spec.Containers,
		corev1.Container{Name: "worker", Image: "w", LivenessProbe: tcp, ReadinessProbe: grpc, StartupProbe: otherHost})

	got, _, err := Inject(pod, namespace("shop", Enabled), cfg)
	if err != nil {
		t.Fatal(err)
	}
	health := func(path string) *corev1.HTTPGetAction {
		return &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(15021), Scheme: corev1.URISchemeHTTP}
	}
	c := got.Spec.Containers[0]
	if diff := cmp.Diff(health("/app-health/app/liveness"), c.LivenessProbe.HTTPGet); diff != "" {
		t.Errorf("liveness (-want +got):\n%s", diff)
	}
	if c.LivenessProbe.PeriodSeconds != 7 {
		t.Errorf("liveness period %d, want the original 7", c.LivenessProbe.PeriodSeconds)
	}
	if diff := cmp.Diff(health("/app-health/app/readiness"), c.ReadinessProbe.HTTPGet); diff != "" {
		t.Errorf("readiness (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(exec, c.StartupProbe); diff != "" {
		t.Errorf("exec startup probe changed (-want +got):\n%s", diff)
	}
	w := got.Spec.Containers[1]
	for name, pair := range map[string][2]*corev1.Probe{"tcp": {tcp, w.LivenessProbe}, "grpc": {grpc, w.ReadinessProbe}, "other host": {otherHost, w.StartupProbe}} {
		if diff := cmp.Diff(pair[0], pair[1]); diff != "" {
			t.Errorf("%s probe changed (-want +got):\n%s", name, diff)
		}
	}
	recorded, err := appprobe.Parse(got.Annotations[AnnotationAppProbes])
	if err != nil {
		t.Fatal(err)
	}
	want := appprobe.Probes{
		"app/liveness":  {Port: 8080, Path: "/healthz?full=1", Headers: []appprobe.Header{{Name: "X-Probe", Value: "1"}}},
		"app/readiness": {Port: 9901, Path: "/ready", Scheme: "HTTPS"},
	}
	if diff := cmp.Diff(want, recorded); diff != "" {
		t.Errorf("recorded probes (-want +got):\n%s", diff)
	}
	var probesEnv bool
	for _, e := range got.Spec.InitContainers[0].Env {
		if e.Name == "WEFT_APP_PROBES" && e.ValueFrom != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['weft.dev/app-probes']" {
			probesEnv = true
		}
	}
	if !probesEnv {
		t.Error("the proxy gets no WEFT_APP_PROBES from the annotation")
	}
}

func TestRewriteProbesErrors(t *testing.T) {
	cfg := testConfig(t)
	tests := []struct {
		name    string
		probe   *corev1.Probe
		wantErr string
	}{
		{name: "unknown named port", probe: httpProbe(intstr.FromString("nope"), "/"), wantErr: `container "app" liveness probe: port "nope" is not a named port`},
		{name: "port zero", probe: httpProbe(intstr.FromInt32(0), "/"), wantErr: "port 0 is not a port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := basePod()
			pod.Spec.Containers[0].LivenessProbe = tt.probe
			_, _, err := Inject(pod, namespace("shop", Enabled), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
