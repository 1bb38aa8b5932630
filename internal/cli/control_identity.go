package cli

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"

	"weft.dev/weft/internal/control/ca"
	"weft.dev/weft/internal/control/controlplane"
	"weft.dev/weft/internal/control/kube/podscope"
	"weft.dev/weft/internal/control/kube/saidentity"
)

// Workload identities of `weft control --identity`.
const (
	identityJoinToken  = "join-token"
	identityKubernetes = "kubernetes"
)

// identityFlags are the flags choosing how workloads prove their identity
// to the CA (see docs/kubernetes/identity.md).
type identityFlags struct {
	mode      string
	audiences []string
}

func addIdentityFlags(f *pflag.FlagSet) *identityFlags {
	i := &identityFlags{}
	f.StringVar(&i.mode, "identity", identityJoinToken, "how workloads get their first certificate: join-token (weft token) or kubernetes (a projected service-account token checked with the TokenReview API of the cluster of --kubeconfig; join tokens are then refused; see docs/kubernetes/identity.md)")
	f.StringSliceVar(&i.audiences, "sa-token-audience", []string{saidentity.DefaultAudience}, "with --identity kubernetes: audiences a service-account token must be issued for (one of them)")
	return i
}

// authenticator returns the ca.ServiceAccountAuthenticator of --identity
// kubernetes, nil for join tokens. The cluster is that of the kube flags
// (--kubeconfig, in-cluster, $KUBECONFIG), whatever the --store.
func (i *identityFlags) authenticator(k *kubeStoreFlags) (ca.ServiceAccountAuthenticator, error) {
	switch i.mode {
	case identityJoinToken:
		return nil, nil
	case identityKubernetes:
	default:
		return nil, fmt.Errorf("--identity %q: want %s or %s", i.mode, identityJoinToken, identityKubernetes)
	}
	cs, err := k.identityClient()
	if err != nil {
		return nil, err
	}
	a, err := saidentity.New(cs, saidentity.Options{Audiences: i.audiences})
	if err != nil {
		return nil, fmt.Errorf("--sa-token-audience: %w", err)
	}
	return a.CA(), nil
}

// membership returns, for --identity kubernetes, the controlplane.Membership
// that holds a sidecar to the services of its pods (kube/podscope), its
// informers running until ctx ends; nil for join tokens. It reads the
// namespace of --watch-namespace only, if set.
func (i *identityFlags) membership(ctx context.Context, k *kubeStoreFlags) (controlplane.Membership, error) {
	if i.mode != identityKubernetes {
		return nil, nil
	}
	cs, err := k.identityClient()
	if err != nil {
		return nil, err
	}
	s := podscope.New(cs, podscope.Options{Namespace: k.namespace})
	if err := s.Start(ctx); err != nil {
		return nil, fmt.Errorf("--identity kubernetes: %w", err)
	}
	return s, nil
}

// identityClient is the client of --identity kubernetes: the cluster of
// the kube flags, whatever the --store.
func (k *kubeStoreFlags) identityClient() (kubernetes.Interface, error) {
	cfg, err := k.restConfig()
	if err != nil {
		return nil, fmt.Errorf("--identity kubernetes: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("--identity kubernetes: kubernetes client: %w", err)
	}
	return cs, nil
}
