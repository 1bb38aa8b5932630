package crd

import (
	"context"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// Install creates the CRDs, or replaces their spec where they exist, and
// waits until the API server serves every one (condition Established).
func Install(ctx context.Context, cs apiextensionsclient.Interface, crds []*apiextensionsv1.CustomResourceDefinition) error {
	api := cs.ApiextensionsV1().CustomResourceDefinitions()
	for _, c := range crds {
		_, err := api.Create(ctx, c.DeepCopy(), metav1.CreateOptions{FieldManager: "weft"})
		if apierrors.IsAlreadyExists(err) {
			for attempt := 0; ; attempt++ {
				cur, gerr := api.Get(ctx, c.Name, metav1.GetOptions{})
				if gerr != nil {
					return fmt.Errorf("reading CRD %s: %w", c.Name, gerr)
				}
				in := c.DeepCopy()
				in.ResourceVersion = cur.ResourceVersion
				_, err = api.Update(ctx, in, metav1.UpdateOptions{FieldManager: "weft"})
				if !apierrors.IsConflict(err) || attempt == 4 {
					break
				}
			}
		}
		if err != nil {
			return fmt.Errorf("installing CRD %s: %w", c.Name, err)
		}
	}
	for _, c := range crds {
		if err := waitEstablished(ctx, cs, c.Name); err != nil {
			return err
		}
	}
	return nil
}

func waitEstablished(ctx context.Context, cs apiextensionsclient.Interface, name string) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		cur, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading CRD %s: %w", name, err)
		}
		for _, c := range cur.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return nil
			}
			if c.Type == apiextensionsv1.NamesAccepted && c.Status == apiextensionsv1.ConditionFalse {
				return fmt.Errorf("CRD %s: names not accepted: %s", name, c.Message)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for CRD %s to be established: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// InstallAll installs every CRD of All (weft's and the Gateway API's) in
// the cluster cfg reaches, as Install does.
func InstallAll(ctx context.Context, cfg *rest.Config) error {
	cs, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("apiextensions client: %w", err)
	}
	crds, err := All()
	if err != nil {
		return err
	}
	return Install(ctx, cs, crds)
}
