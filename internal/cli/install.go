package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/install"
)

func newInstallCmd() *cobra.Command {
	var kube bool
	var opts install.Options
	cmd := &cobra.Command{
		Use:   "install --kubernetes",
		Short: "Print the manifests that install weft on a Kubernetes cluster",
		Long: `Print the manifests of a weft installation as YAML, for kubectl apply -f -:
the weft and Gateway API CRDs, the weft-system Namespace, least-privilege
RBAC, the control plane Deployment (--replicas, with a PodDisruptionBudget)
and Service, the sidecar injection webhook with a new self-signed
certificate, the validating webhook's configuration, and a new seal key
(see docs/kubernetes/install.md). Each run makes a new certificate and seal
key; to upgrade a running installation, print with --upgrade, which leaves
the seal key out (the replicas must keep theirs).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !kube {
				return errors.New("--kubernetes is required (the only install target; elsewhere run weft control)")
			}
			if opts.Replicas < 1 {
				return fmt.Errorf("--replicas %d: want at least 1", opts.Replicas)
			}
			objs, err := install.Render(opts)
			if err != nil {
				return fmt.Errorf("install: %w", err)
			}
			return install.Write(cmd.OutOrStdout(), objs)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&kube, "kubernetes", false, "print Kubernetes manifests")
	f.BoolVar(&opts.Upgrade, "upgrade", false, "for a cluster where weft is installed: leave out the seal key Secret, which must not change")
	addInstallFlags(cmd, &opts)
	f.Int32Var(&opts.Replicas, "replicas", 2, "replicas of the control plane and of the webhook")
	f.StringVar(&opts.Image, "image", install.DefaultImage(), "weft image of the control plane, the webhook and the sidecars")
	return cmd
}

// addInstallFlags adds the flags install and check share.
func addInstallFlags(cmd *cobra.Command, opts *install.Options) {
	f := cmd.Flags()
	f.StringVar(&opts.Namespace, "namespace", install.DefaultNamespace, "namespace of the control plane and the webhook")
	f.BoolVar(&opts.NoWebhook, "no-webhook", false, "without the sidecar injection webhook")
	f.BoolVar(&opts.NoValidation, "no-validation", false, "without the validating webhook that checks kubectl writes of weft.dev objects as weft apply does")
	f.StringVar(&opts.WatchNamespace, "watch-namespace", "", "limit the control plane to this namespace's resources (default: all namespaces)")
}
