package install

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"weft.dev/weft/internal/control/kube/crd"
	"weft.dev/weft/internal/control/seal"
)

// CheckResult is the outcome of one check of an installation.
type CheckResult struct {
	Name   string
	OK     bool
	Detail string
}

// clients are what the checks read the cluster with.
type clients struct {
	kube kubernetes.Interface
	ext  apiextensionsclient.Interface
	dyn  dynamic.Interface
	o    Options
}

// installCheck is one named check.
type installCheck struct {
	name string
	run  func(ctx context.Context, c *clients) (string, error)
	// webhook checks are skipped with Options.NoWebhook, validation
	// checks with Options.NoValidation.
	webhook, validation bool
}

var installChecks = []installCheck{
	{name: "CRDs established", run: checkCRDs},
	{name: "RBAC objects", run: checkRBAC},
	{name: "seal key Secret", run: checkSeal},
	{name: "control plane Deployment available", run: func(ctx context.Context, c *clients) (string, error) { return checkDeployment(ctx, c, Control) }},
	{name: "control plane Service", run: func(ctx context.Context, c *clients) (string, error) { return checkService(ctx, c, Control) }},
	{name: "webhook configuration and Service", run: checkWebhook, webhook: true},
	{name: "webhook Deployment available", run: func(ctx context.Context, c *clients) (string, error) { return checkDeployment(ctx, c, Inject) }, webhook: true},
	{name: "validating webhook configuration", run: checkValidation, validation: true},
	{name: "weft objects ignored as invalid", run: checkIgnored}, // check_ignored.go
}

// Check checks the installation opts describes (Namespace, NoWebhook,
// WatchNamespace matter) in the cluster cfg reaches: one result per check.
func Check(ctx context.Context, cfg *rest.Config, opts Options) ([]CheckResult, error) {
	opts = opts.Defaults()
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	ext, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("apiextensions client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	c := &clients{kube: kube, ext: ext, dyn: dyn, o: opts}
	var out []CheckResult
	for _, ck := range installChecks {
		if ck.webhook && opts.NoWebhook || ck.validation && opts.NoValidation {
			continue
		}
		detail, err := ck.run(ctx, c)
		r := CheckResult{Name: ck.name, OK: err == nil, Detail: detail}
		if err != nil {
			r.Detail = err.Error()
		}
		out = append(out, r)
	}
	return out, nil
}

func checkCRDs(ctx context.Context, c *clients) (string, error) {
	want, err := crd.All()
	if err != nil {
		return "", fmt.Errorf("reading the CRDs: %w", err)
	}
	var bad []string
	for _, w := range want {
		got, err := c.ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			bad = append(bad, w.Name+": "+reason(err))
			continue
		}
		if !established(got) {
			bad = append(bad, w.Name+": not Established")
		}
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("%d of %d: %s", len(bad), len(want), strings.Join(bad, "; "))
	}
	return fmt.Sprintf("%d of %d", len(want), len(want)), nil
}

func established(c *apiextensionsv1.CustomResourceDefinition) bool {
	for _, cond := range c.Status.Conditions {
		if cond.Type == apiextensionsv1.Established {
			return cond.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

func checkRBAC(ctx context.Context, c *clients) (string, error) {
	ns := c.o.Namespace
	rb := c.kube.RbacV1()
	type get struct {
		what string
		err  error
	}
	var gets []get
	add := func(what string, err error) { gets = append(gets, get{what, err}) }
	_, err := c.kube.CoreV1().ServiceAccounts(ns).Get(ctx, Control, metav1.GetOptions{})
	add("ServiceAccount "+ns+"/"+Control, err)
	_, err = rb.ClusterRoles().Get(ctx, Control, metav1.GetOptions{})
	add("ClusterRole "+Control, err)
	_, err = rb.ClusterRoleBindings().Get(ctx, Control, metav1.GetOptions{})
	add("ClusterRoleBinding "+Control, err)
	_, err = rb.Roles(ns).Get(ctx, Control, metav1.GetOptions{})
	add("Role "+ns+"/"+Control, err)
	_, err = rb.RoleBindings(ns).Get(ctx, Control, metav1.GetOptions{})
	add("RoleBinding "+ns+"/"+Control, err)
	if c.o.WatchNamespace == "" {
		_, err = rb.ClusterRoleBindings().Get(ctx, GatewaySecretsRole, metav1.GetOptions{})
		add("ClusterRoleBinding "+GatewaySecretsRole, err)
	} else {
		_, err = rb.RoleBindings(c.o.WatchNamespace).Get(ctx, GatewaySecretsRole, metav1.GetOptions{})
		add("RoleBinding "+c.o.WatchNamespace+"/"+GatewaySecretsRole, err)
	}
	if !c.o.NoWebhook {
		_, err = rb.ClusterRoleBindings().Get(ctx, Inject, metav1.GetOptions{})
		add("ClusterRoleBinding "+Inject, err)
	}
	var bad []string
	for _, g := range gets {
		if g.err != nil {
			bad = append(bad, g.what+": "+reason(g.err))
		}
	}
	if len(bad) > 0 {
		return "", errors.New(strings.Join(bad, "; "))
	}
	return fmt.Sprintf("%d objects", len(gets)), nil
}

func checkSeal(ctx context.Context, c *clients) (string, error) {
	s, err := c.kube.CoreV1().Secrets(c.o.Namespace).Get(ctx, SealSecret, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("Secret %s/%s: %s", c.o.Namespace, SealSecret, reason(err))
	}
	if k, err := hex.DecodeString(strings.TrimSpace(string(s.Data["seal.key"]))); err != nil || len(k) != seal.KeySize {
		return "", fmt.Errorf("Secret %s/%s: seal.key is not %d bytes as hex", c.o.Namespace, SealSecret, seal.KeySize)
	}
	return c.o.Namespace + "/" + SealSecret, nil
}

func checkDeployment(ctx context.Context, c *clients, name string) (string, error) {
	d, err := c.kube.AppsV1().Deployments(c.o.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("Deployment %s/%s: %s", c.o.Namespace, name, reason(err))
	}
	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	detail := fmt.Sprintf("%d/%d replicas ready, %d available", d.Status.ReadyReplicas, desired, d.Status.AvailableReplicas)
	if d.Status.AvailableReplicas < 1 {
		return "", fmt.Errorf("Deployment %s/%s: %s (kubectl -n %s describe deployment %s)", c.o.Namespace, name, detail, c.o.Namespace, name)
	}
	return detail, nil
}

func checkService(ctx context.Context, c *clients, name string) (string, error) {
	s, err := c.kube.CoreV1().Services(c.o.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("Service %s/%s: %s", c.o.Namespace, name, reason(err))
	}
	return fmt.Sprintf("%s.%s.svc (%s)", name, c.o.Namespace, s.Spec.ClusterIP), nil
}

func checkWebhook(ctx context.Context, c *clients) (string, error) {
	wc, err := c.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, Inject, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("MutatingWebhookConfiguration %s: %s (installed with --no-webhook? then check with --no-webhook)", Inject, reason(err))
	}
	if len(wc.Webhooks) == 0 {
		return "", fmt.Errorf("MutatingWebhookConfiguration %s has no webhooks", Inject)
	}
	for _, h := range wc.Webhooks {
		if err := checkClientConfig(ctx, c, h.Name, h.ClientConfig, Inject); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d webhooks → Service %s/%s", len(wc.Webhooks), c.o.Namespace, Inject), nil
}

// checkValidation checks the ValidatingWebhookConfiguration: it calls the
// control plane's Service, which has the port it names.
func checkValidation(ctx context.Context, c *clients) (string, error) {
	wc, err := c.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, Validate, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("ValidatingWebhookConfiguration %s: %s (installed with --no-validation? then check with --no-validation)", Validate, reason(err))
	}
	if len(wc.Webhooks) == 0 {
		return "", fmt.Errorf("ValidatingWebhookConfiguration %s has no webhooks", Validate)
	}
	for _, h := range wc.Webhooks {
		if err := checkClientConfig(ctx, c, h.Name, h.ClientConfig, Control); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("weft.dev writes → Service %s/%s", c.o.Namespace, Control), nil
}

// checkClientConfig checks that webhook name trusts a CA and calls the
// Service want, which has the port it names.
func checkClientConfig(ctx context.Context, c *clients, name string, cc admissionregistrationv1.WebhookClientConfig, want string) error {
	if len(cc.CABundle) == 0 {
		return fmt.Errorf("webhook %s: no caBundle", name)
	}
	ref := cc.Service
	if ref == nil {
		return fmt.Errorf("webhook %s: calls a URL, not the %s Service", name, want)
	}
	s, err := c.kube.CoreV1().Services(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("webhook %s: Service %s/%s: %s", name, ref.Namespace, ref.Name, reason(err))
	}
	port := int32(443)
	if ref.Port != nil {
		port = *ref.Port
	}
	found := false
	for _, p := range s.Spec.Ports {
		found = found || p.Port == port
	}
	if !found {
		return fmt.Errorf("webhook %s: Service %s/%s has no port %d", name, ref.Namespace, ref.Name, port)
	}
	return nil
}

// reason is err's short form: "not found" rather than the API's sentence.
func reason(err error) string {
	switch {
	case apierrors.IsNotFound(err):
		return "not found"
	case apierrors.IsForbidden(err):
		return "forbidden: " + err.Error()
	}
	return err.Error()
}
