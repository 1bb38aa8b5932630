package store

import (
	"fmt"
	"slices"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// EndpointSlices are informative in weft: the mesh's endpoints are the
// workloads whose sidecars registered over xDS (with their identities and
// ports), not the addresses Kubernetes lists. The store keeps the slices so
// that tools and later features (non-mesh endpoints) can read them without
// another watch.

// indexService indexes EndpointSlices by "<namespace>/<service>".
const indexService = "service"

// Endpoint is one address Kubernetes lists for a Service.
type Endpoint struct {
	// Address is the IP address.
	Address string
	// Ready is the EndpointSlice's ready condition (unset counts as ready).
	Ready bool
	// Pod names the pod behind the address, if the slice says.
	Pod string
	// Ports maps the Service's port names to the endpoint's ports.
	Ports map[string]int32
}

type endpointSlices struct {
	informer cache.SharedIndexInformer
}

func newEndpointSlices(kube kubernetes.Interface, namespace string) *endpointSlices {
	lw := cache.NewListWatchFromClient(kube.DiscoveryV1().RESTClient(), "endpointslices", namespace, fields.Everything())
	inf := cache.NewSharedIndexInformer(lw, &discoveryv1.EndpointSlice{}, 0, cache.Indexers{
		indexService: func(obj any) ([]string, error) {
			es, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok {
				return nil, nil
			}
			svc := es.Labels[discoveryv1.LabelServiceName]
			if svc == "" {
				return nil, nil
			}
			return []string{es.Namespace + "/" + svc}, nil
		},
	})
	return &endpointSlices{informer: inf}
}

// ServiceEndpoints returns the addresses the EndpointSlices of Service
// namespace/name list, sorted by address. It fails if the store was opened
// with NoEndpointSlices.
func (s *Store) ServiceEndpoints(namespace, name string) ([]Endpoint, error) {
	if s.eps == nil {
		return nil, fmt.Errorf("the store does not watch EndpointSlices")
	}
	objs, err := s.eps.informer.GetIndexer().ByIndex(indexService, namespace+"/"+name)
	if err != nil {
		return nil, err
	}
	var out []Endpoint
	for _, o := range objs {
		es := o.(*discoveryv1.EndpointSlice)
		ports := map[string]int32{}
		for _, p := range es.Ports {
			if p.Port == nil {
				continue
			}
			n := ""
			if p.Name != nil {
				n = *p.Name
			}
			ports[n] = *p.Port
		}
		for _, e := range es.Endpoints {
			ready := e.Conditions.Ready == nil || *e.Conditions.Ready
			pod := ""
			if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
				pod = e.TargetRef.Name
			}
			for _, a := range e.Addresses {
				out = append(out, Endpoint{Address: a, Ready: ready, Pod: pod, Ports: ports})
			}
		}
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return strings.Compare(a.Address, b.Address) })
	return out, nil
}
