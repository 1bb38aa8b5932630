package store

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"weft.dev/weft/internal/control/mesh"
)

// The mesh's endpoints are the workloads whose sidecars registered over
// xDS (with their identities and ports), not the addresses Kubernetes
// lists. EndpointSlices add one thing: the pods without a sidecar of a
// Service that has no mesh endpoint (PlainEndpoints), which the proxies
// reach in plaintext, so a half-meshed cluster keeps working.

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

	mu      sync.Mutex
	changed map[string]bool // service keys "<name>.<namespace>"
	notify  chan struct{}
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
	return &endpointSlices{informer: inf, changed: map[string]bool{}, notify: make(chan struct{}, 1)}
}

// watchChanges records the Service of every EndpointSlice that comes, goes
// or changes.
func (e *endpointSlices) watchChanges() error {
	note := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		es, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || es.Labels[discoveryv1.LabelServiceName] == "" {
			return
		}
		e.mu.Lock()
		e.changed[es.Labels[discoveryv1.LabelServiceName]+"."+es.Namespace] = true
		e.mu.Unlock()
		select {
		case e.notify <- struct{}{}:
		default:
		}
	}
	_, err := e.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    note,
		UpdateFunc: func(_, obj any) { note(obj) },
		DeleteFunc: note,
	})
	if err != nil {
		return fmt.Errorf("watching endpointslices: %w", err)
	}
	return nil
}

// EndpointChanges receives after the EndpointSlices of some Services
// changed (coalesced); nil without the EndpointSlice informer.
func (s *Store) EndpointChanges() <-chan struct{} {
	if s.eps == nil {
		return nil
	}
	return s.eps.notify
}

// TakeEndpointChanges returns the keys ("<name>.<namespace>") of the
// Services whose EndpointSlices changed since the last call.
func (s *Store) TakeEndpointChanges() []string {
	if s.eps == nil {
		return nil
	}
	s.eps.mu.Lock()
	defer s.eps.mu.Unlock()
	out := make([]string, 0, len(s.eps.changed))
	for k := range s.eps.changed {
		out = append(out, k)
	}
	clear(s.eps.changed)
	return out
}

// PlainEndpoints returns the ready endpoints the EndpointSlices of Service
// namespace/name list, as host:port for port (matched by name, as the
// EndpointSlice controller names the ports), sorted by address. Whether
// they have a sidecar is not known here: the xDS server uses them only
// for a Service without mesh endpoints.
func (s *Store) PlainEndpoints(namespace, name string, port corev1.ServicePort) []mesh.PlainEndpoint {
	eps, err := s.ServiceEndpoints(namespace, name)
	if err != nil {
		return nil
	}
	var out []mesh.PlainEndpoint
	for _, e := range eps {
		n, ok := e.Ports[port.Name]
		if !ok || !e.Ready {
			continue
		}
		addr := net.JoinHostPort(e.Address, strconv.Itoa(int(n)))
		if len(out) > 0 && out[len(out)-1].Address == addr {
			continue // listed by two slices
		}
		out = append(out, mesh.PlainEndpoint{Address: addr, Pod: e.Pod})
	}
	return out
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
