package api

import (
	"cmp"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Set is one consistent view of every stored resource, each list sorted by
// namespace and name. A Set handed out by the store is shared: treat it as
// immutable.
type Set struct {
	// Revision is the store revision the Set was read at (0 if it did not
	// come from a store).
	Revision uint64

	Services              []*corev1.Service
	HTTPRoutes            []*gatewayv1.HTTPRoute
	GRPCRoutes            []*gatewayv1.GRPCRoute
	MeshConfig            *MeshConfig
	DestinationPolicies   []*DestinationPolicy
	AuthorizationPolicies []*AuthorizationPolicy

	// RequestAuthentications are the JWT rules per Service.
	RequestAuthentications []*RequestAuthentication
	// FaultInjections are referenced by route rules' ExtensionRef filters.
	FaultInjections []*FaultInjection
	// Gateways and the TLS Secrets their listeners name (types_gateway.go).
	Gateways []*gatewayv1.Gateway
	Secrets  []*corev1.Secret
	// TLSRoutes and TCPRoutes attach to Gateways' TLS and TCP listeners.
	TLSRoutes []*gatewayv1.TLSRoute
	TCPRoutes []*gatewayv1.TCPRoute
	// ExternalServices declare the hosts outside the mesh (types_egress.go).
	ExternalServices []*ExternalService
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
		case *RequestAuthentication:
			s.RequestAuthentications = append(s.RequestAuthentications, o)
		case *FaultInjection:
			s.FaultInjections = append(s.FaultInjections, o)
		case *gatewayv1.Gateway:
			s.Gateways = append(s.Gateways, o)
		case *corev1.Secret:
			s.Secrets = append(s.Secrets, o)
		case *gatewayv1.TLSRoute:
			s.TLSRoutes = append(s.TLSRoutes, o)
		case *gatewayv1.TCPRoute:
			s.TCPRoutes = append(s.TCPRoutes, o)
		case *ExternalService:
			s.ExternalServices = append(s.ExternalServices, o)
		default:
			return nil, fmt.Errorf("unsupported object type %T", o)
		}
	}
	sortObjects(s.Services)
	sortObjects(s.HTTPRoutes)
	sortObjects(s.GRPCRoutes)
	sortObjects(s.DestinationPolicies)
	sortObjects(s.AuthorizationPolicies)
	sortObjects(s.RequestAuthentications)
	sortObjects(s.FaultInjections)
	sortObjects(s.Gateways)
	sortObjects(s.Secrets)
	sortObjects(s.TLSRoutes)
	sortObjects(s.TCPRoutes)
	sortObjects(s.ExternalServices)
	return s, nil
}

func sortObjects[T Object](objs []T) {
	slices.SortFunc(objs, func(a, b T) int { return compareObjects(a, b) })
}

// compareObjects orders objects as a Set lists them: by namespace, then name.
func compareObjects(a, b Object) int {
	return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
}

// Changed compares two lists of objects of one kind, each sorted by
// namespace and name as in a Set. It returns the objects of prev that are
// gone from next or differ from their version there (old), and the objects
// of next that are new or differ from their version in prev (cur), both in
// list order. It costs one pass over both lists.
func Changed[T Object](prev, next []T) (old, cur []T) {
	i, j := 0, 0
	for i < len(prev) || j < len(next) {
		var c int
		switch {
		case i == len(prev):
			c = 1
		case j == len(next):
			c = -1
		default:
			c = compareObjects(prev[i], next[j])
		}
		switch {
		case c < 0:
			old = append(old, prev[i])
			i++
		case c > 0:
			cur = append(cur, next[j])
			j++
		default:
			if !SameVersion(prev[i], next[j]) {
				old = append(old, prev[i])
				cur = append(cur, next[j])
			}
			i++
			j++
		}
	}
	return old, cur
}

// SameVersion reports whether a and b, two objects of one kind with the
// same namespace and name, are the same version of it. The store gives
// every version it stores a new resourceVersion, so two objects that carry
// one are compared by it (and by UID, which changes when an object is
// deleted and created again); objects without one, built by hand rather
// than read from the store, are compared by content.
func SameVersion(a, b Object) bool {
	if a == b {
		return true
	}
	if ra, rb := a.GetResourceVersion(), b.GetResourceVersion(); ra != "" && rb != "" {
		return ra == rb && a.GetUID() == b.GetUID()
	}
	return equality.Semantic.DeepEqual(a, b)
}
