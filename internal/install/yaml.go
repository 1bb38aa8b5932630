package install

import (
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// Write writes objs to w as YAML documents separated by ---, in order,
// without their status.
func Write(w io.Writer, objs []runtime.Object) error {
	if len(objs) == 0 {
		return errNoObjects
	}
	for i, o := range objs {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return fmt.Errorf("encoding object %d (%T): %w", i, o, err)
		}
		// Status is the cluster's to write, and an unset creation
		// time is noise.
		delete(u, "status")
		if m, ok := u["metadata"].(map[string]any); ok {
			delete(m, "creationTimestamp")
		}
		// Empty structs that say nothing: a Namespace's spec, a
		// Deployment's strategy (emptyDir: {} is kept: it means
		// something).
		if spec, ok := u["spec"].(map[string]any); ok {
			if st, ok := spec["strategy"].(map[string]any); ok && len(st) == 0 {
				delete(spec, "strategy")
			}
			if len(spec) == 0 {
				delete(u, "spec")
			}
		}
		b, err := yaml.Marshal(u)
		if err != nil {
			return fmt.Errorf("encoding object %d (%T): %w", i, o, err)
		}
		if _, err := fmt.Fprintf(w, "---\n%s", b); err != nil {
			return fmt.Errorf("writing manifests: %w", err)
		}
	}
	return nil
}
