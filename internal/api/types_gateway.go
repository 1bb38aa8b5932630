package api

import (
	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Kind names of the ingress gateway (issue #12).
const (
	// KindGateway is Gateway API's Gateway: the listeners of a `weft
	// gateway --name NAME` proxy.
	KindGateway = "Gateway"
	// KindSecret is core v1 Secret of type kubernetes.io/tls, the
	// certificate an HTTPS listener names in certificateRefs.
	KindSecret = "Secret"
	// KindTLSRoute routes a TLS listener's connections by SNI, unopened
	// (passthrough); KindTCPRoute routes a TCP listener's connections.
	KindTLSRoute = "TLSRoute"
	KindTCPRoute = "TCPRoute"
)

var (
	gatewayKind = KindInfo{Kind: KindGateway, APIVersion: GatewayV1, Plural: "gateways", ShortNames: []string{"gtw"}, Namespaced: true,
		newObject: func() Object { return &gatewayv1.Gateway{} }}
	secretKind = KindInfo{Kind: KindSecret, APIVersion: CoreV1, Plural: "secrets", Namespaced: true,
		newObject: func() Object { return &corev1.Secret{} }}
	tlsRouteKind = KindInfo{Kind: KindTLSRoute, APIVersion: GatewayV1, Plural: "tlsroutes", Namespaced: true,
		newObject: func() Object { return &gatewayv1.TLSRoute{} }}
	tcpRouteKind = KindInfo{Kind: KindTCPRoute, APIVersion: GatewayV1, Plural: "tcproutes", Namespaced: true,
		newObject: func() Object { return &gatewayv1.TCPRoute{} }}
)

// IsGatewayParent reports whether a route's parentRef names a Gateway (the
// Gateway API default when kind is unset).
func IsGatewayParent(ref gatewayv1.ParentReference) bool {
	if ref.Kind != nil && string(*ref.Kind) != KindGateway {
		return false
	}
	return ref.Group == nil || string(*ref.Group) == GroupGateway
}
