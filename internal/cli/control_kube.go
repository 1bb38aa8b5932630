package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"weft.dev/weft/internal/control/controlplane"
	kubestatus "weft.dev/weft/internal/control/kube/status"
	kubestore "weft.dev/weft/internal/control/kube/store"
	"weft.dev/weft/internal/control/kube/trustbundle"
	"weft.dev/weft/internal/control/store"
)

// Store back ends of `weft control --store`.
const (
	storeBolt       = "bolt"
	storeKubernetes = "kubernetes"
)

// kubeStoreFlags are the flags of `weft control --store kubernetes`.
type kubeStoreFlags struct {
	kubeconfig      string
	namespace       string
	systemNamespace string
}

func addKubeStoreFlags(f *pflag.FlagSet) *kubeStoreFlags {
	k := &kubeStoreFlags{}
	f.StringVar(&k.kubeconfig, "kubeconfig", "", "with --store kubernetes or --identity kubernetes: kubeconfig file of the cluster (default: the in-cluster service account, else $KUBECONFIG)")
	f.StringVar(&k.namespace, "watch-namespace", "", "with --store kubernetes: read and write namespaced resources in this namespace only (default: all)")
	f.StringVar(&k.systemNamespace, "system-namespace", "", "with --store kubernetes: namespace of the control plane's Secrets and Leases (default: the pod's, else weft-system)")
	return k
}

// openStore returns the controlplane.Options.OpenStore of the Kubernetes
// store.
func (k *kubeStoreFlags) openStore(log *slog.Logger) func(context.Context) (store.Store, error) {
	return func(ctx context.Context) (store.Store, error) {
		cfg, err := k.restConfig()
		if err != nil {
			return nil, err
		}
		s, err := kubestore.Open(ctx, cfg, kubestore.Options{
			Namespace:       k.namespace,
			SystemNamespace: k.systemNamespace,
			Logger:          log.With("component", "kubestore"),
		})
		if err != nil {
			return nil, fmt.Errorf("kubernetes store: %w", err)
		}
		return s, nil
	}
}

// restConfig is --kubeconfig's cluster, else the in-cluster one, else
// $KUBECONFIG's.
func (k *kubeStoreFlags) restConfig() (*rest.Config, error) {
	if k.kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", k.kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", k.kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err == nil {
		return cfg, nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, fmt.Errorf("in-cluster kubernetes config: %w", err)
	}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("$KUBECONFIG %s: %w", env, err)
		}
		return cfg, nil
	}
	return nil, errors.New("--store kubernetes: not running in a cluster; pass --kubeconfig (or set $KUBECONFIG)")
}

// storeOpener returns the OpenStore of --store name (nil: the bbolt file).
func storeOpener(name string, k *kubeStoreFlags, e *etcdStoreFlags, log *slog.Logger) (func(context.Context) (store.Store, error), error) {
	switch name {
	case "", storeBolt:
		return nil, nil
	case storeKubernetes:
		return k.openStore(log), nil
	case storeEtcd:
		return e.openStore(log) // control_etcd.go
	}
	return nil, fmt.Errorf("--store %q: want %s, %s or %s", name, storeBolt, storeKubernetes, storeEtcd)
}

// statusWriter is the controlplane.Options.WriteStatus of the Kubernetes
// store: the replicas elect one that writes route, Gateway and policy
// statuses back to the cluster and publishes the trust bundle ConfigMap
// injected sidecars mount.
func (k *kubeStoreFlags) statusWriter(log *slog.Logger) func(context.Context, controlplane.StatusDeps) error {
	return func(ctx context.Context, d controlplane.StatusDeps) error {
		ks, ok := d.Store.(*kubestore.Store)
		if !ok {
			return fmt.Errorf("status writer: store %T is not the Kubernetes store", d.Store)
		}
		cfg, err := k.restConfig()
		if err != nil {
			return err
		}
		kube, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return fmt.Errorf("status writer: %w", err)
		}
		publish := func(ctx context.Context) {
			_ = trustbundle.Publish(ctx, kube, d.Bundle, trustbundle.Options{Namespace: k.namespace, Logger: log.With("component", "trustbundle")})
		}
		w, err := kubestatus.New(kubestatus.Options{Config: cfg, Namespace: ks.SystemNamespace(), Identity: ks.ReplicaID(),
			Store: d.Store, Fill: d.Fill, Rejected: ks.Rejected, Logger: log.With("component", "status"), WhileLeading: publish})
		if err != nil {
			return err
		}
		return w.Run(ctx)
	}
}
