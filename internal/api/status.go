package api

import (
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ClearStatus drops the status of o. Statuses are computed by the control
// plane from the mesh when an object is read; a status sent with an object
// is not the user's to set and is never stored.
func ClearStatus(o Object) {
	switch o := o.(type) {
	case *gatewayv1.HTTPRoute:
		o.Status = gatewayv1.HTTPRouteStatus{}
	case *gatewayv1.GRPCRoute:
		o.Status = gatewayv1.GRPCRouteStatus{}
	case *DestinationPolicy:
		o.Status = nil
	case *AuthorizationPolicy:
		o.Status = nil
	case *RequestAuthentication:
		o.Status = nil
	case *MeshConfig:
		o.Status = nil
	case *FaultInjection:
		o.Status = nil
	case *ExternalService:
		o.Status = nil
	case *gatewayv1.Gateway:
		o.Status = gatewayv1.GatewayStatus{}
	case *gatewayv1.TLSRoute:
		o.Status = gatewayv1.TLSRouteStatus{}
	case *gatewayv1.TCPRoute:
		o.Status = gatewayv1.TCPRouteStatus{}
	}
}
