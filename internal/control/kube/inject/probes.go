package inject

import (
	"encoding/json"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// AppProbe is an app's original HTTP probe, which the proxy's health port
// forwards kubelet's check to over loopback.
type AppProbe struct {
	// Port is the app container's port, named ports resolved.
	Port int32 `json:"port"`
	// Path is the probe's path with its query.
	Path string `json:"path,omitempty"`
	// Scheme is HTTP or HTTPS (certificate unchecked, as kubelet does).
	Scheme corev1.URIScheme `json:"scheme,omitempty"`
	// Headers are the probe's extra request headers.
	Headers []corev1.HTTPHeader `json:"httpHeaders,omitempty"`
}

// AppProbes maps "<container>/<probe>" (probe: liveness, readiness,
// startup) to the original probe; it is AnnotationAppProbes' JSON.
type AppProbes map[string]AppProbe

// Marshal is p's JSON, keys sorted.
func (p AppProbes) Marshal() (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encoding app probes: %w", err)
	}
	return string(b), nil
}

// ParseAppProbes decodes AnnotationAppProbes' JSON, checking each entry.
func ParseAppProbes(s string) (AppProbes, error) {
	var p AppProbes
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("app probes: %w", err)
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := p[k]
		if v.Port < 1 || v.Port > 65535 {
			return nil, fmt.Errorf("app probes: %q: port %d is not a port", k, v.Port)
		}
		if v.Scheme != "" && v.Scheme != corev1.URISchemeHTTP && v.Scheme != corev1.URISchemeHTTPS {
			return nil, fmt.Errorf("app probes: %q: scheme %q is not HTTP or HTTPS", k, v.Scheme)
		}
	}
	return p, nil
}

// rewriteProbes points the httpGet probes of pod's app containers at the
// proxy's health port, returning the originals. Exec, TCP and gRPC probes,
// and httpGet probes naming another host, are left as they are.
func rewriteProbes(pod *corev1.Pod, cfg Config) (AppProbes, error) {
	out := AppProbes{}
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
			out[key] = AppProbe{Port: port, Path: g.Path, Scheme: g.Scheme, Headers: g.HTTPHeaders}
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
