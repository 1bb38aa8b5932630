package inject

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := Config{Image: "weft:test", Control: []string{"weft.weft-system.svc:15012"}, Version: "v0.1.0"}.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func namespace(name, inject string) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if inject != "" {
		ns.Labels = map[string]string{LabelInject: inject}
	}
	return ns
}

func basePod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orders-1", Namespace: "shop", Labels: map[string]string{"app": "orders"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: "orders:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			}},
		},
	}
}

func TestInjectDecision(t *testing.T) {
	cfg := testConfig(t)
	withLabel := func(v string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Labels[LabelInject] = v }
	}
	withAnnotation := func(k, v string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			if p.Annotations == nil {
				p.Annotations = map[string]string{}
			}
			p.Annotations[k] = v
		}
	}
	tests := []struct {
		name    string
		ns      *corev1.Namespace
		mutate  func(*corev1.Pod)
		inject  bool
		reason  string
		wantErr string
	}{
		{name: "namespace enabled", ns: namespace("shop", Enabled), inject: true},
		{name: "namespace disabled", ns: namespace("shop", Disabled), reason: SkipNotEnabled},
		{name: "namespace unlabelled", ns: namespace("shop", ""), reason: SkipNotEnabled},
		{name: "no namespace object", ns: nil, reason: SkipNotEnabled},
		{name: "pod label enables in unlabelled namespace", ns: namespace("shop", ""), mutate: withLabel(Enabled), inject: true},
		{name: "pod label enables in disabled namespace", ns: namespace("shop", Disabled), mutate: withLabel(Enabled), inject: true},
		{name: "pod label opts out", ns: namespace("shop", Enabled), mutate: withLabel(Disabled), reason: SkipPodDisabled},
		{name: "pod annotation opts out", ns: namespace("shop", Enabled), mutate: withAnnotation(LabelInject, Disabled), reason: SkipPodDisabled},
		{name: "pod annotation enables", ns: namespace("shop", Disabled), mutate: withAnnotation(LabelInject, Enabled), inject: true},
		{name: "pod label wins over annotation", ns: namespace("shop", Enabled), mutate: func(p *corev1.Pod) {
			withLabel(Disabled)(p)
			withAnnotation(LabelInject, Enabled)(p)
		}, reason: SkipPodDisabled},
		{name: "kube-system even when enabled", ns: namespace("kube-system", Enabled), mutate: withLabel(Enabled), reason: SkipSystemNamespace},
		{name: "host network", ns: namespace("shop", Enabled), mutate: func(p *corev1.Pod) { p.Spec.HostNetwork = true }, reason: SkipHostNetwork},
		{name: "windows pod", ns: namespace("shop", Enabled), mutate: func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} }, reason: SkipNotLinux},
		{name: "linux pod", ns: namespace("shop", Enabled), mutate: func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Linux} }, inject: true},
		{name: "already injected", ns: namespace("shop", Enabled), mutate: withAnnotation(AnnotationInjected, "v0.0.1"), reason: SkipInjected},
		{name: "app container named weft-proxy", ns: namespace("shop", Enabled), mutate: func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: ProxyContainer, Image: "x"})
		}, reason: SkipHasProxy},
		{name: "init container named weft-proxy", ns: namespace("shop", Enabled), mutate: func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: ProxyContainer, Image: "x"}}
		}, reason: SkipHasProxy},
		{name: "container named weft-init", ns: namespace("shop", Enabled), mutate: func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: InitContainer, Image: "x"}}
		}, reason: SkipHasProxy},
		{name: "bad pod label value", ns: namespace("shop", Enabled), mutate: withLabel("yes"), wantErr: `pod weft.dev/inject: "yes" is not "enabled" or "disabled"`},
		{name: "bad namespace label value", ns: namespace("shop", "true"), wantErr: `namespace shop label weft.dev/inject: "true"`},
		{name: "reserved volume name", ns: namespace("shop", Enabled), mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: TokenVolume}}
		}, wantErr: `volume "weft-token": the name is reserved`},
		{name: "bad service annotation", ns: namespace("shop", Enabled), mutate: withAnnotation(AnnotationService, "Orders_V2"), wantErr: "service name from annotation weft.dev/service"},
		{name: "bad app port annotation", ns: namespace("shop", Enabled), mutate: withAnnotation(AnnotationAppPort, "99999"), wantErr: `annotation weft.dev/app-port: "99999" is not a port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := basePod()
			if tt.mutate != nil {
				tt.mutate(pod)
			}
			before := pod.DeepCopy()
			got, reason, err := Inject(pod, tt.ns, cfg)
			if diff := cmp.Diff(before, pod); diff != "" {
				t.Errorf("Inject modified its input (-before +after):\n%s", diff)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.inject != (got != nil) {
				t.Fatalf("injected = %v (reason %q), want %v", got != nil, reason, tt.inject)
			}
			if reason != tt.reason {
				t.Errorf("reason = %q, want %q", reason, tt.reason)
			}
		})
	}
}

func TestInjectIdempotent(t *testing.T) {
	cfg := testConfig(t)
	ns := namespace("shop", Enabled)
	once, _, err := Inject(basePod(), ns, cfg)
	if err != nil || once == nil {
		t.Fatalf("first pass: %v, %v", once, err)
	}
	twice, reason, err := Inject(once, ns, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if twice != nil || reason != SkipInjected {
		t.Fatalf("second pass injected again (reason %q)", reason)
	}
}

func TestInjectShape(t *testing.T) {
	cfg := testConfig(t)
	pod := basePod()
	pod.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "migrate:1"}}
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "HTTP_PROXY", Value: "http://mine:3128"}}
	pod.Spec.ServiceAccountName = "orders-sa"
	got, _, err := Inject(pod, namespace("shop", Enabled), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Spec.InitContainers); n != 2 {
		t.Fatalf("%d init containers, want 2", n)
	}
	if name := got.Spec.InitContainers[1].Name; name != "migrate" {
		t.Errorf("second init container %q, want the pod's own migrate after the sidecar", name)
	}
	p := got.Spec.InitContainers[0]
	if p.Name != ProxyContainer || p.Image != "weft:test" {
		t.Fatalf("first init container %s %s, want %s weft:test", p.Name, p.Image, ProxyContainer)
	}
	if p.RestartPolicy == nil || *p.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("restartPolicy %v, want Always (a native sidecar)", p.RestartPolicy)
	}
	for name, pr := range map[string]*corev1.Probe{"startup": p.StartupProbe, "readiness": p.ReadinessProbe} {
		want := &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(15021), Scheme: corev1.URISchemeHTTP}
		if pr == nil || pr.HTTPGet == nil {
			t.Fatalf("%s probe %v, want httpGet /ready", name, pr)
		}
		if diff := cmp.Diff(want, pr.HTTPGet); diff != "" {
			t.Errorf("%s probe (-want +got):\n%s", name, diff)
		}
	}
	sc := p.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 1337 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("security context %+v, want uid 1337, non-root, no privilege escalation", sc)
	}
	wantRes := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	if !cmp.Equal(wantRes.Requests.Cpu().String(), p.Resources.Requests.Cpu().String()) ||
		p.Resources.Requests.Memory().Cmp(*wantRes.Requests.Memory()) != 0 ||
		p.Resources.Limits.Memory().Cmp(*wantRes.Limits.Memory()) != 0 || p.Resources.Limits.Cpu().Cmp(*wantRes.Limits.Cpu()) != 0 {
		t.Errorf("resources %+v, want %+v", p.Resources, wantRes)
	}
	args := strings.Join(p.Args, " ")
	for _, want := range []string{"proxy ", "--service orders ", "--app-port 8080", "--control weft.weft-system.svc:15012 ", "--sa-token-file /var/run/secrets/weft.dev/token", "--address $(POD_IP)", "--health-port 15021"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	env := map[string]string{}
	for _, e := range p.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	wantEnv := map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "SERVICE_ACCOUNT": "spec.serviceAccountName", "POD_IP": "status.podIP"}
	if diff := cmp.Diff(wantEnv, env); diff != "" {
		t.Errorf("downward API env (-want +got):\n%s", diff)
	}
	var mount *corev1.VolumeMount
	for i, m := range p.VolumeMounts {
		if m.Name == TokenVolume {
			mount = &p.VolumeMounts[i]
		}
	}
	if mount == nil || mount.MountPath != TokenDir || !mount.ReadOnly {
		t.Errorf("token mount %+v, want read-only at %s", mount, TokenDir)
	}
	var token *corev1.ServiceAccountTokenProjection
	for _, v := range got.Spec.Volumes {
		if v.Name == TokenVolume && v.Projected != nil && len(v.Projected.Sources) == 1 {
			token = v.Projected.Sources[0].ServiceAccountToken
		}
	}
	if token == nil || token.Audience != "weft" || token.ExpirationSeconds == nil || *token.ExpirationSeconds != 3600 || token.Path != "token" {
		t.Errorf("token projection %+v, want audience weft, 3600 s, path token", token)
	}
	if got.Annotations[AnnotationInjected] != "v0.1.0" {
		t.Errorf("annotation %s = %q, want v0.1.0", AnnotationInjected, got.Annotations[AnnotationInjected])
	}
	appEnv := map[string]string{}
	for _, e := range got.Spec.Containers[0].Env {
		appEnv[e.Name] = e.Value
	}
	if appEnv["HTTP_PROXY"] != "http://mine:3128" {
		t.Errorf("the app's own HTTP_PROXY was replaced by %q", appEnv["HTTP_PROXY"])
	}
	if appEnv["http_proxy"] != "http://127.0.0.1:15001" || appEnv["NO_PROXY"] != "localhost,127.0.0.1,::1" {
		t.Errorf("app env %v lacks the proxy's outbound listener", appEnv)
	}
}

func TestInjectServiceAndPort(t *testing.T) {
	cfg := testConfig(t)
	tests := []struct {
		name    string
		mutate  func(*corev1.Pod)
		service string
		appPort string // "" for none
	}{
		{name: "label app", service: "orders", appPort: "8080"},
		{name: "annotation wins", mutate: func(p *corev1.Pod) {
			p.Annotations = map[string]string{AnnotationService: "billing", AnnotationAppPort: "9090"}
			p.Labels["app.kubernetes.io/name"] = "other"
		}, service: "billing", appPort: "9090"},
		{name: "app.kubernetes.io/name over app", mutate: func(p *corev1.Pod) { p.Labels["app.kubernetes.io/name"] = "kname" }, service: "kname", appPort: "8080"},
		{name: "service account", mutate: func(p *corev1.Pod) {
			p.Labels = nil
			p.Spec.ServiceAccountName = "payments"
		}, service: "payments", appPort: "8080"},
		{name: "nothing: default, no ports: calls only", mutate: func(p *corev1.Pod) {
			p.Labels = nil
			p.Spec.Containers[0].Ports = nil
		}, service: "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := basePod()
			if tt.mutate != nil {
				tt.mutate(pod)
			}
			got, reason, err := Inject(pod, namespace("shop", Enabled), cfg)
			if err != nil || got == nil {
				t.Fatalf("not injected: %q %v", reason, err)
			}
			args := got.Spec.InitContainers[0].Args
			flag := func(name string) string {
				for i, a := range args {
					if a == name && i+1 < len(args) {
						return args[i+1]
					}
				}
				return ""
			}
			if s := flag("--service"); s != tt.service {
				t.Errorf("--service %q, want %q", s, tt.service)
			}
			if p := flag("--app-port"); p != tt.appPort {
				t.Errorf("--app-port %q, want %q", p, tt.appPort)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Image: "weft:1", Control: []string{"cp:15012"}}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{name: "valid"},
		{name: "no image", mutate: func(c *Config) { c.Image = "" }, wantErr: "image is required"},
		{name: "no control", mutate: func(c *Config) { c.Control = nil }, wantErr: "control: at least one"},
		{name: "control not host:port", mutate: func(c *Config) { c.Control = []string{"cp"} }, wantErr: `control: "cp" is not host:port`},
		{name: "control bad port", mutate: func(c *Config) { c.Control = []string{"cp:0"} }, wantErr: `control: "cp:0": "0" is not a port`},
		{name: "transparent", mutate: func(c *Config) { c.Mode = ModeTransparent }},
		{name: "transparent port clash", mutate: func(c *Config) { c.TransparentPort = 15006 }, wantErr: "transparent port: 15006 is also the inbound port"},
		{name: "unknown mode", mutate: func(c *Config) { c.Mode = "magic" }, wantErr: `mode: "magic" is not explicit or transparent`},
		{name: "port clash", mutate: func(c *Config) { c.HealthPort = 15020 }, wantErr: "health port: 15020 is also the admin port"},
		{name: "port out of range", mutate: func(c *Config) { c.InboundPort = 70000 }, wantErr: "inbound port: 70000 is not a port"},
		{name: "negative uid", mutate: func(c *Config) { c.ProxyUID = -1 }, wantErr: "proxy uid: -1 must be positive"},
		{name: "request over limit", mutate: func(c *Config) {
			c.Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
			}
		}, wantErr: "request memory 1Gi exceeds limit 128Mi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			if tt.mutate != nil {
				tt.mutate(&c)
			}
			err := c.Defaults().Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestInjectTransparent(t *testing.T) {
	cfg := Config{Image: "weft:test", Control: []string{"cp:15012"}, Mode: ModeTransparent}.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	got, _, err := Inject(basePod(), namespace("shop", Enabled), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Spec.InitContainers); n != 2 {
		t.Fatalf("%d init containers, want weft-init and weft-proxy", n)
	}
	in, proxy := got.Spec.InitContainers[0], got.Spec.InitContainers[1]
	if in.Name != InitContainer || proxy.Name != ProxyContainer {
		t.Fatalf("init containers %s, %s; want %s before %s", in.Name, proxy.Name, InitContainer, ProxyContainer)
	}
	if in.RestartPolicy != nil {
		t.Errorf("weft-init restartPolicy %v, want none: it runs once, to completion", *in.RestartPolicy)
	}
	sc := in.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.Privileged == nil || *sc.Privileged {
		t.Errorf("weft-init security context %+v, want root, unprivileged", sc)
	}
	if diff := cmp.Diff([]corev1.Capability{"NET_ADMIN", "NET_RAW"}, sc.Capabilities.Add); diff != "" {
		t.Errorf("weft-init capabilities (-want +got):\n%s", diff)
	}
	if want, args := "transparent-init --namespace $(POD_NAMESPACE) --service orders --proxy-uid 1337 --outbound-port 15002 --inbound-port 15006 --app-port 8080", strings.Join(in.Args, " "); args != want {
		t.Errorf("weft-init args %q, want %q", args, want)
	}
	if args := strings.Join(proxy.Args, " "); !strings.Contains(args, "--transparent --transparent-preinstalled --transparent-port 15002") {
		t.Errorf("proxy args %q lack the preinstalled transparent listener", args)
	}
	if *proxy.SecurityContext.RunAsUser != 1337 || len(proxy.SecurityContext.Capabilities.Add) != 0 {
		t.Errorf("proxy security context %+v, want uid 1337 and no capabilities", proxy.SecurityContext)
	}
	for _, e := range got.Spec.Containers[0].Env {
		if strings.EqualFold(e.Name, "http_proxy") {
			t.Errorf("transparent mode set %s on the app", e.Name)
		}
	}

	uid := int64(1337)
	for name, mutate := range map[string]func(*corev1.Pod){
		"pod":       func(p *corev1.Pod) { p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &uid} },
		"container": func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: &uid} },
	} {
		t.Run("app as the proxy's uid: "+name, func(t *testing.T) {
			pod := basePod()
			mutate(pod)
			if _, _, err := Inject(pod, namespace("shop", Enabled), cfg); err == nil || !strings.Contains(err.Error(), "runAsUser 1337 is the proxy's uid") {
				t.Fatalf("err = %v, want the uid clash refused", err)
			}
		})
	}
}
