package install

import (
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "../../charts/weft"

// TestChartCRDsUpToDate: charts/weft/crds holds exactly package crd's
// files (go generate ./internal/install rewrites it).
func TestChartCRDsUpToDate(t *testing.T) {
	want, err := ChartCRDs()
	if err != nil {
		t.Fatal(err)
	}
	got, err := filepath.Glob(filepath.Join(chartDir, "crds", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d files in charts/weft/crds, want %d: run go generate ./internal/install", len(got), len(want))
	}
	for _, f := range got {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if w, ok := want[filepath.Base(f)]; !ok || !bytes.Equal(b, w) {
			t.Errorf("%s differs from package crd's (known %v): run go generate ./internal/install", f, ok)
		}
	}
}

// helmBinary is $WEFT_HELM, else the cached helm next to the test
// API server's binaries; the test skips without one unless
// WEFT_REQUIRE_HELM=1.
func helmBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("WEFT_HELM")
	if bin == "" {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, ".cache", "weft", "kube-v1.37.2", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("WEFT_REQUIRE_HELM") == "1" {
			t.Fatalf("no helm binary: %v (WEFT_REQUIRE_HELM=1; set WEFT_HELM)", err)
		}
		t.Skipf("no helm binary (%v); set WEFT_HELM", err)
	}
	return bin
}

// docs splits a YAML stream into objects keyed kind/namespace/name.
func docs(t *testing.T, b []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, d := range strings.Split("\n"+string(b), "\n---") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("parsing %q: %v", d[:min(len(d), 200)], err)
		}
		if m == nil {
			continue
		}
		md, _ := m["metadata"].(map[string]any)
		key := m["kind"].(string) + "/" + str(md["namespace"]) + "/" + str(md["name"])
		if _, dup := out[key]; dup {
			t.Fatalf("%s twice", key)
		}
		out[key] = m
	}
	return out
}

func str(v any) string { s, _ := v.(string); return s }

// normalize drops what legitimately differs between two renderings:
// generated secrets and certificates, and the chart's pod template
// annotations (checksums that restart Pods on upgrade).
func normalize(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	switch m["kind"] {
	case "Secret":
		data := m["data"].(map[string]any)
		for k := range data {
			data[k] = "<generated>"
		}
	case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
		for _, h := range m["webhooks"].([]any) {
			cc := h.(map[string]any)["clientConfig"].(map[string]any)
			if str(cc["caBundle"]) == "" {
				t.Errorf("webhook %v: no caBundle", h.(map[string]any)["name"])
			}
			cc["caBundle"] = "<generated>"
		}
	case "Deployment":
		tm := m["spec"].(map[string]any)["template"].(map[string]any)["metadata"].(map[string]any)
		delete(tm, "annotations")
	}
	return m
}

func TestHelmChartRendersTheSameObjects(t *testing.T) {
	helm := helmBinary(t)
	if out, err := exec.Command(helm, "lint", "--strict", chartDir).CombinedOutput(); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	tests := []struct {
		name string
		opts Options
		set  []string
	}{
		{"defaults", Options{}, nil},
		{"everything set", Options{Namespace: "mesh", Replicas: 3, Image: "example.com/weft:v9", NoWebhook: true, WatchNamespace: "shop"},
			[]string{"namespace=mesh", "replicas=3", "image=example.com/weft:v9", "webhook.enabled=false", "watchNamespace=shop"}},
		{"no webhooks", Options{NoWebhook: true, NoValidation: true}, []string{"webhook.enabled=false", "validation.enabled=false"}},
		{"validation only off", Options{NoValidation: true}, []string{"validation.enabled=false"}},
		{"webhook in another namespace", Options{Namespace: "mesh"}, []string{"namespace=mesh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"template", "weft", chartDir, "--include-crds"}
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			out, err := exec.Command(helm, args...).Output()
			if err != nil {
				t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
			}
			got := docs(t, out)
			opts := tt.opts
			if opts.Image == "" {
				opts.Image = "weft.dev/weft:latest" // the chart's appVersion
			}
			objs, err := Render(opts)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := Write(&buf, objs); err != nil {
				t.Fatal(err)
			}
			want := docs(t, buf.Bytes())
			if g, w := sortedKeys(got), sortedKeys(want); !reflect.DeepEqual(g, w) {
				t.Fatalf("helm renders\n  %s\nweft install renders\n  %s", strings.Join(g, "\n  "), strings.Join(w, "\n  "))
			}
			ns := opts.Defaults().Namespace
			checkSealKey(t, b64(t, got["Secret/"+ns+"/"+SealSecret]["data"].(map[string]any)["seal.key"]))
			if !opts.NoWebhook {
				checkHelmCert(t, got["Secret/"+ns+"/"+WebhookTLSSecret], got["MutatingWebhookConfiguration//"+Inject], WebhookDNSNames(opts.Defaults())[0])
			}
			if !opts.NoValidation {
				checkHelmCert(t, got["Secret/"+ns+"/"+WebhookTLSSecret], got["ValidatingWebhookConfiguration//"+Validate], Control+"."+ns+".svc")
			}
			for key, w := range want {
				if strings.HasPrefix(key, "CustomResourceDefinition/") {
					continue // same files: TestChartCRDsUpToDate
				}
				g := got[key]
				gj, _ := yaml.Marshal(normalize(t, g))
				wj, _ := yaml.Marshal(normalize(t, w))
				if !bytes.Equal(gj, wj) {
					t.Errorf("%s differs:\nhelm:\n%s\nweft install:\n%s", key, gj, wj)
				}
			}
		})
	}
	t.Run("bad values", func(t *testing.T) {
		for _, set := range []string{"replicas=0", "namespace=Bad_NS"} {
			out, err := exec.Command(helm, "template", "weft", chartDir, "--set", set).CombinedOutput()
			if err == nil || !strings.Contains(string(out), strings.Split(set, "=")[0]) {
				t.Errorf("--set %s: %v, output %s; want an error naming the value", set, err, out)
			}
		}
	})
}

func b64(t *testing.T, v any) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(str(v))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkHelmCert verifies the chart's webhook certificate against its CA
// and that the webhook configuration trusts that CA.
func checkHelmCert(t *testing.T, secret, wc map[string]any, name string) {
	t.Helper()
	data := secret["data"].(map[string]any)
	s := &corev1.Secret{Data: map[string][]byte{}}
	for _, k := range []string{"ca.crt", "tls.crt", "tls.key"} {
		s.Data[k] = b64(t, data[k])
	}
	checkWebhookCert(t, s, name)
	for _, h := range wc["webhooks"].([]any) {
		if cb := h.(map[string]any)["clientConfig"].(map[string]any)["caBundle"]; cb != data["ca.crt"] {
			t.Errorf("webhook caBundle is not the Secret's ca.crt")
		}
	}
}

func sortedKeys(m map[string]map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
