// Package mesh builds the control plane's one immutable view of the mesh —
// services, the workloads behind them, routes and policies — from the stored
// configuration and the workload registry. Everything downstream (xDS
// generation, the API, the dashboard) reads a Snapshot and never the inputs.
package mesh

import (
	"maps"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"weft.dev/weft/internal/api"
)

// DefaultTrustDomain is the trust domain of a control plane started without
// --trust-domain (weft control's default).
const DefaultTrustDomain = "cluster.local"

// Workload is one registered proxy and the app behind it.
type Workload struct {
	// ID is the proxy's xDS node ID, unique per running proxy.
	ID             string            `json:"id"`
	Service        string            `json:"service"`
	Namespace      string            `json:"namespace"`
	ServiceAccount string            `json:"serviceAccount"`
	Version        string            `json:"version,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	// Address is host:port of the proxy's mTLS inbound listener; empty for
	// a workload that only makes calls.
	Address string `json:"address,omitempty"`
	// Identity is the verified SPIFFE ID of the proxy.
	Identity string `json:"identity"`
	// Connected is when the proxy's current xDS stream opened.
	Connected time.Time `json:"connected"`
	// Revision changes whenever the registry records a new version of
	// this workload. A new version is always a new *Workload, so the
	// control plane tells versions apart by pointer.
	Revision uint64 `json:"-"`
}

// PlainEndpoint is a pod without a sidecar that serves a Service, as its
// EndpointSlices list it on Kubernetes. The proxies reach it in plaintext,
// and only while the Service has no mesh endpoint: a Service with a
// sidecar pod is never served in plaintext.
type PlainEndpoint struct {
	// Address is the pod's host:port for the Service's port.
	Address string
	// Pod names the pod, when the EndpointSlice does.
	Pod string
}

// Service is a mesh service: implicit (the --service of registered
// workloads, selecting app=<name>) or declared by a Service resource.
type Service struct {
	Name      string
	Namespace string
	Selector  map[string]string
	Ports     []corev1.ServicePort
	// Declared is true for services defined by a Service resource.
	Declared bool
}

// Key is the "<name>.<namespace>" key of the service.
func (s *Service) Key() string { return serviceKey(s.Name, s.Namespace) }

func serviceKey(name, namespace string) string { return name + "." + namespace }

// Snapshot is one immutable, consistent view of the mesh. Callers must not
// modify anything reachable from it.
type Snapshot struct {
	// Services by key, and Keys in sorted order.
	Services map[string]*Service
	Keys     []string
	// Endpoints by service key: the workloads selected by each service
	// that have an inbound address, sorted by address.
	Endpoints map[string][]*Workload
	// Workloads sorted by ID.
	Workloads []*Workload
	// Config is the stored configuration the snapshot was built from.
	Config *api.Set
}

// Build assembles a Snapshot. It is a pure function of its inputs. The
// workloads are shared with the snapshot, not copied: callers must treat
// them as immutable (the registry replaces, never mutates, a workload).
func Build(cfg *api.Set, workloads []*Workload) *Snapshot {
	if cfg == nil {
		cfg = &api.Set{}
	}
	snap := &Snapshot{
		Services:  map[string]*Service{},
		Endpoints: map[string][]*Workload{},
		Config:    cfg,
	}
	ws := workloads
	if !sort.SliceIsSorted(ws, func(i, j int) bool { return ws[i].ID < ws[j].ID }) {
		ws = slices.Clone(ws)
		sort.Slice(ws, func(i, j int) bool { return ws[i].ID < ws[j].ID })
	}
	snap.Workloads = ws

	for _, w := range ws {
		s := implicitService(w.Service, w.Namespace)
		snap.Services[s.Key()] = s
	}
	for _, svc := range cfg.Services {
		s := declaredService(svc)
		snap.Services[s.Key()] = s
	}
	// Index workloads with an inbound address by namespace and by
	// (namespace, app): most selectors name an app, so selecting endpoints
	// stays proportional to the workloads of that app, not of the mesh.
	byNS := map[string][]*Workload{}
	byApp := map[[2]string][]*Workload{}
	for _, w := range ws {
		if w.Address == "" {
			continue
		}
		byNS[w.Namespace] = append(byNS[w.Namespace], w)
		if app, ok := w.Labels["app"]; ok {
			k := [2]string{w.Namespace, app}
			byApp[k] = append(byApp[k], w)
		}
	}
	for key, s := range snap.Services {
		snap.Keys = append(snap.Keys, key)
		candidates := byNS[s.Namespace]
		if app, ok := s.Selector["app"]; ok {
			candidates = byApp[[2]string{s.Namespace, app}]
		}
		var eps []*Workload
		for _, w := range candidates {
			if selects(s.Selector, w.Labels) {
				eps = append(eps, w)
			}
		}
		sort.Slice(eps, func(i, j int) bool {
			if eps[i].Address != eps[j].Address {
				return eps[i].Address < eps[j].Address
			}
			return eps[i].ID < eps[j].ID
		})
		snap.Endpoints[key] = eps
	}
	sort.Strings(snap.Keys)
	return snap
}

// implicitService is the service that workloads registered with --service
// name in namespace define when no Service resource declares it.
func implicitService(name, namespace string) *Service {
	return &Service{Name: name, Namespace: namespace, Selector: map[string]string{"app": name}}
}

// declaredService is the service a Service resource declares.
func declaredService(svc *corev1.Service) *Service {
	return &Service{
		Name:      svc.Name,
		Namespace: svc.Namespace,
		Selector:  svc.Spec.Selector,
		Ports:     svc.Spec.Ports,
		Declared:  true,
	}
}

// sameService reports whether a and b define the same service. An empty
// selector or port list equals a nil one.
func sameService(a, b *Service) bool {
	return a == b || a.Name == b.Name && a.Namespace == b.Namespace && a.Declared == b.Declared &&
		maps.Equal(a.Selector, b.Selector) && equality.Semantic.DeepEqual(a.Ports, b.Ports)
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// WorkloadLabels are the labels a workload carries: app=<service>,
// version=<version> (when set), plus extra labels.
func WorkloadLabels(service, version string, extra map[string]string) map[string]string {
	l := make(map[string]string, len(extra)+2)
	maps.Copy(l, extra)
	l["app"] = service
	if version != "" {
		l["version"] = version
	}
	return l
}
