package cli

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/control/ca"
)

func newCACmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Show or rotate the mesh root CA",
		Args:  cobra.NoArgs,
	}
	show := func(method string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			c, err := g.apiClient()
			if err != nil {
				return err
			}
			var st ca.RotationStatus
			if err := c.do(cmd.Context(), method, "/api/v1/ca/rotation", nil, &st); err != nil {
				return err
			}
			printRotation(cmd.OutOrStdout(), st)
			return nil
		}
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show the signing root, the trusted roots and a rotation in progress",
		Args:  cobra.NoArgs,
		RunE:  show(http.MethodGet),
	}, &cobra.Command{
		Use:   "rotate",
		Short: "Start a root rotation (new root trusted now, signing after one certificate lifetime, old root dropped after two)",
		Long: `Start a root rotation. The control plane creates a new root and rotates in
two phases of one workload certificate lifetime (--cert-ttl of weft control)
each, with no action needed:

  1. distributing: the trust bundle holds the old and the new root; the old
     root still signs. Every proxy receives the new bundle with its next
     certificate (at half-life).
  2. signing-with-new: the new root signs every certificate, the control
     plane's own included; both roots stay trusted. Every proxy moves to a
     certificate from the new root at its next renewal.
  3. done: the old root leaves the bundle.

weft ca status and weft proxy-status show the progress. An external CA
(--ca-cert) cannot be rotated here: rotate it in its PKI.`,
		Args: cobra.NoArgs,
		RunE: show(http.MethodPost),
	})
	return cmd
}

func printRotation(w io.Writer, st ca.RotationStatus) {
	fmt.Fprintf(w, "phase:         %s\n", st.Phase)
	fmt.Fprintf(w, "signing root:  %s\n", st.Signing)
	fmt.Fprintf(w, "trusted roots: %s\n", strings.Join(st.Bundle, ", "))
	if st.Phase != ca.PhaseNone {
		fmt.Fprintf(w, "started:       %s\n", st.Started.Format(time.RFC3339))
		fmt.Fprintf(w, "new root signs: %s\n", st.SigningSwitch.Format(time.RFC3339))
		fmt.Fprintf(w, "old root dropped: %s\n", st.OldDropped.Format(time.RFC3339))
	}
}
