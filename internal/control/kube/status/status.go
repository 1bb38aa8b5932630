// Package status writes the status weft computes for routes, Gateways and
// policies back to the Kubernetes objects, so that `kubectl get httproute
// -o yaml` shows Accepted and ResolvedRefs the way Gateway API users
// expect. Every control-plane replica serves xDS; only the one elected
// leader (a coordination.k8s.io Lease, client-go's leader election)
// writes, so two replicas never fight over a status.
package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"weft.dev/weft/internal/api"
	kubestore "weft.dev/weft/internal/control/kube/store"
	"weft.dev/weft/internal/control/store"
)

// LeaseName is the Lease the replicas elect their status writer with.
const LeaseName = "weft-status-writer"

// Kinds are the kinds whose status weft writes.
func Kinds() []string {
	return []string{api.KindHTTPRoute, api.KindGRPCRoute, api.KindTCPRoute, api.KindTLSRoute, api.KindGateway, api.KindDestinationPolicy,
		api.KindAuthorizationPolicy, api.KindRequestAuthentication, api.KindMeshConfig, api.KindFaultInjection, api.KindExternalService}
}

// Options configure a Writer.
type Options struct {
	// Config reaches the cluster. Required.
	Config *rest.Config
	// Namespace holds the election Lease (the control plane's system
	// namespace). Required.
	Namespace string
	// Identity names this replica in the Lease. Required.
	Identity string
	// Store is the Kubernetes store the objects are read from. Required.
	Store store.Store
	// Fill computes the status of objs (apiserver.Statuses.Fill). Required.
	Fill func(objs []api.Object) error
	// Rejected lists the objects the store ignores because they are not
	// valid weft configuration (kubestore.Store.Rejected); each gets a
	// status that says why (rejected.go). Optional.
	Rejected func() []kubestore.Rejection
	// LeaseDuration, RenewDeadline and RetryPeriod tune the election
	// (defaults 15s, 10s, 2s, client-go's usual).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Resync recomputes every status this often even without a change,
	// for statuses that follow the workloads (default 10s).
	Resync time.Duration
	// Logger receives the writer's logs (default slog.Default()).
	Logger *slog.Logger
	// WhileLeading, if set, also runs while this replica leads, until
	// its term ends (the trust bundle publisher).
	WhileLeading func(ctx context.Context)
}

// Writer elects a leader among the replicas and, while leading, writes
// statuses.
type Writer struct {
	opts    Options
	dyn     dynamic.Interface
	kube    kubernetes.Interface
	log     *slog.Logger
	leading atomic.Bool
	writes  atomic.Int64

	mu sync.Mutex
	// written is the status last written (or found) per object, by UID
	// and resource version, so that unchanged statuses are not written.
	written map[api.Key]writtenStatus
	// settled is the resource version of each rejected object found
	// holding its status already, so that resyncs do not read it again.
	settled map[api.Key]string
}

type writtenStatus struct {
	uid    types.UID
	status []byte
}

// New checks opts and returns a Writer; Run starts it.
func New(opts Options) (*Writer, error) {
	switch {
	case opts.Config == nil:
		return nil, errors.New("status writer: no cluster config")
	case opts.Namespace == "":
		return nil, errors.New("status writer: no namespace for the election Lease")
	case opts.Identity == "":
		return nil, errors.New("status writer: no identity")
	case opts.Store == nil || opts.Fill == nil:
		return nil, errors.New("status writer: no store or status computation")
	}
	if opts.LeaseDuration == 0 {
		opts.LeaseDuration = 15 * time.Second
	}
	if opts.RenewDeadline == 0 {
		opts.RenewDeadline = 10 * time.Second
	}
	if opts.RetryPeriod == 0 {
		opts.RetryPeriod = 2 * time.Second
	}
	if opts.Resync == 0 {
		opts.Resync = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	dyn, err := dynamic.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("status writer: %w", err)
	}
	kube, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("status writer: %w", err)
	}
	return &Writer{opts: opts, dyn: dyn, kube: kube, log: opts.Logger, written: map[api.Key]writtenStatus{}, settled: map[api.Key]string{}}, nil
}

// Leading reports whether this replica is the status writer now.
func (w *Writer) Leading() bool { return w.leading.Load() }

// Writes is the number of status updates this replica made.
func (w *Writer) Writes() int64 { return w.writes.Load() }

// Run takes part in the election until ctx ends; while leading it writes
// statuses. A replica that loses the lease stops writing at once and
// stands again.
func (w *Writer) Run(ctx context.Context) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: LeaseName, Namespace: w.opts.Namespace},
		Client:     w.kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: w.opts.Identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   w.opts.LeaseDuration,
			RenewDeadline:   w.opts.RenewDeadline,
			RetryPeriod:     w.opts.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					w.leading.Store(true)
					w.log.Info("elected status writer", "replica", w.opts.Identity)
					w.lead(lctx)
				},
				OnStoppedLeading: func() {
					w.leading.Store(false)
					w.log.Info("no longer the status writer", "replica", w.opts.Identity)
				},
				OnNewLeader: func(id string) {
					if id != w.opts.Identity {
						w.log.Info("status writer elected", "leader", id)
					}
				},
			},
		})
		if err != nil {
			return fmt.Errorf("status writer election: %w", err)
		}
		le.Run(ctx)
	}
	return nil
}

// lead writes statuses until ctx ends: after every store change (batched
// for 50ms) and every Resync.
func (w *Writer) lead(ctx context.Context) {
	changed, cancel := w.opts.Store.Subscribe()
	defer cancel()
	if w.opts.WhileLeading != nil {
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { w.opts.WhileLeading(ctx) })
	}
	w.mu.Lock()
	// A new term starts from what is in the cluster, not from what this
	// replica wrote in an earlier one.
	w.written = map[api.Key]writtenStatus{}
	w.settled = map[api.Key]string{}
	w.mu.Unlock()
	t := time.NewTicker(w.opts.Resync)
	defer t.Stop()
	for {
		if err := w.sync(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("writing statuses; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		case <-t.C:
		}
	}
}

// sync computes every status and writes those that differ from the last
// written.
func (w *Writer) sync(ctx context.Context) error {
	var objs []api.Object
	for _, kind := range Kinds() {
		list, err := w.opts.Store.List(kind, "")
		if err != nil {
			return fmt.Errorf("listing %s: %w", kind, err)
		}
		for _, o := range list {
			objs = append(objs, o.DeepCopyObject().(api.Object))
		}
	}
	var errs []error
	if len(objs) > 0 {
		if err := w.opts.Fill(objs); err != nil {
			return fmt.Errorf("computing statuses: %w", err)
		}
	}
	for _, o := range objs {
		if ctx.Err() != nil || !w.leading.Load() {
			return nil
		}
		if err := w.write(ctx, o); err != nil {
			errs = append(errs, err)
		}
	}
	if w.opts.Rejected != nil {
		for _, r := range w.opts.Rejected() {
			if ctx.Err() != nil || !w.leading.Load() {
				return nil
			}
			if err := w.writeRejected(ctx, r); err != nil { // rejected.go
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// write updates o's status subresource unless it already holds it.
func (w *Writer) write(ctx context.Context, o api.Object) error {
	k := api.KeyOf(o)
	want, err := statusOf(o)
	if err != nil || want == nil {
		return err
	}
	if w.unchanged(k, o.GetUID(), want) {
		return nil
	}
	res, live, err := w.live(ctx, k)
	if err != nil || live == nil {
		return err
	}
	if live.GetUID() != o.GetUID() {
		return nil // replaced meanwhile; the next sync sees the new one
	}
	var st any
	if err := json.Unmarshal(want, &st); err != nil {
		return err
	}
	return w.update(ctx, res, live, k, st, want)
}

// unchanged reports whether want is the status last written (or found)
// for the object k with the given UID.
func (w *Writer) unchanged(k api.Key, uid types.UID, want []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev, ok := w.written[k]
	return ok && prev.uid == uid && bytes.Equal(prev.status, want)
}

// live reads the object k from the API server, with the client of its
// kind; nil if it is gone.
func (w *Writer) live(ctx context.Context, k api.Key) (dynamic.ResourceInterface, *unstructured.Unstructured, error) {
	info, ok := api.LookupKind(k.Kind)
	if !ok {
		return nil, nil, nil
	}
	gv, _ := schema.ParseGroupVersion(info.APIVersion)
	res := w.dyn.Resource(gv.WithResource(info.Plural)).Namespace(k.Namespace)
	live, err := res.Get(ctx, k.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", k, err)
	}
	return res, live, nil
}

// update writes st (want is its JSON as computed) as the status of live,
// unless live already has it, and remembers it as written.
func (w *Writer) update(ctx context.Context, res dynamic.ResourceInterface, live *unstructured.Unstructured, k api.Key, st any, want []byte) error {
	// Route statuses list a parent status per controller: those of other
	// controllers (another Gateway API implementation's Gateways) stay.
	keepForeignParents(st, live.Object["status"])
	// Conditions keep the transition time the cluster has for them while
	// their status stays; new or flipped ones transition now.
	withTransitionTimes(st, live.Object["status"], metav1.Now().UTC().Format(time.RFC3339))
	cur, _ := json.Marshal(live.Object["status"])
	full, _ := json.Marshal(st)
	if !jsonEqual(cur, full) {
		live.Object["status"] = st
		if _, err := res.UpdateStatus(ctx, live, metav1.UpdateOptions{FieldManager: "weft"}); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return nil // changed meanwhile: the store's notification brings it back
			}
			return fmt.Errorf("writing the status of %s: %w", k, err)
		}
		w.writes.Add(1)
		w.log.Debug("wrote status", "object", k.String())
	}
	w.mu.Lock()
	w.written[k] = writtenStatus{uid: live.GetUID(), status: want}
	w.mu.Unlock()
	return nil
}

// statusOf is the JSON of o's status field, nil if it has none.
func statusOf(o api.Object) ([]byte, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, fmt.Errorf("converting %s: %w", api.KeyOf(o), err)
	}
	st, ok := u["status"]
	if !ok || st == nil {
		return nil, nil
	}
	return json.Marshal(st)
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// withTransitionTimes sets lastTransitionTime on every condition of want
// (a map with type and status) that has none: the time of the condition
// of the same type at the same place in live if its status is the same,
// else now.
func withTransitionTimes(want, live any, now string) {
	switch w := want.(type) {
	case map[string]any:
		l, _ := live.(map[string]any)
		if isCondition(w) {
			if t, _ := w["lastTransitionTime"].(string); t == "" {
				w["lastTransitionTime"] = now
				if l != nil && l["status"] == w["status"] {
					if t, ok := l["lastTransitionTime"].(string); ok && t != "" {
						w["lastTransitionTime"] = t
					}
				}
			}
			return
		}
		for k, v := range w {
			var lv any
			if l != nil {
				lv = l[k]
			}
			withTransitionTimes(v, lv, now)
		}
	case []any:
		l, _ := live.([]any)
		for i, v := range w {
			var lv any
			if c, ok := v.(map[string]any); ok && isCondition(c) {
				for _, x := range l {
					if xc, ok := x.(map[string]any); ok && xc["type"] == c["type"] {
						lv = xc
					}
				}
			} else if i < len(l) {
				lv = l[i]
			}
			withTransitionTimes(v, lv, now)
		}
	}
}

// isCondition reports whether m looks like a metav1.Condition.
func isCondition(m map[string]any) bool {
	_, t := m["type"].(string)
	_, s := m["status"].(string)
	_, r := m["reason"]
	return t && s && r
}
