package inject

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// PatchOp is one RFC 6902 JSON Patch operation.
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Patch is the JSON Patch that turns the Pod Inject was given into the one
// it returned: each field injection touches (annotations, init containers,
// containers, volumes) is set whole with an "add", which replaces a member
// that exists, so the patch holds whatever the original had.
func Patch(patched *corev1.Pod) ([]byte, error) {
	ops := []PatchOp{
		{Op: "add", Path: "/metadata/annotations", Value: patched.Annotations},
		{Op: "add", Path: "/spec/initContainers", Value: patched.Spec.InitContainers},
		{Op: "add", Path: "/spec/containers", Value: patched.Spec.Containers},
		{Op: "add", Path: "/spec/volumes", Value: patched.Spec.Volumes},
	}
	b, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encoding patch: %w", err)
	}
	return b, nil
}
