package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/install"
)

// kubeCheckFlags are the flags of `weft check --kubernetes`.
type kubeCheckFlags struct {
	enabled    bool
	kubeconfig string
	opts       install.Options
}

func addKubeCheckFlags(cmd *cobra.Command) *kubeCheckFlags {
	k := &kubeCheckFlags{}
	f := cmd.Flags()
	f.BoolVar(&k.enabled, "kubernetes", false, "check a Kubernetes installation (weft install --kubernetes or the Helm chart) instead of a local control plane")
	f.StringVar(&k.kubeconfig, "kubeconfig", "", "with --kubernetes: kubeconfig file of the cluster (default: in-cluster, else $KUBECONFIG)")
	addInstallFlags(cmd, &k.opts)
	return k
}

// run checks the installation and prints one line per check.
func (k *kubeCheckFlags) run(cmd *cobra.Command) error {
	cfg, err := (&kubeStoreFlags{kubeconfig: k.kubeconfig}).restConfig()
	if err != nil {
		return err
	}
	results, err := install.Check(cmd.Context(), cfg, k.opts)
	if err != nil {
		return err
	}
	failed := printKubeChecks(cmd, results)
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed", failed, len(results))
	}
	return nil
}

func printKubeChecks(cmd *cobra.Command, results []install.CheckResult) int {
	failed := 0
	for _, r := range results {
		mark := "ok  "
		if !r.OK {
			mark, failed = "FAIL", failed+1
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s\n", mark, r.Name, r.Detail)
	}
	return failed
}
