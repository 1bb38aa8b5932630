// Package inject adds weft's sidecar to Kubernetes Pods: the pure decision
// and mutation (Inject), the JSONPatch that carries it (Patch), and the
// mutating admission webhook that serves it (Handler).
//
// The sidecar is a native sidecar: an init container named weft-proxy with
// restartPolicy Always (Kubernetes 1.29 and later). The kubelet starts it
// before the app containers and waits for its startup probe, so the app
// starts only once the proxy is ready, and it stops it after them, so a
// Job's Pod completes when its app does. See docs/kubernetes/injection.md.
package inject

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"weft.dev/weft/internal/appprobe"
)

// Names of what injection reads and writes.
const (
	// LabelInject, on a Namespace or a Pod (label or annotation), is
	// "enabled" or "disabled". The Pod's setting overrides its
	// Namespace's.
	LabelInject = "weft.dev/inject"
	// AnnotationInjected records that a Pod was injected, with the
	// injector's version; a Pod that has it is never injected again.
	AnnotationInjected = "weft.dev/injected"
	// AnnotationAppProbes holds the app's original HTTP probes, as JSON
	// (appprobe.Probes), for the proxy to forward kubelet's checks to; the
	// proxy gets it as WEFT_APP_PROBES.
	AnnotationAppProbes = "weft.dev/app-probes"
	// AnnotationService names the mesh service of the Pod (default: label
	// app.kubernetes.io/name, else label app, else the service account).
	AnnotationService = "weft.dev/service"
	// AnnotationAppPort is the port the app serves the mesh on (default:
	// the first container port of the first container; none: a workload
	// that only calls).
	AnnotationAppPort = "weft.dev/app-port"

	// Enabled and Disabled are the values of LabelInject.
	Enabled  = "enabled"
	Disabled = "disabled"

	// ProxyContainer is the name of the native sidecar.
	ProxyContainer = "weft-proxy"
	// InitContainer is the name of the capture step of transparent mode.
	InitContainer = "weft-init"
	// TokenVolume holds the projected service account token (audience
	// TokenAudience) mounted read-only at TokenDir.
	TokenVolume   = "weft-token"
	TokenDir      = "/var/run/secrets/weft.dev"
	TokenAudience = "weft"
	// CAVolume holds the trust bundle, key ca.pem of Config.CAConfigMap,
	// mounted read-only at CADir.
	CAVolume = "weft-ca"
	CADir    = "/var/run/weft.dev/ca"

	// AppHealthPrefix is the path prefix of the rewritten app probes on
	// the proxy's health port: /app-health/<container>/<probe>.
	AppHealthPrefix = appprobe.PathPrefix
)

// Mode is how the app's traffic reaches the proxy.
type Mode string

// The modes of Config.Mode.
const (
	// ModeExplicit points the app's HTTP_PROXY-style environment at the
	// proxy's outbound listener, as `weft run` does.
	ModeExplicit Mode = "explicit"
	// ModeTransparent captures the app's TCP with iptables rules that the
	// weft-init container (`weft transparent-init`, NET_ADMIN, as root)
	// installs before the proxy starts; the proxy itself stays
	// unprivileged (`--transparent-preinstalled`).
	ModeTransparent Mode = "transparent"
)

// Config is what the injector adds. The zero value of every field but
// Image and Control has a default (Defaults).
type Config struct {
	// Image is the weft image the sidecar runs (required).
	Image string
	// ImagePullPolicy of the sidecar (default: Kubernetes' own).
	ImagePullPolicy corev1.PullPolicy
	// Control are the control plane's xDS addresses host:port, e.g.
	// weft.weft-system.svc:15012 (required; several replicas fail over).
	Control []string
	// CAConfigMap is the ConfigMap, in the Pod's namespace, whose key
	// ca.pem is the trust bundle (default weft-ca-root).
	CAConfigMap string
	// Mode is explicit (the default) or transparent.
	Mode Mode
	// ProxyUID is the uid (and gid) the proxy runs as (default 1337); it
	// is the uid transparent capture excludes, so no app may use it.
	ProxyUID int64
	// Ports of the proxy: inbound mTLS (default 15006), outbound on
	// loopback (15001), admin on loopback (15020), health on the pod IP
	// (15021: /ready and the rewritten app probes) and, in transparent
	// mode, the transparent listener on loopback (15002).
	InboundPort, OutboundPort, AdminPort, HealthPort, TransparentPort int32
	// Resources of the proxy (default requests cpu 100m, memory 64Mi;
	// limits cpu 1, memory 256Mi).
	Resources corev1.ResourceRequirements
	// Version is written to AnnotationInjected (default "dev").
	Version string
}

// Defaults returns c with every unset field defaulted.
func (c Config) Defaults() Config {
	if c.CAConfigMap == "" {
		c.CAConfigMap = "weft-ca-root"
	}
	if c.Mode == "" {
		c.Mode = ModeExplicit
	}
	if c.ProxyUID == 0 {
		c.ProxyUID = 1337
	}
	for _, p := range []struct {
		v   *int32
		def int32
	}{{&c.InboundPort, 15006}, {&c.OutboundPort, 15001}, {&c.AdminPort, 15020}, {&c.HealthPort, 15021}, {&c.TransparentPort, 15002}} {
		if *p.v == 0 {
			*p.v = p.def
		}
	}
	if c.Resources.Requests == nil && c.Resources.Limits == nil {
		c.Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		}
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	return c
}

// Validate checks a defaulted Config, naming the offending field.
func (c Config) Validate() error {
	if c.Image == "" {
		return errors.New("inject config: image is required")
	}
	if len(c.Control) == 0 {
		return errors.New("inject config: control: at least one xDS address is required")
	}
	for _, a := range c.Control {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			return fmt.Errorf("inject config: control: %q is not host:port", a)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("inject config: control: %q: %q is not a port", a, port)
		}
	}
	switch c.Mode {
	case ModeExplicit, ModeTransparent:
	default:
		return fmt.Errorf("inject config: mode: %q is not explicit or transparent", c.Mode)
	}
	if c.ProxyUID < 1 {
		return fmt.Errorf("inject config: proxy uid: %d must be positive (the proxy runs as non-root)", c.ProxyUID)
	}
	seen := map[int32]string{}
	for _, p := range []struct {
		name string
		v    int32
	}{{"inbound port", c.InboundPort}, {"outbound port", c.OutboundPort}, {"admin port", c.AdminPort}, {"health port", c.HealthPort}, {"transparent port", c.TransparentPort}} {
		if p.v < 1 || p.v > 65535 {
			return fmt.Errorf("inject config: %s: %d is not a port", p.name, p.v)
		}
		if other, ok := seen[p.v]; ok {
			return fmt.Errorf("inject config: %s: %d is also the %s", p.name, p.v, other)
		}
		seen[p.v] = p.name
	}
	for name, l := range map[string]corev1.ResourceList{"requests": c.Resources.Requests, "limits": c.Resources.Limits} {
		for r, q := range l {
			if q.Sign() < 0 {
				return fmt.Errorf("inject config: resources: %s %s: %s is negative", name, r, q.String())
			}
		}
	}
	for r, req := range c.Resources.Requests {
		if lim, ok := c.Resources.Limits[r]; ok && req.Cmp(lim) > 0 {
			return fmt.Errorf("inject config: resources: request %s %s exceeds limit %s", r, req.String(), lim.String())
		}
	}
	return nil
}
