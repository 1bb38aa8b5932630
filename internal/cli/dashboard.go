package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/control/dashboard"
)

func newDashboardCmd(g *globalFlags) *cobra.Command {
	var (
		open   bool
		output string
		ttl    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Print (and with --open, open) a login link to the control plane's dashboard",
		Long: `Ask the control plane, with the admin token, for a one-time login link to its
dashboard and print it. The link's token is in the URL's fragment, which the
browser never sends to a server; the page trades it for a session cookie
(HttpOnly, SameSite=Strict, 12 hours) and removes it from the address bar.
The link works once, within --login-ttl. The browser does not know weft's CA:
import the data dir's ca.pem, or accept the certificate warning once.
With --open, the link opens in the desktop's browser through xdg-open.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output: must be text or json, got %q", output)
			}
			c, err := g.apiClient()
			if err != nil {
				return err
			}
			body, _ := json.Marshal(dashboard.LoginRequest{TTL: ttl.String()})
			var login dashboard.Login
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/dashboard/logins", body, &login); err != nil {
				return fmt.Errorf("asking for a dashboard login link: %w", err)
			}
			url := c.base + login.Path
			w := cmd.OutOrStdout()
			if output == "json" {
				return writeIndentedJSON(w, map[string]any{"url": url, "expires": login.Expires})
			}
			fmt.Fprintln(w, url)
			if !open {
				return nil
			}
			xdg, err := exec.LookPath("xdg-open")
			if err != nil {
				return fmt.Errorf("--open: no xdg-open on this machine: open the link in a browser")
			}
			if err := exec.CommandContext(cmd.Context(), xdg, url).Start(); err != nil {
				return fmt.Errorf("--open: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&open, "open", false, "open the link with xdg-open")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().DurationVar(&ttl, "login-ttl", dashboard.DefaultLoginTTL, fmt.Sprintf("how long the link works (at most %s)", dashboard.MaxLoginTTL))
	return cmd
}
