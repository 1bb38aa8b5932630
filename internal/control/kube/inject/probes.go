package inject

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"weft.dev/weft/internal/appprobe"
)

// rewriteProbes points the httpGet probes (recorded as appprobe.Probes) of pod's app containers at the
// proxy's health port, returning the originals. Exec, TCP and gRPC probes,
// and httpGet probes naming another host, are left as they are.
func rewriteProbes(pod *corev1.Pod, cfg Config) (appprobe.Probes, error) {
	out := appprobe.Probes{}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		for _, pr := range []struct {
			kind  string
			probe *corev1.Probe
		}{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}, {"startup", c.StartupProbe}} {
			if pr.probe == nil || pr.probe.HTTPGet == nil || pr.probe.HTTPGet.Host != "" {
				continue
			}
			g := pr.probe.HTTPGet
			port, err := resolvePort(c, g.Port)
			if err != nil {
				return nil, fmt.Errorf("container %q %s probe: %w", c.Name, pr.kind, err)
			}
			key := c.Name + "/" + pr.kind
			rec := appprobe.Probe{Port: port, Path: g.Path, Scheme: string(g.Scheme)}
			for _, h := range g.HTTPHeaders {
				rec.Headers = append(rec.Headers, appprobe.Header{Name: h.Name, Value: h.Value})
			}
			out[key] = rec
			pr.probe.HTTPGet = &corev1.HTTPGetAction{
				Path:   AppHealthPrefix + key,
				Port:   intstr.FromInt32(cfg.HealthPort),
				Scheme: corev1.URISchemeHTTP,
			}
		}
	}
	return out, nil
}

// resolvePort is p as a number, a named port looked up in c's ports.
func resolvePort(c *corev1.Container, p intstr.IntOrString) (int32, error) {
	if p.Type == intstr.Int {
		if p.IntVal < 1 || p.IntVal > 65535 {
			return 0, fmt.Errorf("port %d is not a port", p.IntVal)
		}
		return p.IntVal, nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort, nil
		}
	}
	return 0, fmt.Errorf("port %q is not a named port of the container", p.StrVal)
}
