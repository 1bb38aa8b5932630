package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/buildinfo"
)

// versionOutput is what weft version -o json prints.
type versionOutput struct {
	Client       buildinfo.Info  `json:"client"`
	ControlPlane *buildinfo.Info `json:"controlPlane,omitempty"`
	// Error says why the control plane's version is missing.
	Error string `json:"error,omitempty"`
}

func newVersionCmd(g *globalFlags) *cobra.Command {
	var (
		output     string
		clientOnly bool
	)
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the versions of this weft binary and of the control plane",
		Long: `Print the version of this binary and, unless --client, of the control plane
it finds (see weft check if it finds none). Builds from a checkout say
"(devel)" and their commit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			out := versionOutput{Client: buildinfo.Get()}
			if !clientOnly {
				c, err := g.apiClient()
				if err == nil {
					var v buildinfo.Info
					if err = c.getJSON(cmd.Context(), "/api/v1/version", &v); err == nil {
						out.ControlPlane = &v
					}
				}
				if err != nil {
					out.Error = err.Error()
				}
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				return writeIndentedJSON(w, out)
			}
			fmt.Fprintf(w, "Client:        %s\n", versionText(out.Client))
			switch {
			case out.ControlPlane != nil:
				fmt.Fprintf(w, "Control plane: %s\n", versionText(*out.ControlPlane))
			case !clientOnly:
				fmt.Fprintf(w, "Control plane: unavailable: %s\n", out.Error)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print only this binary's version")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func versionText(v buildinfo.Info) string {
	s := v.Version
	if v.Commit != "" {
		s += " (commit " + v.Commit + ")"
	}
	return s + ", " + v.GoVersion + " " + v.Platform
}
