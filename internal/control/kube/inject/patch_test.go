package inject

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// applyAdds applies a patch of "add" operations on members of existing
// objects, all Patch produces, to doc.
func applyAdds(t *testing.T, doc []byte, patch []byte) []byte {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(doc, &obj); err != nil {
		t.Fatal(err)
	}
	var ops []PatchOp
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if op.Op != "add" {
			t.Fatalf("op %q, want add", op.Op)
		}
		parts := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
		m := obj
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				t.Fatalf("path %s: %s is not an existing object", op.Path, p)
			}
			m = next
		}
		m[parts[len(parts)-1]] = op.Value
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPatchReproducesInject(t *testing.T) {
	cfg := testConfig(t)
	for name, pod := range map[string]*corev1.Pod{
		"bare":             basePod(),
		"with annotations": func() *corev1.Pod { p := basePod(); p.Annotations = map[string]string{"a": "b"}; return p }(),
		"with init and volumes": func() *corev1.Pod {
			p := basePod()
			p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "m"}}
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			return p
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			want, _, err := Inject(pod, namespace("shop", Enabled), cfg)
			if err != nil || want == nil {
				t.Fatalf("not injected: %v", err)
			}
			patch, err := Patch(want)
			if err != nil {
				t.Fatal(err)
			}
			orig, err := json.Marshal(pod)
			if err != nil {
				t.Fatal(err)
			}
			var got corev1.Pod
			if err := json.Unmarshal(applyAdds(t, orig, patch), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, &got); diff != "" {
				t.Errorf("patched pod differs from Inject's (-want +got):\n%s", diff)
			}
		})
	}
}
