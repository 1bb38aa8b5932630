package api

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Object is any resource weft stores: it has Kubernetes object metadata and
// type information.
type Object interface {
	metav1.Object
	runtime.Object
}

// Key identifies one stored object. Namespace is empty for cluster-scoped
// kinds.
type Key struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String renders the key as Kind/namespace/name (Kind/name when cluster-scoped).
func (k Key) String() string {
	if k.Namespace == "" {
		return k.Kind + "/" + k.Name
	}
	return k.Kind + "/" + k.Namespace + "/" + k.Name
}

// Kind names.
const (
	KindService             = "Service"
	KindHTTPRoute           = "HTTPRoute"
	KindGRPCRoute           = "GRPCRoute"
	KindMeshConfig          = "MeshConfig"
	KindDestinationPolicy   = "DestinationPolicy"
	KindAuthorizationPolicy = "AuthorizationPolicy"
)

// API versions.
const (
	CoreV1         = "v1"
	GatewayV1      = "gateway.networking.k8s.io/v1"
	WeftV1Alpha1   = "weft.dev/v1alpha1"
	GroupWeft      = "weft.dev"
	GroupGateway   = "gateway.networking.k8s.io"
	DefaultNS      = "default"
	MeshConfigName = "default"
)

// KindInfo describes one supported kind.
type KindInfo struct {
	// Kind is the canonical kind name, e.g. "HTTPRoute".
	Kind string
	// APIVersion is group/version ("v1" for the core group).
	APIVersion string
	// Plural is the lower-case resource name, e.g. "httproutes".
	Plural string
	// ShortNames are further accepted aliases, e.g. "svc".
	ShortNames []string
	// Namespaced is false for cluster-scoped kinds (MeshConfig).
	Namespaced bool

	newObject func() Object
}

// Group is the API group, "" for core.
func (k KindInfo) Group() string {
	g, _, ok := strings.Cut(k.APIVersion, "/")
	if !ok {
		return ""
	}
	return g
}

// Qualified is the kubectl-style resource name used in CLI output:
// "service", "httproute.gateway.networking.k8s.io".
func (k KindInfo) Qualified() string {
	if g := k.Group(); g != "" {
		return strings.ToLower(k.Kind) + "." + g
	}
	return strings.ToLower(k.Kind)
}

var kinds = []KindInfo{
	{Kind: KindService, APIVersion: CoreV1, Plural: "services", ShortNames: []string{"svc"}, Namespaced: true,
		newObject: func() Object { return &corev1.Service{} }},
	{Kind: KindHTTPRoute, APIVersion: GatewayV1, Plural: "httproutes", ShortNames: []string{"hr"}, Namespaced: true,
		newObject: func() Object { return &gatewayv1.HTTPRoute{} }},
	{Kind: KindGRPCRoute, APIVersion: GatewayV1, Plural: "grpcroutes", ShortNames: []string{"gr"}, Namespaced: true,
		newObject: func() Object { return &gatewayv1.GRPCRoute{} }},
	{Kind: KindMeshConfig, APIVersion: WeftV1Alpha1, Plural: "meshconfigs", ShortNames: []string{"mc"}, Namespaced: false,
		newObject: func() Object { return &MeshConfig{} }},
	{Kind: KindDestinationPolicy, APIVersion: WeftV1Alpha1, Plural: "destinationpolicies", ShortNames: []string{"dp"}, Namespaced: true,
		newObject: func() Object { return &DestinationPolicy{} }},
	{Kind: KindAuthorizationPolicy, APIVersion: WeftV1Alpha1, Plural: "authorizationpolicies", ShortNames: []string{"authz", "ap"}, Namespaced: true,
		newObject: func() Object { return &AuthorizationPolicy{} }},
	{Kind: KindRequestAuthentication, APIVersion: WeftV1Alpha1, Plural: "requestauthentications", ShortNames: []string{"ra"}, Namespaced: true, newObject: func() Object { return &RequestAuthentication{} }},
	{Kind: KindFaultInjection, APIVersion: WeftV1Alpha1, Plural: "faultinjections", ShortNames: []string{"fi"}, Namespaced: true, newObject: func() Object { return &FaultInjection{} }},
	gatewayKind, secretKind, tlsRouteKind, tcpRouteKind, // types_gateway.go
	{Kind: KindExternalService, APIVersion: WeftV1Alpha1, Plural: "externalservices", ShortNames: []string{"es", "se"}, Namespaced: true, newObject: func() Object { return &ExternalService{} }},
}

// Kinds lists the supported kinds in a stable order.
func Kinds() []KindInfo {
	out := make([]KindInfo, len(kinds))
	copy(out, kinds)
	for i := range out {
		out[i].ShortNames = slices.Clone(out[i].ShortNames)
	}
	return out
}

// LookupKind returns the KindInfo of a canonical kind name.
func LookupKind(kind string) (KindInfo, bool) {
	for _, k := range kinds {
		if k.Kind == kind {
			return k, true
		}
	}
	return KindInfo{}, false
}

// NormalizeKind maps what a user types — a kind, its plural, a short name, in
// any case, optionally qualified with its group ("httproutes.gateway.networking.k8s.io")
// — to the canonical kind name.
func NormalizeKind(s string) (string, error) {
	in := strings.ToLower(strings.TrimSpace(s))
	name, group, qualified := strings.Cut(in, ".")
	for _, k := range kinds {
		if qualified && group != k.Group() {
			continue
		}
		if name == strings.ToLower(k.Kind) || name == k.Plural || slices.Contains(k.ShortNames, name) {
			return k.Kind, nil
		}
	}
	var names []string
	for _, k := range kinds {
		names = append(names, strings.ToLower(k.Kind))
	}
	return "", fmt.Errorf("unknown kind %q (supported: %s)", s, strings.Join(names, ", "))
}

// KindOf returns the canonical kind of o from its Go type; "" if o is not a
// supported kind.
func KindOf(o Object) string {
	switch o.(type) {
	case *corev1.Service:
		return KindService
	case *gatewayv1.HTTPRoute:
		return KindHTTPRoute
	case *gatewayv1.GRPCRoute:
		return KindGRPCRoute
	case *MeshConfig:
		return KindMeshConfig
	case *DestinationPolicy:
		return KindDestinationPolicy
	case *AuthorizationPolicy:
		return KindAuthorizationPolicy
	case *RequestAuthentication:
		return KindRequestAuthentication
	case *FaultInjection:
		return KindFaultInjection
	case *gatewayv1.Gateway:
		return KindGateway
	case *corev1.Secret:
		return KindSecret
	case *gatewayv1.TLSRoute:
		return KindTLSRoute
	case *gatewayv1.TCPRoute:
		return KindTCPRoute
	case *ExternalService:
		return KindExternalService
	}
	return ""
}

// KeyOf returns the key of o.
func KeyOf(o Object) Key {
	return Key{Kind: KindOf(o), Namespace: o.GetNamespace(), Name: o.GetName()}
}

// SetTypeMeta fills apiVersion and kind of o from its Go type, so that it
// serialises as a complete resource.
func SetTypeMeta(o Object) {
	if k, ok := LookupKind(KindOf(o)); ok {
		o.GetObjectKind().SetGroupVersionKind(schemaGVK(k))
	}
}
