package install

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"weft.dev/weft/internal/control/kube/crd"
	"weft.dev/weft/internal/control/kube/inject"
	"weft.dev/weft/internal/control/kube/validation"
	"weft.dev/weft/internal/control/seal"
)

// Paths inside the containers.
const (
	sealMount = "/etc/weft/seal"
	sealFile  = sealMount + "/seal.key"
	tlsMount  = "/etc/weft/tls"
	dataDir   = "/var/lib/weft"
)

func crdObjects() ([]runtime.Object, error) {
	crds, err := crd.All()
	if err != nil {
		return nil, fmt.Errorf("reading the CRDs: %w", err)
	}
	out := make([]runtime.Object, 0, len(crds))
	for _, c := range crds {
		c.APIVersion, c.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
		out = append(out, c)
	}
	return out, nil
}

func namespace(o Options) *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		// The control plane's own Pods are never injected.
		ObjectMeta: metav1.ObjectMeta{Name: o.Namespace, Labels: map[string]string{
			"app.kubernetes.io/part-of": "weft", inject.LabelInject: inject.Disabled}},
	}
}

// sealKeySecret holds seal.KeySize random bytes, as hex on one line (the
// format of --seal-key-file), that seal the state the replicas share in
// the store. It is immutable: applying a later `weft install`, which
// renders a new key, over a running installation is refused by the API
// server instead of leaving the replicas unable to unseal the CA root.
func sealKeySecret(o Options) (*corev1.Secret, error) {
	key := make([]byte, seal.KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(o, SealSecret),
		Type:       corev1.SecretTypeOpaque,
		Immutable:  ptr(true),
		Data:       map[string][]byte{"seal.key": []byte(hex.EncodeToString(key) + "\n")},
	}, nil
}

// selector selects the Pods of the component name.
func selector(name string) map[string]string {
	return map[string]string{"app.kubernetes.io/name": name}
}

func controlService(o Options) *corev1.Service {
	ports := []corev1.ServicePort{
		{Name: "grpc-xds", Port: XDSPort, TargetPort: intstr.FromString("xds")},
		{Name: "https-api", Port: APIPort, TargetPort: intstr.FromString("api")},
	}
	if !o.NoValidation {
		ports = append(ports, corev1.ServicePort{Name: "https-admission", Port: 443, TargetPort: intstr.FromString("admission")})
	}
	return service(o, Control, ports)
}

func injectService(o Options) *corev1.Service {
	return service(o, Inject, []corev1.ServicePort{
		{Name: "https-webhook", Port: 443, TargetPort: intstr.FromString("webhook")},
	})
}

func service(o Options, name string, ports []corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(o, name),
		Spec:       corev1.ServiceSpec{Selector: selector(name), Ports: ports},
	}
}

// controlArgs are the control plane's arguments (the image's entrypoint
// is weft).
func controlArgs(o Options) []string {
	args := []string{"control", "--store", "kubernetes", "--identity", "kubernetes", "--system-namespace", o.Namespace,
		"--seal-key-file", sealFile, "--data-dir", dataDir,
		"--listen", "0.0.0.0:" + strconv.Itoa(XDSPort), "--api-listen", "0.0.0.0:" + strconv.Itoa(APIPort),
		"--log-format", "json"}
	if o.WatchNamespace != "" {
		args = append(args, "--watch-namespace", o.WatchNamespace)
	}
	if !o.NoValidation {
		args = append(args, "--admission-listen", ":"+strconv.Itoa(WebhookPort),
			"--admission-tls-cert", tlsMount+"/tls.crt", "--admission-tls-key", tlsMount+"/tls.key")
	}
	return args
}

// XDSAddress is the address sidecars dial.
func XDSAddress(o Options) string {
	return fmt.Sprintf("%s.%s.svc:%d", Control, o.Namespace, XDSPort)
}

func injectArgs(o Options) []string {
	return []string{"inject-webhook", "--image", o.Image, "--xds", XDSAddress(o),
		"--listen", ":" + strconv.Itoa(WebhookPort),
		"--tls-cert", tlsMount + "/tls.crt", "--tls-key", tlsMount + "/tls.key", "--log-format", "json"}
}

func controlDeployment(o Options) *appsv1.Deployment {
	ports := []corev1.ContainerPort{{Name: "xds", ContainerPort: XDSPort}, {Name: "api", ContainerPort: APIPort}}
	if !o.NoValidation {
		ports = append(ports, corev1.ContainerPort{Name: "admission", ContainerPort: WebhookPort})
	}
	c := container(o, "control", controlArgs(o), ports)
	// The control plane serves gRPC over mTLS on xds; a TCP probe is the
	// readiness it offers without a client certificate.
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("xds")}},
		PeriodSeconds: 5, FailureThreshold: 3}
	c.VolumeMounts = []corev1.VolumeMount{
		{Name: "seal-key", MountPath: sealMount, ReadOnly: true},
		{Name: "data", MountPath: dataDir},
		{Name: "tmp", MountPath: "/tmp"},
	}
	d := deployment(o, Control, c)
	d.Spec.Template.Spec.Volumes = []corev1.Volume{
		{Name: "seal-key", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: SealSecret, DefaultMode: ptr(int32(0o400))}}},
		{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	if !o.NoValidation {
		c := &d.Spec.Template.Spec.Containers[0]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "tls", MountPath: tlsMount, ReadOnly: true})
		d.Spec.Template.Spec.Volumes = append(d.Spec.Template.Spec.Volumes, tlsVolume())
	}
	return d
}

// tlsVolume is the webhooks' certificate Secret, readable by the owner.
func tlsVolume() corev1.Volume {
	return corev1.Volume{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: WebhookTLSSecret, DefaultMode: ptr(int32(0o400))}}}
}

func injectDeployment(o Options) *appsv1.Deployment {
	c := container(o, "webhook", injectArgs(o), []corev1.ContainerPort{{Name: "webhook", ContainerPort: WebhookPort}})
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: "/ready", Port: intstr.FromString("webhook"), Scheme: corev1.URISchemeHTTPS}}, PeriodSeconds: 5, FailureThreshold: 3}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "tls", MountPath: tlsMount, ReadOnly: true}}
	d := deployment(o, Inject, c)
	d.Spec.Template.Spec.Volumes = []corev1.Volume{tlsVolume()}
	return d
}

func container(o Options, name string, args []string, ports []corev1.ContainerPort) corev1.Container {
	return corev1.Container{
		Name: name, Image: o.Image, Args: args, Ports: ports,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(65532)), RunAsGroup: ptr(int64(65532)),
			ReadOnlyRootFilesystem: ptr(true), AllowPrivilegeEscalation: ptr(false),
			Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}

func deployment(o Options, name string, c corev1.Container) *appsv1.Deployment {
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(o, name),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(o.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: selector(name)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels(name)},
				Spec: corev1.PodSpec{
					ServiceAccountName: name,
					Containers:         []corev1.Container{c},
					// Replicas on different nodes where there are nodes
					// enough: one node's loss keeps the rest serving.
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
							Weight: 100,
							PodAffinityTerm: corev1.PodAffinityTerm{
								LabelSelector: &metav1.LabelSelector{MatchLabels: selector(name)},
								TopologyKey:   "kubernetes.io/hostname",
							},
						}},
					}},
				},
			},
		},
	}
}

// pdb keeps one replica of name running through voluntary disruptions
// (node drains).
func pdb(o Options, name string) *policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: meta(o, name),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &one,
			Selector:     &metav1.LabelSelector{MatchLabels: selector(name)},
		},
	}
}

// webhookConfiguration is inject.WebhookConfiguration pointed at the
// webhook's Service instead of a URL.
func webhookConfiguration(o Options, caPEM []byte) *admissionregistrationv1.MutatingWebhookConfiguration {
	wc := inject.WebhookConfiguration(Inject, "https://unused", caPEM)
	for i := range wc.Webhooks {
		wc.Webhooks[i].ClientConfig.URL = nil
		wc.Webhooks[i].ClientConfig.Service = &admissionregistrationv1.ServiceReference{
			Namespace: o.Namespace, Name: Inject, Path: ptr("/inject"), Port: ptr(int32(443))}
	}
	return wc
}

// validatingConfiguration is validation.WebhookConfiguration pointed at
// the control plane's Service.
func validatingConfiguration(o Options, caPEM []byte) *admissionregistrationv1.ValidatingWebhookConfiguration {
	wc := validation.WebhookConfiguration(Validate, "https://unused", caPEM)
	for i := range wc.Webhooks {
		wc.Webhooks[i].ClientConfig.URL = nil
		wc.Webhooks[i].ClientConfig.Service = &admissionregistrationv1.ServiceReference{
			Namespace: o.Namespace, Name: Control, Path: ptr(validation.Path), Port: ptr(int32(443))}
	}
	return wc
}

func ptr[T any](v T) *T { return &v }
