package inject

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WebhookConfiguration is the MutatingWebhookConfiguration that sends Pod
// creations to the injection webhook at url (https), trusting caBundle
// (PEM). It has two webhooks with disjoint selectors, both failing closed
// (failurePolicy Fail):
//
//   - pods.ns.inject.weft.dev: Pods in Namespaces labelled
//     weft.dev/inject=enabled, but not Pods labelled
//     weft.dev/inject=disabled;
//   - pods.pod.inject.weft.dev: Pods labelled weft.dev/inject=enabled in
//     any other Namespace but kube-system.
//
// A Pod that opts out with the annotation still reaches the webhook, which
// allows it unchanged.
func WebhookConfiguration(name, url string, caBundle []byte) *admissionregistrationv1.MutatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	never := admissionregistrationv1.NeverReinvocationPolicy
	timeout := int32(10)
	equivalent := admissionregistrationv1.Equivalent
	hook := func(hookName string, ns, obj *metav1.LabelSelector) admissionregistrationv1.MutatingWebhook {
		u := url
		return admissionregistrationv1.MutatingWebhook{
			Name:                    hookName,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &u, CABundle: caBundle},
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             &none,
			FailurePolicy:           &fail,
			MatchPolicy:             &equivalent,
			ReinvocationPolicy:      &never,
			TimeoutSeconds:          &timeout,
			NamespaceSelector:       ns,
			ObjectSelector:          obj,
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
				},
			}},
		}
	}
	notIn := func(key string, v ...string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: key, Operator: metav1.LabelSelectorOpNotIn, Values: v}
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/part-of": "weft"}},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			hook("pods.ns.inject.weft.dev",
				&metav1.LabelSelector{MatchLabels: map[string]string{LabelInject: Enabled}},
				&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{notIn(LabelInject, Disabled)}}),
			hook("pods.pod.inject.weft.dev",
				&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					notIn(LabelInject, Enabled), notIn("kubernetes.io/metadata.name", "kube-system"),
				}},
				&metav1.LabelSelector{MatchLabels: map[string]string{LabelInject: Enabled}}),
		},
	}
}
