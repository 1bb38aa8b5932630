package install

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"weft.dev/weft/internal/control/kube/crd"
	"weft.dev/weft/internal/control/seal"
)

// kinds counts objs by kind.
func kinds(objs []runtime.Object) map[string]int {
	n := map[string]int{}
	for _, o := range objs {
		n[o.GetObjectKind().GroupVersionKind().Kind]++
	}
	return n
}

func TestRenderKinds(t *testing.T) {
	crds, err := crd.All()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want map[string]int
	}{
		{"default", Options{}, map[string]int{
			"CustomResourceDefinition": len(crds), "Namespace": 1, "ServiceAccount": 2,
			"ClusterRole": 3, "ClusterRoleBinding": 3, "Role": 1, "RoleBinding": 1,
			"Secret": 2, "Service": 2, "Deployment": 2, "PodDisruptionBudget": 2, "MutatingWebhookConfiguration": 1,
			"ValidatingWebhookConfiguration": 1,
		}},
		{"no injection webhook", Options{NoWebhook: true}, map[string]int{
			"CustomResourceDefinition": len(crds), "Namespace": 1, "ServiceAccount": 1,
			"ClusterRole": 2, "ClusterRoleBinding": 2, "Role": 1, "RoleBinding": 1,
			"Secret": 2, "Service": 1, "Deployment": 1, "PodDisruptionBudget": 1, "ValidatingWebhookConfiguration": 1,
		}},
		{"no webhooks", Options{NoWebhook: true, NoValidation: true}, map[string]int{
			"CustomResourceDefinition": len(crds), "Namespace": 1, "ServiceAccount": 1,
			"ClusterRole": 2, "ClusterRoleBinding": 2, "Role": 1, "RoleBinding": 1,
			"Secret": 1, "Service": 1, "Deployment": 1, "PodDisruptionBudget": 1,
		}},
		{"one watched namespace", Options{WatchNamespace: "shop"}, map[string]int{
			"CustomResourceDefinition": len(crds), "Namespace": 1, "ServiceAccount": 2,
			"ClusterRole": 2, "ClusterRoleBinding": 2, "Role": 2, "RoleBinding": 2,
			"Secret": 2, "Service": 2, "Deployment": 2, "PodDisruptionBudget": 2, "MutatingWebhookConfiguration": 1,
			"ValidatingWebhookConfiguration": 1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Render(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := kinds(objs)
			for k, n := range tt.want {
				if got[k] != n {
					t.Errorf("%d %s, want %d", got[k], k, n)
				}
			}
			for k := range got {
				if _, ok := tt.want[k]; !ok {
					t.Errorf("unexpected kind %s", k)
				}
			}
			// Order: CRDs first, webhook configuration last.
			for i := range crds {
				if k := objs[i].GetObjectKind().GroupVersionKind().Kind; k != "CustomResourceDefinition" {
					t.Fatalf("object %d is a %s, want the CRDs first", i, k)
				}
			}
			if k := objs[len(objs)-1].GetObjectKind().GroupVersionKind().Kind; !tt.opts.NoValidation && k != "ValidatingWebhookConfiguration" {
				t.Errorf("last object is a %s, want the webhook configuration", k)
			}
		})
	}
}

func TestRenderWorkloads(t *testing.T) {
	objs, err := Render(Options{Replicas: 3, Image: "example.com/weft:v9", Namespace: "mesh"})
	if err != nil {
		t.Fatal(err)
	}
	var deps int
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.Deployment:
			deps++
			if *o.Spec.Replicas != 3 {
				t.Errorf("%s: %d replicas, want 3", o.Name, *o.Spec.Replicas)
			}
			c := o.Spec.Template.Spec.Containers[0]
			if c.Image != "example.com/weft:v9" || c.ReadinessProbe == nil || c.Resources.Requests.Cpu().IsZero() {
				t.Errorf("%s: image %q, probe %v, requests %v", o.Name, c.Image, c.ReadinessProbe, c.Resources.Requests)
			}
			sc := c.SecurityContext
			if !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: security context %+v", o.Name, sc)
			}
			if o.Spec.Template.Spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
				t.Errorf("%s: no anti-affinity by host name", o.Name)
			}
			if o.Name == Control {
				args := strings.Join(c.Args, " ")
				for _, want := range []string{"--store kubernetes", "--system-namespace mesh", "--seal-key-file " + sealFile,
					"--admission-listen :9443", "--admission-tls-cert " + tlsMount + "/tls.crt"} {
					if !strings.Contains(args, want) {
						t.Errorf("control args %q lack %q", args, want)
					}
				}
			}
		case *policyv1.PodDisruptionBudget:
			if o.Spec.MinAvailable.IntValue() != 1 {
				t.Errorf("%s: minAvailable %v", o.Name, o.Spec.MinAvailable)
			}
		case *corev1.Secret:
			if o.Name == SealSecret {
				checkSealKey(t, o.Data["seal.key"])
			}
			if o.Name == WebhookTLSSecret {
				checkWebhookCert(t, o, "weft-inject.mesh.svc")
				checkWebhookCert(t, o, "weft-control.mesh.svc")
			}
		}
	}
	if deps != 2 {
		t.Errorf("%d Deployments, want 2", deps)
	}
	if _, err := Render(Options{}); err != nil {
		t.Fatal(err)
	}
}

// checkSealKey checks that weft control --seal-key-file reads key.
func checkSealKey(t *testing.T, key []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "seal.key")
	if err := os.WriteFile(f, key, 0o600); err != nil {
		t.Fatal(err)
	}
	k, created, err := seal.LoadOrCreateKey(f)
	if err != nil || created || len(k) != seal.KeySize {
		t.Errorf("seal key %q: %d bytes, created %v, %v", key, len(k), created, err)
	}
}

// checkWebhookCert verifies the serving certificate against its CA for
// name.
func checkWebhookCert(t *testing.T, s *corev1.Secret, name string) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.Data["ca.crt"]) {
		t.Fatal("ca.crt: no certificate")
	}
	b, _ := pem.Decode(s.Data["tls.crt"])
	if b == nil {
		t.Fatal("tls.crt: no PEM")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("webhook certificate for %s: %v", name, err)
	}
	if d := cert.NotAfter.Sub(cert.NotBefore); d < 364*24*3600e9 || d > 367*24*3600e9 {
		t.Errorf("certificate lifetime %v, want a year", d)
	}
}

// TestRBACLeastPrivilege: no wildcard, no cluster-wide Secret grant but
// the list/watch one kept apart, Secrets written only in the system
// namespace.
func TestRBACLeastPrivilege(t *testing.T) {
	for _, opts := range []Options{{}, {WatchNamespace: "shop"}} {
		objs, err := Render(opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			var rules []rbacv1.PolicyRule
			var name, ns string
			switch o := o.(type) {
			case *rbacv1.ClusterRole:
				rules, name = o.Rules, o.Name
			case *rbacv1.Role:
				rules, name, ns = o.Rules, o.Name, o.Namespace
			default:
				continue
			}
			for _, r := range rules {
				for _, f := range [][]string{r.Verbs, r.Resources, r.APIGroups} {
					for _, v := range f {
						if strings.Contains(v, "*") {
							t.Errorf("%s: wildcard %q in %+v", name, v, r)
						}
					}
				}
				if !containsString(r.Resources, "secrets") {
					continue
				}
				switch {
				case ns == DefaultNamespace && name == Control:
				case name == GatewaySecretsRole:
					if strings.Join(r.Verbs, ",") != "list,watch" {
						t.Errorf("%s: secrets verbs %v, want list,watch", name, r.Verbs)
					}
					if ns == "" && opts.WatchNamespace != "" {
						t.Errorf("%s is cluster-wide with a watched namespace", name)
					}
				default:
					t.Errorf("%s (namespace %q) grants secrets %v", name, ns, r.Verbs)
				}
			}
		}
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"bad namespace", Options{Namespace: "Weft_System"}, "namespace"},
		{"negative replicas", Options{Replicas: -1}, "replicas"},
		{"image with spaces", Options{Image: "a b"}, "image"},
		{"bad watch namespace", Options{WatchNamespace: "x/y"}, "watch namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestWriteYAML(t *testing.T) {
	objs, err := Render(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, objs); err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(strings.TrimPrefix(buf.String(), "---\n"), "\n---\n")
	if len(docs) != len(objs) {
		t.Fatalf("%d documents, want %d", len(docs), len(objs))
	}
	for i, d := range docs {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if m["kind"] != objs[i].GetObjectKind().GroupVersionKind().Kind {
			t.Errorf("document %d is a %v, want %s", i, m["kind"], objs[i].GetObjectKind().GroupVersionKind().Kind)
		}
		if _, ok := m["status"]; ok {
			t.Errorf("document %d (%v) has a status", i, m["kind"])
		}
	}
	if err := Write(&buf, nil); err == nil {
		t.Error("Write of no objects: no error")
	}
}
