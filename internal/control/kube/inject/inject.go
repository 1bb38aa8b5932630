package inject

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Skip reasons Inject returns with a nil Pod.
const (
	SkipNotEnabled      = "injection not enabled for the pod or its namespace"
	SkipPodDisabled     = "pod opted out (" + LabelInject + "=" + Disabled + ")"
	SkipInjected        = "already injected"
	SkipHostNetwork     = "pod uses the host network"
	SkipSystemNamespace = "kube-system is never injected"
	SkipNotLinux        = "pod is not a Linux pod (spec.os.name)"
	SkipHasProxy        = "pod already has a container named " + ProxyContainer + " or " + InitContainer
)

// Inject decides whether pod, in namespace ns, gets the sidecar, and returns
// a mutated copy if so. A nil Pod comes with the reason it was skipped; an
// error means the Pod asks for something injection cannot do (the webhook
// refuses it, naming the cause). pod is not modified. cfg must be valid
// (Config.Defaults, Config.Validate).
func Inject(pod *corev1.Pod, ns *corev1.Namespace, cfg Config) (*corev1.Pod, string, error) {
	nsName := pod.Namespace
	if ns != nil {
		nsName = ns.Name
	}
	if nsName == "kube-system" {
		return nil, SkipSystemNamespace, nil
	}
	if _, ok := pod.Annotations[AnnotationInjected]; ok {
		return nil, SkipInjected, nil
	}
	on, err := enabled(pod, ns)
	if err != nil {
		return nil, "", err
	}
	if !on {
		if v, _ := podSetting(pod); v == Disabled {
			return nil, SkipPodDisabled, nil
		}
		return nil, SkipNotEnabled, nil
	}
	if pod.Spec.HostNetwork {
		return nil, SkipHostNetwork, nil
	}
	if pod.Spec.OS != nil && pod.Spec.OS.Name != corev1.Linux {
		return nil, SkipNotLinux, nil
	}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if c.Name == ProxyContainer || c.Name == InitContainer {
			// A sidecar added by hand, or a container that took the
			// name: either way a second one cannot be added.
			return nil, SkipHasProxy, nil
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name == TokenVolume || v.Name == CAVolume {
			return nil, "", fmt.Errorf("volume %q: the name is reserved for weft's sidecar", v.Name)
		}
	}

	service, err := ServiceName(pod)
	if err != nil {
		return nil, "", err
	}
	appPort, err := appPort(pod)
	if err != nil {
		return nil, "", err
	}

	if cfg.Mode == ModeTransparent {
		if err := checkUIDs(pod, cfg.ProxyUID); err != nil {
			return nil, "", err
		}
	}

	out := pod.DeepCopy()
	probes, err := rewriteProbes(out, cfg) // probes.go
	if err != nil {
		return nil, "", err
	}
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[AnnotationInjected] = cfg.Version
	if len(probes) > 0 {
		b, err := probes.Marshal()
		if err != nil {
			return nil, "", err
		}
		out.Annotations[AnnotationAppProbes] = b
	}
	if cfg.Mode == ModeExplicit {
		for i := range out.Spec.Containers {
			addProxyEnv(&out.Spec.Containers[i], cfg)
		}
	}
	first := []corev1.Container{proxyContainer(cfg, service, appPort, len(probes) > 0)}
	if cfg.Mode == ModeTransparent {
		first = append([]corev1.Container{initContainer(cfg, service, appPort)}, first...)
	}
	out.Spec.InitContainers = append(first, out.Spec.InitContainers...)
	out.Spec.Volumes = append(out.Spec.Volumes, volumes(cfg)...)
	return out, "", nil
}

// podSetting is the Pod's LabelInject, from its label, else its annotation.
func podSetting(pod *corev1.Pod) (string, bool) {
	if v, ok := pod.Labels[LabelInject]; ok {
		return v, true
	}
	v, ok := pod.Annotations[LabelInject]
	return v, ok
}

// enabled applies the Pod's setting, else the Namespace's.
func enabled(pod *corev1.Pod, ns *corev1.Namespace) (bool, error) {
	check := func(where, v string) (bool, error) {
		switch v {
		case Enabled:
			return true, nil
		case Disabled:
			return false, nil
		}
		return false, fmt.Errorf("%s %s: %q is not %q or %q", where, LabelInject, v, Enabled, Disabled)
	}
	if v, ok := podSetting(pod); ok {
		return check("pod", v)
	}
	if ns == nil {
		return false, nil
	}
	v, ok := ns.Labels[LabelInject]
	if !ok {
		return false, nil
	}
	return check("namespace "+ns.Name+" label", v)
}

// ServiceName is the mesh service of pod: its weft.dev/service annotation,
// else label app.kubernetes.io/name, else label app, else its service
// account. The injected sidecar joins it, and on Kubernetes it is the only
// service that sidecar may join (package podscope).
func ServiceName(pod *corev1.Pod) (string, error) {
	for _, c := range []struct{ where, v string }{
		{"annotation " + AnnotationService, pod.Annotations[AnnotationService]},
		{"label app.kubernetes.io/name", pod.Labels["app.kubernetes.io/name"]},
		{"label app", pod.Labels["app"]},
		{"service account", pod.Spec.ServiceAccountName},
	} {
		if c.v == "" {
			continue
		}
		if errs := validation.IsDNS1123Label(c.v); len(errs) > 0 {
			return "", fmt.Errorf("service name from %s: %q: %s", c.where, c.v, strings.Join(errs, "; "))
		}
		return c.v, nil
	}
	return "default", nil // the service account the API server assigns
}

// appPort is the port the app serves the mesh on, 0 for none.
func appPort(pod *corev1.Pod) (int32, error) {
	if s, ok := pod.Annotations[AnnotationAppPort]; ok {
		p, err := strconv.Atoi(s)
		if err != nil || p < 1 || p > 65535 {
			return 0, fmt.Errorf("annotation %s: %q is not a port", AnnotationAppPort, s)
		}
		return int32(p), nil
	}
	if len(pod.Spec.Containers) > 0 && len(pod.Spec.Containers[0].Ports) > 0 {
		return pod.Spec.Containers[0].Ports[0].ContainerPort, nil
	}
	return 0, nil
}

// addProxyEnv points c's HTTP and gRPC clients at the proxy's outbound
// listener, as `weft run` does, keeping any variable c already sets.
func addProxyEnv(c *corev1.Container, cfg Config) {
	url := "http://127.0.0.1:" + strconv.Itoa(int(cfg.OutboundPort))
	const noProxy = "localhost,127.0.0.1,::1"
	for _, e := range []corev1.EnvVar{
		{Name: "http_proxy", Value: url}, {Name: "HTTP_PROXY", Value: url},
		{Name: "https_proxy", Value: url}, {Name: "HTTPS_PROXY", Value: url},
		{Name: "grpc_proxy", Value: url},
		{Name: "no_proxy", Value: noProxy}, {Name: "NO_PROXY", Value: noProxy},
	} {
		found := false
		for _, have := range c.Env {
			if have.Name == e.Name {
				found = true
				break
			}
		}
		if !found {
			c.Env = append(c.Env, e)
		}
	}
}

// proxyContainer is the native sidecar.
func proxyContainer(cfg Config, service string, appPort int32, appProbes bool) corev1.Container {
	always := corev1.ContainerRestartPolicyAlways
	itoa := func(p int32) string { return strconv.Itoa(int(p)) }
	args := []string{
		"proxy",
		"--service", service,
		"--namespace", "$(POD_NAMESPACE)",
		"--service-account", "$(SERVICE_ACCOUNT)",
		"--control", strings.Join(cfg.Control, ","),
		"--ca-file", CADir + "/ca.pem",
		"--sa-token-file", TokenDir + "/token",
		"--address", "$(POD_IP)",
		"--inbound-port", itoa(cfg.InboundPort),
		"--outbound-port", itoa(cfg.OutboundPort),
		"--admin-port", itoa(cfg.AdminPort),
		"--health-port", itoa(cfg.HealthPort),
		"--log-format", "json",
	}
	if appPort != 0 {
		args = append(args, "--app-port", itoa(appPort))
	}
	if cfg.Mode == ModeTransparent {
		args = append(args, "--transparent", "--transparent-preinstalled", "--transparent-port", itoa(cfg.TransparentPort))
	}
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	env := []corev1.EnvVar{
		{Name: "POD_NAME", ValueFrom: field("metadata.name")},
		{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
		{Name: "SERVICE_ACCOUNT", ValueFrom: field("spec.serviceAccountName")},
		{Name: "POD_IP", ValueFrom: field("status.podIP")},
	}
	if appProbes {
		env = append(env, corev1.EnvVar{Name: "WEFT_APP_PROBES", ValueFrom: field("metadata.annotations['" + AnnotationAppProbes + "']")})
	}
	ready := func(failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/ready", Port: intstr.FromInt32(cfg.HealthPort), Scheme: corev1.URISchemeHTTP,
			}},
			PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: failures,
		}
	}
	yes, no := true, false
	uid := cfg.ProxyUID
	return corev1.Container{
		Name:            ProxyContainer,
		Image:           cfg.Image,
		ImagePullPolicy: cfg.ImagePullPolicy,
		Args:            args,
		Env:             env,
		Ports: []corev1.ContainerPort{
			{Name: "weft-inbound", ContainerPort: cfg.InboundPort, Protocol: corev1.ProtocolTCP},
			{Name: "weft-health", ContainerPort: cfg.HealthPort, Protocol: corev1.ProtocolTCP},
		},
		RestartPolicy: &always,
		// The kubelet starts the app containers only once the startup
		// probe passed: up to 120 s for the first certificate and config.
		StartupProbe:   ready(120),
		ReadinessProbe: ready(3),
		Resources:      *cfg.Resources.DeepCopy(),
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                &uid,
			RunAsGroup:               &uid,
			RunAsNonRoot:             &yes,
			AllowPrivilegeEscalation: &no,
			ReadOnlyRootFilesystem:   &yes,
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: TokenVolume, MountPath: TokenDir, ReadOnly: true},
			{Name: CAVolume, MountPath: CADir, ReadOnly: true},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

// volumes are the sidecar's token and trust bundle.
func volumes(cfg Config) []corev1.Volume {
	expiry := int64(3600)
	mode := int32(0o444)
	return []corev1.Volume{
		{Name: TokenVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			DefaultMode: &mode,
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: TokenAudience, ExpirationSeconds: &expiry, Path: "token",
			}}},
		}}},
		{Name: CAVolume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: cfg.CAConfigMap},
			Items:                []corev1.KeyToPath{{Key: "ca.pem", Path: "ca.pem"}},
		}}},
	}
}

// initContainer is transparent mode's capture step: it installs the
// iptables rules as root with NET_ADMIN and NET_RAW and exits before the
// proxy starts. Every uid but the proxy's is captured.
func initContainer(cfg Config, service string, appPort int32) corev1.Container {
	itoa := func(p int32) string { return strconv.Itoa(int(p)) }
	args := []string{
		"transparent-init",
		"--namespace", "$(POD_NAMESPACE)",
		"--service", service,
		"--proxy-uid", strconv.FormatInt(cfg.ProxyUID, 10),
		"--outbound-port", itoa(cfg.TransparentPort),
		"--inbound-port", itoa(cfg.InboundPort),
	}
	if appPort != 0 {
		args = append(args, "--app-port", itoa(appPort))
	}
	root, yes, no := int64(0), true, false
	return corev1.Container{
		Name:            InitContainer,
		Image:           cfg.Image,
		ImagePullPolicy: cfg.ImagePullPolicy,
		Args:            args,
		Env: []corev1.EnvVar{{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"},
		}}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                &root,
			RunAsGroup:               &root,
			RunAsNonRoot:             &no,
			Privileged:               &no,
			AllowPrivilegeEscalation: &no,
			ReadOnlyRootFilesystem:   &yes,
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

// checkUIDs refuses a pod whose containers run as the proxy's uid, which
// transparent capture never captures: their traffic would leave the pod
// around the mesh.
func checkUIDs(pod *corev1.Pod, proxyUID int64) error {
	if sc := pod.Spec.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == proxyUID {
		return fmt.Errorf("pod securityContext runAsUser %d is the proxy's uid, whose traffic transparent capture lets through", proxyUID)
	}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if sc := c.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == proxyUID {
			return fmt.Errorf("container %q runAsUser %d is the proxy's uid, whose traffic transparent capture lets through", c.Name, proxyUID)
		}
	}
	return nil
}
