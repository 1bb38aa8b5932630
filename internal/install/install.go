// Package install builds the Kubernetes objects of a weft installation —
// the CRDs, the weft-system Namespace, least-privilege RBAC, the control
// plane's Deployment, PodDisruptionBudget and Service, the sidecar
// injection webhook, the validating webhook the control plane serves,
// their certificate, and the seal key — for `weft
// install --kubernetes` to print, and checks an installed cluster for
// `weft check --kubernetes`. The Helm chart in charts/weft renders the same
// objects; a test keeps the two in step.
package install

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	"weft.dev/weft/internal/buildinfo"
)

// Names of the installed objects.
const (
	DefaultNamespace = "weft-system"
	// Control names the control plane's ServiceAccount, Deployment,
	// PodDisruptionBudget and Service.
	Control = "weft-control"
	// Inject names the injection webhook's ServiceAccount, Deployment,
	// PodDisruptionBudget, Service, certificate Secret and
	// MutatingWebhookConfiguration.
	Inject = "weft-inject"
	// SealSecret holds the key (seal.key) sealing the CA root and admin
	// token the replicas share.
	SealSecret = "weft-seal-key"
	// Validate names the ValidatingWebhookConfiguration that sends weft.dev
	// writes to the control plane's Service.
	Validate = "weft-validate"
	// WebhookTLSSecret holds the serving certificate of both webhooks
	// (tls.crt, tls.key), valid for the weft-inject and weft-control
	// Services, and the CA that signed it (ca.crt).
	WebhookTLSSecret = "weft-webhook-tls"
	// GatewaySecretsRole names the ClusterRole that reads TLS Secrets in
	// every namespace, installed only when the store watches every
	// namespace (see rbac.go).
	GatewaySecretsRole = "weft-control-gateway-secrets"
)

// Ports of the control plane (the defaults of `weft control`) and of the
// webhooks (the injection webhook's, and the control plane's validating
// webhook, --admission-listen).
const (
	XDSPort     = 15010
	APIPort     = 15000
	WebhookPort = 9443
)

// Options choose what Render builds. The zero value is completed by
// Defaults.
type Options struct {
	// Namespace of the control plane and the webhook (default
	// weft-system).
	Namespace string
	// Replicas of the control plane and of the webhook (default 2; at
	// least 1).
	Replicas int32
	// Image runs the control plane, the webhook and the injected sidecars
	// (default weft.dev/weft:<this build's version>).
	Image string
	// NoWebhook leaves the injection webhook out.
	NoWebhook bool
	// NoValidation leaves the validating webhook out: weft.dev objects
	// written with kubectl are then checked only when the control plane
	// reads them (an invalid one is ignored, and its status says why).
	NoValidation bool
	// Upgrade leaves the seal key Secret out: the manifests are for a
	// cluster where weft runs, whose replicas must keep the key that
	// opens the CA root they share (the Secret is immutable anyway).
	Upgrade bool
	// WatchNamespace, if set, limits the control plane to the namespaced
	// resources of that namespace (weft control --watch-namespace); the
	// TLS Secrets it reads are then granted in that namespace only.
	WatchNamespace string
}

// DefaultImage is the image of this build: weft.dev/weft:<version>
// ("latest" for a development build, whose version is "(devel)").
func DefaultImage() string {
	v := buildinfo.Get().Version
	if v == "" || strings.HasPrefix(v, "(") {
		v = "latest"
	}
	return "weft.dev/weft:" + v
}

// Defaults fills the unset options.
func (o Options) Defaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	if o.Image == "" {
		o.Image = DefaultImage()
	}
	return o
}

// Validate reports the first bad option, naming it.
func (o Options) Validate() error {
	if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return fmt.Errorf("namespace %q: %s", o.Namespace, strings.Join(errs, "; "))
	}
	if o.WatchNamespace != "" {
		if errs := validation.IsDNS1123Label(o.WatchNamespace); len(errs) > 0 {
			return fmt.Errorf("watch namespace %q: %s", o.WatchNamespace, strings.Join(errs, "; "))
		}
	}
	if o.Replicas < 1 {
		return fmt.Errorf("replicas %d: want at least 1", o.Replicas)
	}
	if o.Image == "" || strings.ContainsAny(o.Image, " \t\n") {
		return fmt.Errorf("image %q: want a non-empty image reference without spaces", o.Image)
	}
	return nil
}

// Render builds every object of an installation, in the order they are
// applied: CRDs, Namespace, ServiceAccounts, RBAC, Secrets, Services,
// Deployments, PodDisruptionBudgets and, last, the webhook configurations
// (so the API server never calls a webhook that is not there yet). Each
// call makes a new webhook certificate and seal key.
func Render(opts Options) ([]runtime.Object, error) {
	opts = opts.Defaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	crds, err := crdObjects()
	if err != nil {
		return nil, err
	}
	seal, err := sealKeySecret(opts)
	if err != nil {
		return nil, err
	}
	out := append(crds, namespace(opts))
	out = append(out, serviceAccounts(opts)...)
	out = append(out, rbac(opts)...)
	if !opts.Upgrade {
		out = append(out, seal)
	}
	var pki *webhookPKI
	if !opts.NoWebhook || !opts.NoValidation {
		if pki, err = newWebhookPKI(opts); err != nil {
			return nil, err
		}
		out = append(out, pki.secret(opts))
	}
	out = append(out, controlService(opts), controlDeployment(opts), pdb(opts, Control))
	if !opts.NoWebhook {
		out = append(out, injectService(opts), injectDeployment(opts), pdb(opts, Inject), webhookConfiguration(opts, pki.caPEM))
	}
	if !opts.NoValidation {
		out = append(out, validatingConfiguration(opts, pki.caPEM))
	}
	return out, nil
}

// errNoObjects is returned by Write for an empty list.
var errNoObjects = errors.New("no objects to write")
