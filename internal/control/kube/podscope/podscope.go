// Package podscope decides which mesh services the sidecars of a
// Kubernetes service account may join, from the Pods, Services and
// ServiceAccounts the cluster lists (client-go informers).
//
// Under --identity kubernetes a sidecar's certificate proves only its
// namespace and service account. The service it registers for is its own
// claim; podscope holds that claim to what Kubernetes says about the pods
// running as the account:
//
//   - the service account exists and at least one of its pods is live
//     (not Succeeded or Failed; a terminating pod still counts, so that a
//     draining sidecar keeps its config);
//   - the service is the mesh service (inject.ServiceName) of one of those
//     pods, and if a Service of that name with a selector exists in the
//     namespace, the selector matches that pod.
//
// So a compromised workload cannot join, and draw the traffic of, a
// Service its pods are not members of, and the streams of a service
// account whose pods are gone, or which was deleted, are ended on the xDS
// server's next revalidation.
package podscope

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"weft.dev/weft/internal/control/kube/inject"
)

// indexServiceAccount indexes Pods by "<namespace>/<service account>".
const indexServiceAccount = "serviceAccount"

// DefaultSyncTimeout bounds how long Start waits for the first list.
const DefaultSyncTimeout = time.Minute

// Options configure New.
type Options struct {
	// Namespace, if set, limits the Pods, Services and ServiceAccounts
	// read to that namespace; workloads of other namespaces are then
	// never members of anything.
	Namespace string
	// SyncTimeout bounds Start's wait for the caches (DefaultSyncTimeout
	// if zero).
	SyncTimeout time.Duration
}

// Scoper answers membership questions from its informers' caches. Call
// Start before using it; it is safe for concurrent use.
type Scoper struct {
	opts     Options
	pods     cache.SharedIndexInformer
	services cache.SharedIndexInformer
	accounts cache.SharedIndexInformer
}

// New returns a Scoper reading through client.
func New(client kubernetes.Interface, opts Options) *Scoper {
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = DefaultSyncTimeout
	}
	rc := client.CoreV1().RESTClient()
	pods := cache.NewSharedIndexInformer(cache.NewListWatchFromClient(rc, "pods", opts.Namespace, fields.Everything()), &corev1.Pod{}, 0,
		cache.Indexers{indexServiceAccount: func(obj any) ([]string, error) {
			p, ok := obj.(*corev1.Pod)
			if !ok {
				return nil, nil
			}
			return []string{p.Namespace + "/" + serviceAccountOf(p)}, nil
		}})
	// Only what membership needs is kept of a Pod: a cluster's pods are
	// many and their specs large.
	_ = pods.SetTransform(slimPod)
	return &Scoper{
		opts:     opts,
		pods:     pods,
		services: cache.NewSharedIndexInformer(cache.NewListWatchFromClient(rc, "services", opts.Namespace, fields.Everything()), &corev1.Service{}, 0, cache.Indexers{}),
		accounts: cache.NewSharedIndexInformer(cache.NewListWatchFromClient(rc, "serviceaccounts", opts.Namespace, fields.Everything()), &corev1.ServiceAccount{}, 0, cache.Indexers{}),
	}
}

// Start runs the informers until ctx ends and waits for their first list;
// it fails if that takes longer than Options.SyncTimeout (no RBAC to list
// pods, services or service accounts, an unreachable API server).
func (s *Scoper) Start(ctx context.Context) error {
	for _, inf := range []cache.SharedIndexInformer{s.pods, s.services, s.accounts} {
		go inf.Run(ctx.Done())
	}
	sctx, cancel := context.WithTimeout(ctx, s.opts.SyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(sctx.Done(), s.pods.HasSynced, s.services.HasSynced, s.accounts.HasSynced) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("pods, services and serviceaccounts not listed within %s (does the control plane's RBAC allow list and watch on them?)", s.opts.SyncTimeout)
	}
	return nil
}

// Live returns nil if service account namespace/name exists and has a live
// pod, else an error saying which is missing.
func (s *Scoper) Live(namespace, name string) error {
	_, err := s.livePods(namespace, name)
	return err
}

// Member returns nil if service is the mesh service of a live pod of
// service account namespace/account that the Service of that name, if it
// exists with a selector, selects.
func (s *Scoper) Member(namespace, account, service string) error {
	pods, err := s.livePods(namespace, account)
	if err != nil {
		return err
	}
	var selector labels.Selector
	if obj, ok, err := s.services.GetIndexer().GetByKey(namespace + "/" + service); err != nil {
		return fmt.Errorf("service %s/%s: %w", namespace, service, err)
	} else if ok {
		if sel := obj.(*corev1.Service).Spec.Selector; len(sel) > 0 {
			selector = labels.SelectorFromSet(sel)
		}
	}
	named := 0
	for _, p := range pods {
		if name, err := inject.ServiceName(p); err != nil || name != service {
			continue
		}
		named++
		if selector == nil || selector.Matches(labels.Set(p.Labels)) {
			return nil
		}
	}
	if named == 0 {
		return fmt.Errorf("no live pod of service account %s/%s is of service %q (a pod's service is its %s annotation, else its app.kubernetes.io/name or app label, else its service account)",
			namespace, account, service, inject.AnnotationService)
	}
	return fmt.Errorf("the Service %s/%s selects none of the live pods of service account %s/%s that name it", namespace, service, namespace, account)
}

// livePods returns the live pods of service account namespace/name.
func (s *Scoper) livePods(namespace, name string) ([]*corev1.Pod, error) {
	if s.opts.Namespace != "" && namespace != s.opts.Namespace {
		return nil, fmt.Errorf("namespace %s is not watched (the control plane reads namespace %s only)", namespace, s.opts.Namespace)
	}
	key := namespace + "/" + name
	if _, ok, err := s.accounts.GetIndexer().GetByKey(key); err != nil {
		return nil, fmt.Errorf("service account %s: %w", key, err)
	} else if !ok {
		return nil, fmt.Errorf("service account %s does not exist", key)
	}
	objs, err := s.pods.GetIndexer().ByIndex(indexServiceAccount, key)
	if err != nil {
		return nil, fmt.Errorf("pods of service account %s: %w", key, err)
	}
	var live []*corev1.Pod
	for _, o := range objs {
		p := o.(*corev1.Pod)
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return nil, errNoPod(key)
	}
	return live, nil
}

// errNoPod is the refusal of a service account without a live pod.
func errNoPod(key string) error {
	return errors.New("no live pod runs as service account " + key)
}

// serviceAccountOf is the pod's service account; the API server sets
// "default" when the spec names none.
func serviceAccountOf(p *corev1.Pod) string {
	if p.Spec.ServiceAccountName == "" {
		return "default"
	}
	return p.Spec.ServiceAccountName
}

// slimPod keeps what membership reads of a Pod: its name, namespace,
// labels, service annotation, service account and phase.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone
	}
	slim := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels, DeletionTimestamp: p.DeletionTimestamp,
		},
		Spec:   corev1.PodSpec{ServiceAccountName: serviceAccountOf(p)},
		Status: corev1.PodStatus{Phase: p.Status.Phase},
	}
	if v, ok := p.Annotations[inject.AnnotationService]; ok {
		slim.Annotations = map[string]string{inject.AnnotationService: v}
	}
	return slim, nil
}
