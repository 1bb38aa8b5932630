package api

import (
	"cmp"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Set is one consistent view of every stored resource, each list sorted by
// namespace and name. A Set handed out by the store is shared: treat it as
// immutable.
type Set struct {
	Services              []*corev1.Service
	HTTPRoutes            []*gatewayv1.HTTPRoute
	GRPCRoutes            []*gatewayv1.GRPCRoute
	MeshConfig            *MeshConfig
	DestinationPolicies   []*DestinationPolicy
	AuthorizationPolicies []*AuthorizationPolicy
}

// NewSet sorts objs into a Set.
func NewSet(objs []Object) (*Set, error) {
	s := &Set{}
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Service:
			s.Services = append(s.Services, o)
		case *gatewayv1.HTTPRoute:
			s.HTTPRoutes = append(s.HTTPRoutes, o)
		case *gatewayv1.GRPCRoute:
			s.GRPCRoutes = append(s.GRPCRoutes, o)
		case *MeshConfig:
			if s.MeshConfig != nil {
				return nil, fmt.Errorf("more than one MeshConfig: %q and %q", s.MeshConfig.Name, o.Name)
			}
			s.MeshConfig = o
		case *DestinationPolicy:
			s.DestinationPolicies = append(s.DestinationPolicies, o)
		case *AuthorizationPolicy:
			s.AuthorizationPolicies = append(s.AuthorizationPolicies, o)
		default:
			return nil, fmt.Errorf("unsupported object type %T", o)
		}
	}
	sortObjects(s.Services)
	sortObjects(s.HTTPRoutes)
	sortObjects(s.GRPCRoutes)
	sortObjects(s.DestinationPolicies)
	sortObjects(s.AuthorizationPolicies)
	return s, nil
}

func sortObjects[T Object](objs []T) {
	slices.SortFunc(objs, func(a, b T) int {
		return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	})
}
