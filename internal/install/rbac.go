package install

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The API groups weft reads and writes.
const (
	groupCore      = ""
	groupWeft      = "weft.dev"
	groupGateway   = "gateway.networking.k8s.io"
	groupDiscovery = "discovery.k8s.io"
	groupAuthn     = "authentication.k8s.io"
	groupCoord     = "coordination.k8s.io"
)

var (
	readVerbs  = []string{"get", "list", "watch"}
	writeVerbs = []string{"get", "list", "watch", "create", "update", "delete"}
)

// weftResources are the weft.dev kinds the store informs on and `weft
// apply` writes.
var weftResources = []string{"meshconfigs", "destinationpolicies", "authorizationpolicies",
	"requestauthentications", "faultinjections", "externalservices"}

// weftStatusResources are the status subresources of the weft.dev kinds,
// which the elected status writer updates.
var weftStatusResources = []string{"meshconfigs/status", "destinationpolicies/status", "authorizationpolicies/status",
	"requestauthentications/status", "faultinjections/status", "externalservices/status"}

// gatewayResources are the Gateway API kinds the store informs on and
// `weft apply` writes.
var gatewayResources = []string{"gateways", "httproutes", "grpcroutes", "tcproutes", "tlsroutes"}

// statusResources are the status subresources the elected status writer
// (internal/control/kube/status) updates.
var statusResources = []string{"gateways/status", "httproutes/status", "grpcroutes/status",
	"tcproutes/status", "tlsroutes/status"}

// controlClusterRules are what the control plane needs in every
// namespace. There is no Secret here: Secrets are granted by
// controlRoleRules (its own namespace) and secretReadRules (TLS
// certificates of Gateways).
func controlClusterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		// The store's informers list and watch Services: a Service with
		// a selector is a mesh service. It writes none (`weft apply` of a
		// Service on Kubernetes is kubectl's job).
		{APIGroups: []string{groupCore}, Resources: []string{"services"}, Verbs: []string{"list", "watch"}},
		// The endpoint informer lists and watches EndpointSlices: the
		// addresses of every Service's Pods.
		{APIGroups: []string{groupDiscovery}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		// weft's own kinds: the informers read them and `weft apply` /
		// `weft delete` through the control plane's API write them.
		{APIGroups: []string{groupWeft}, Resources: weftResources, Verbs: writeVerbs},
		// Gateway API routes and Gateways: read by the informers, written
		// by `weft apply`.
		{APIGroups: []string{groupGateway}, Resources: gatewayResources, Verbs: writeVerbs},
		// The elected status writer reports Accepted/ResolvedRefs on
		// routes and Gateways (it reads the object with get, above)...
		{APIGroups: []string{groupGateway}, Resources: statusResources, Verbs: []string{"update"}},
		// ...and Accepted (ResolvedRefs where they name an egress
		// gateway) on the weft kinds.
		{APIGroups: []string{groupWeft}, Resources: weftStatusResources, Verbs: []string{"update"}},
		// Workloads join with their service-account token, which the
		// control plane checks with a TokenReview.
		{APIGroups: []string{groupAuthn}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		// A certificate issued for a service-account token is renewed
		// only while its ServiceAccount exists (get), and a sidecar may
		// join only the service of a live Pod of its ServiceAccount
		// (kube/podscope informs on both).
		{APIGroups: []string{groupCore}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{groupCore}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}},
		// The elected replica publishes the trust bundle as the
		// ConfigMap weft-ca-root into every namespace (injected sidecars
		// mount it), following namespaces as they are created.
		{APIGroups: []string{groupCore}, Resources: []string{"namespaces"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{groupCore}, Resources: []string{"configmaps"}, Verbs: []string{"get", "create", "update"}},
	}
}

// controlRoleRules are what the control plane needs in its own namespace
// only: no other namespace's Secrets.
func controlRoleRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		// The shared state of the replicas (CA root and admin token
		// sealed with the seal key, join tokens, the workload registry)
		// lives in Secrets of the system namespace; the replicas also
		// read the seal key Secret through their volume, not the API.
		{APIGroups: []string{groupCore}, Resources: []string{"secrets"}, Verbs: writeVerbs},
		// Leased keys (a replica's registrations, swept when it stops
		// renewing) and the weft-status-writer election are Leases.
		{APIGroups: []string{groupCoord}, Resources: []string{"leases"}, Verbs: writeVerbs},
	}
}

// secretReadRules let the store's informer list and watch TLS Secrets
// (type kubernetes.io/tls, the certificates Gateway listeners name).
// RBAC cannot grant by Secret type, so this reads every Secret of the
// namespaces it is bound in: with Options.WatchNamespace it is a Role in
// that namespace; without, the store watches every namespace and this is
// the ClusterRole GatewaySecretsRole — the one cluster-wide Secret grant,
// list and watch only, kept apart so that it is visible and removable.
func secretReadRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{groupCore}, Resources: []string{"secrets"}, Verbs: []string{"list", "watch"}},
	}
}

// injectClusterRules are what the injection webhook needs.
func injectClusterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		// The webhook reads the Pod's Namespace for its weft.dev/inject
		// label.
		{APIGroups: []string{groupCore}, Resources: []string{"namespaces"}, Verbs: []string{"get"}},
	}
}

func serviceAccounts(o Options) []runtime.Object {
	out := []runtime.Object{serviceAccount(o, Control)}
	if !o.NoWebhook {
		out = append(out, serviceAccount(o, Inject))
	}
	return out
}

func serviceAccount(o Options, name string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: meta(o, name),
	}
}

// rbac is every Role, ClusterRole and binding.
func rbac(o Options) []runtime.Object {
	out := []runtime.Object{
		clusterRole(Control, controlClusterRules()),
		clusterRoleBinding(o, Control, Control),
		role(o, o.Namespace, Control, controlRoleRules()),
		roleBinding(o, o.Namespace, Control, Control),
	}
	if o.WatchNamespace == "" {
		out = append(out, clusterRole(GatewaySecretsRole, secretReadRules()),
			clusterRoleBinding(o, GatewaySecretsRole, Control))
	} else {
		out = append(out, role(o, o.WatchNamespace, GatewaySecretsRole, secretReadRules()),
			roleBinding(o, o.WatchNamespace, GatewaySecretsRole, Control))
	}
	if !o.NoWebhook {
		out = append(out, clusterRole(Inject, injectClusterRules()), clusterRoleBinding(o, Inject, Inject))
	}
	return out
}

func clusterRole(name string, rules []rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels(name)},
		Rules:      rules,
	}
}

func clusterRoleBinding(o Options, name, sa string) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels(name)},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: o.Namespace}},
	}
}

func role(o Options, ns, name string, rules []rbacv1.PolicyRule) *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels(name)},
		Rules:      rules,
	}
}

func roleBinding(o Options, ns, name, sa string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels(name)},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: o.Namespace}},
	}
}

// labels are every object's labels.
func labels(name string) map[string]string {
	return map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "weft"}
}

func meta(o Options, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: o.Namespace, Labels: labels(name)}
}
