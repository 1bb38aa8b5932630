package validation

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/api"
)

// WebhookName is the name of the one webhook of the configuration.
const WebhookName = "config.validate.weft.dev"

// Resources are the weft.dev resources the webhook checks.
func Resources() []string {
	var out []string
	for _, k := range api.Kinds() {
		if k.Group() == api.GroupWeft {
			out = append(out, k.Plural)
		}
	}
	return out
}

// WebhookConfiguration is the ValidatingWebhookConfiguration name that
// sends every create and update of a weft.dev object to url, trusting
// caBundle (PEM) for its certificate. It fails closed: while no replica
// answers, weft.dev objects cannot be written (deletes still can), as
// `weft apply` cannot be while the control plane is down.
func WebhookConfiguration(name, url string, caBundle []byte) *admissionregistrationv1.ValidatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	equivalent := admissionregistrationv1.Equivalent
	timeout := int32(10)
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/part-of": "weft"}},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    WebhookName,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             &none,
			FailurePolicy:           &fail,
			MatchPolicy:             &equivalent,
			TimeoutSeconds:          &timeout,
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{api.GroupWeft}, APIVersions: []string{"v1alpha1"}, Resources: Resources(),
				},
			}},
		}},
	}
}
