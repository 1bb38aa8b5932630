// Package trustbundle publishes the mesh's trust bundle (the CA roots) as
// a ConfigMap in every namespace, where injected sidecars mount it to
// verify the control plane and their peers. It follows root rotations:
// the ConfigMaps change when the bundle does.
package trustbundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// Key is the ConfigMap key holding the PEM bundle.
const Key = "ca.pem"

// LabelManaged marks the ConfigMaps the publisher owns.
const LabelManaged = "weft.dev/trust-bundle"

// Options configure Publish.
type Options struct {
	// Name is the ConfigMap's name (default weft-ca-root, the one the
	// injector mounts).
	Name string
	// Namespace, if set, limits publishing to that namespace (the
	// control plane's --watch-namespace); empty means every namespace
	// but Kubernetes' own.
	Namespace string
	// Interval re-checks every ConfigMap this often, for root rotations
	// and ConfigMaps edited by hand (default 10s).
	Interval time.Duration
	// Logger receives the publisher's logs (default slog.Default()).
	Logger *slog.Logger
}

// skipped are Kubernetes' own namespaces, where no mesh workload runs.
func skipped(ns string) bool {
	return ns == "kube-system" || ns == "kube-public" || ns == "kube-node-lease"
}

// Publish keeps the ConfigMap equal to bundle() in every namespace until
// ctx ends: at once, when a namespace is created, and every Interval.
func Publish(ctx context.Context, kube kubernetes.Interface, bundle func() []byte, opts Options) error {
	if opts.Name == "" {
		opts.Name = "weft-ca-root"
	}
	if opts.Interval == 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &publisher{kube: kube, bundle: bundle, opts: opts, log: opts.Logger}
	t := time.NewTicker(opts.Interval)
	defer t.Stop()
	for {
		if err := p.sync(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("publishing the trust bundle; retrying", "err", err)
		}
		events := p.watch(ctx)
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				break wait
			case ev, ok := <-events:
				if !ok {
					events = nil // the watch ended: the ticker goes on
					continue
				}
				if ev.Type == watch.Added {
					break wait
				}
			}
		}
	}
}

type publisher struct {
	kube   kubernetes.Interface
	bundle func() []byte
	opts   Options
	log    *slog.Logger
}

// watch returns the namespace events (nil when the watch cannot start).
func (p *publisher) watch(ctx context.Context) <-chan watch.Event {
	if p.opts.Namespace != "" {
		return nil
	}
	w, err := p.kube.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	go func() {
		<-ctx.Done()
		w.Stop()
	}()
	return w.ResultChan()
}

// sync writes the ConfigMap into every namespace where it is missing or
// differs from the bundle.
func (p *publisher) sync(ctx context.Context) error {
	pem := p.bundle()
	if len(pem) == 0 {
		return errors.New("empty trust bundle")
	}
	namespaces := []string{p.opts.Namespace}
	if p.opts.Namespace == "" {
		list, err := p.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("listing namespaces: %w", err)
		}
		namespaces = namespaces[:0]
		for _, ns := range list.Items {
			if !skipped(ns.Name) && ns.DeletionTimestamp == nil {
				namespaces = append(namespaces, ns.Name)
			}
		}
	}
	var errs []error
	for _, ns := range namespaces {
		if err := p.ensure(ctx, ns, pem); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *publisher) ensure(ctx context.Context, ns string, pem []byte) error {
	cms := p.kube.CoreV1().ConfigMaps(ns)
	cm, err := cms.Get(ctx, p.opts.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: p.opts.Name, Namespace: ns, Labels: map[string]string{LabelManaged: "true"}},
			Data:       map[string]string{Key: string(pem)},
		}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: "weft"}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating ConfigMap %s/%s: %w", ns, p.opts.Name, err)
		}
		p.log.Debug("published the trust bundle", "namespace", ns)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading ConfigMap %s/%s: %w", ns, p.opts.Name, err)
	}
	if bytes.Equal([]byte(cm.Data[Key]), pem) {
		return nil
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[Key] = string(pem)
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: "weft"}); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("updating ConfigMap %s/%s: %w", ns, p.opts.Name, err)
	}
	p.log.Info("updated the trust bundle", "namespace", ns)
	return nil
}
