package cli

import (
	"fmt"
	"os/exec"

	"github.com/spf13/cobra"
)

func newDashboardCmd(g *globalFlags) *cobra.Command {
	var (
		open   bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Print (and with --open, open) the URL of the control plane's dashboard",
		Long: `Print the URL of the dashboard the control plane serves. The web UI is not
built yet: the page lists the data API it will use (the service graph with
golden metrics and verdicts, per-service views), which answers with the admin
token. With --open, the URL opens in the desktop's browser through xdg-open.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output: must be text or json, got %q", output)
			}
			c, err := g.apiClient()
			if err != nil {
				return err
			}
			url := c.base + "/dashboard"
			w := cmd.OutOrStdout()
			if output == "json" {
				return writeIndentedJSON(w, map[string]string{"url": url})
			}
			fmt.Fprintln(w, url)
			if !open {
				return nil
			}
			xdg, err := exec.LookPath("xdg-open")
			if err != nil {
				return fmt.Errorf("--open: no xdg-open on this machine: open %s in a browser", url)
			}
			if err := exec.CommandContext(cmd.Context(), xdg, url).Start(); err != nil {
				return fmt.Errorf("--open: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&open, "open", false, "open the URL with xdg-open")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
