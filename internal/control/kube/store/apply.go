package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"weft.dev/weft/internal/api"
	weftstore "weft.dev/weft/internal/control/store"
)

// FieldManager is the manager name of weft's writes in managedFields.
const FieldManager = "weft"

// maxWriteAttempts bounds the retries of a write that lost a race (an
// object created or changed between weft's read and its write).
const maxWriteAttempts = 5

// Apply validates objs with weft's own validation and, if they are all
// valid, writes them through the API server: first all of them as a dry
// run, so that anything the API server refuses (its schema, admission, a
// missing namespace, RBAC) stores nothing, then for real, each object
// created or replaced (like kubectl replace, not a merge). It returns once
// the informers have seen every write, so Get and Set read them.
//
// Kubernetes has no transactions across objects: should a write fail after
// the dry run passed (another client wrote in between, the API server went
// away), the objects written before it stay written; the error says which.
func (s *Store) Apply(objs []api.Object) ([]weftstore.Change, error) {
	seen := map[api.Key]bool{}
	for _, o := range objs {
		if err := api.Validate(o); err != nil {
			return nil, err
		}
		k := api.KeyOf(o)
		if seen[k] {
			return nil, fmt.Errorf("%s appears more than once", k)
		}
		seen[k] = true
		if err := s.inScope(k); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.WriteTimeout)
	defer cancel()
	us := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		u, err := toUnstructured(o)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", api.KeyOf(o), err)
		}
		us[i] = u
	}
	for i, o := range objs {
		if _, _, err := s.write(ctx, api.KeyOf(o), us[i], true); err != nil {
			return nil, err
		}
	}
	changes := make([]weftstore.Change, 0, len(objs))
	var written []string
	for i, o := range objs {
		k := api.KeyOf(o)
		action, rv, err := s.write(ctx, k, us[i], false)
		if err != nil {
			if len(written) > 0 {
				return nil, fmt.Errorf("%w (already written: %s)", err, strings.Join(written, ", "))
			}
			return nil, err
		}
		changes = append(changes, weftstore.Change{Key: k, Action: action})
		if action != weftstore.Unchanged {
			written = append(written, k.String())
		}
		if err := s.waitFor(ctx, k.String(), func() bool { return s.kindRV[k.Kind] >= rv }); err != nil {
			return nil, err
		}
	}
	return changes, nil
}

// Delete deletes the object with key k through the API server and returns
// once the informers have seen it go; the error wraps store.ErrNotFound if
// there is none.
func (s *Store) Delete(k api.Key) error {
	kc := s.kinds[k.Kind]
	if kc == nil {
		return fmt.Errorf("unknown kind %q", k.Kind)
	}
	if err := s.inScope(k); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.WriteTimeout)
	defer cancel()
	err := s.resource(kc, k.Namespace).Delete(ctx, k.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s: %w", k, weftstore.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("deleting %s: %w", k, hint(err))
	}
	return s.waitFor(ctx, k.String()+" deleted", func() bool {
		_, valid := s.objs[k]
		_, invalid := s.rejected[k]
		return !valid && !invalid
	})
}

// inScope refuses a namespaced key outside Options.Namespace.
func (s *Store) inScope(k api.Key) error {
	info, ok := api.LookupKind(k.Kind)
	if !ok {
		return fmt.Errorf("unknown kind %q", k.Kind)
	}
	if ns := s.opts.Namespace; ns != "" && info.Namespaced && k.Namespace != ns {
		return &api.InvalidError{Kind: k.Kind, Name: k.Name, Errors: []api.FieldError{{
			Field:  "metadata.namespace",
			Detail: fmt.Sprintf("is %q, but this control plane manages namespace %q only", k.Namespace, ns),
		}}}
	}
	return nil
}

func (s *Store) resource(kc *kindClient, namespace string) dynamic.ResourceInterface {
	if kc.info.Namespaced {
		return s.dyn.Resource(kc.gvr).Namespace(namespace)
	}
	return s.dyn.Resource(kc.gvr)
}

// write creates u or replaces the stored object with it, and returns what
// it did and the resourceVersion of the result.
func (s *Store) write(ctx context.Context, k api.Key, u *unstructured.Unstructured, dryRun bool) (string, uint64, error) {
	kc := s.kinds[k.Kind]
	res := s.resource(kc, k.Namespace)
	var dry []string
	if dryRun {
		dry = []string{metav1.DryRunAll}
	}
	for attempt := 1; ; attempt++ {
		cur, err := res.Get(ctx, k.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			out, err := res.Create(ctx, u.DeepCopy(), metav1.CreateOptions{DryRun: dry, FieldManager: FieldManager})
			if apierrors.IsAlreadyExists(err) && attempt < maxWriteAttempts {
				continue
			}
			if err != nil {
				return "", 0, apiError(k, "creating", err)
			}
			return weftstore.Created, parseRV(out.GetResourceVersion()), nil
		}
		if err != nil {
			return "", 0, fmt.Errorf("reading %s: %w", k, hint(err))
		}
		in := u.DeepCopy()
		in.SetResourceVersion(cur.GetResourceVersion())
		// What other controllers attached stays attached.
		if len(in.GetFinalizers()) == 0 {
			in.SetFinalizers(cur.GetFinalizers())
		}
		if len(in.GetOwnerReferences()) == 0 {
			in.SetOwnerReferences(cur.GetOwnerReferences())
		}
		out, err := res.Update(ctx, in, metav1.UpdateOptions{DryRun: dry, FieldManager: FieldManager})
		if apierrors.IsConflict(err) && attempt < maxWriteAttempts {
			continue
		}
		if err != nil {
			return "", 0, apiError(k, "updating", err)
		}
		if out.GetResourceVersion() == cur.GetResourceVersion() {
			// The API server stores nothing for an update that changes
			// nothing: the resourceVersion stays.
			return weftstore.Unchanged, 0, nil
		}
		return weftstore.Configured, parseRV(out.GetResourceVersion()), nil
	}
}

// toUnstructured encodes o for the API server without the metadata the
// server manages and without status.
func toUnstructured(o api.Object) (*unstructured.Unstructured, error) {
	c := o.DeepCopyObject().(api.Object)
	c.SetUID("")
	c.SetResourceVersion("")
	c.SetGeneration(0)
	c.SetCreationTimestamp(metav1.Time{})
	c.SetManagedFields(nil)
	c.SetSelfLink("")
	c.SetDeletionTimestamp(nil)
	c.SetDeletionGracePeriodSeconds(nil)
	api.ClearStatus(c)
	b, err := api.Marshal(c)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp") // encoded as null
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// apiError turns the API server's refusal of an object into weft's
// *api.InvalidError naming the fields, so that `weft apply` reports it as
// it reports its own validation; other errors are wrapped.
func apiError(k api.Key, verb string, err error) error {
	var se *apierrors.StatusError
	if errors.As(err, &se) && se.ErrStatus.Reason == metav1.StatusReasonInvalid {
		inv := &api.InvalidError{Kind: k.Kind, Name: k.Name}
		if d := se.ErrStatus.Details; d != nil {
			for _, c := range d.Causes {
				inv.Errors = append(inv.Errors, api.FieldError{Field: c.Field, Detail: "refused by the Kubernetes API server: " + c.Message})
			}
		}
		if len(inv.Errors) == 0 {
			inv.Errors = []api.FieldError{{Field: "(object)", Detail: "refused by the Kubernetes API server: " + se.ErrStatus.Message}}
		}
		return inv
	}
	return fmt.Errorf("%s %s: %w", verb, k, hint(err))
}

// hint adds what to do about an RBAC refusal.
func hint(err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%w (the control plane's service account lacks a permission; see docs/kubernetes/store.md for the RBAC weft needs)", err)
	}
	return err
}
