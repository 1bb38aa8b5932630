package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/control/apiserver"
	"weft.dev/weft/internal/control/tokens"
)

func newTokenCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke join tokens",
		Long: `Join tokens let workloads get their first mesh certificate. Each token is
scoped to one namespace (never weft-system) and optionally to one service
account, a list of services and extra addresses, and may expire. Renewals use
the workload's current certificate, and stop when its token is revoked or
expires. Secrets are shown once, at creation, and stored only as a hash.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newTokenCreateCmd(g), newTokenListCmd(g), newTokenRevokeCmd(g))
	return cmd
}

func newTokenCreateCmd(g *globalFlags) *cobra.Command {
	var (
		spec   tokens.Spec
		ttl    time.Duration
		output string
	)
	cmd := &cobra.Command{
		Use:   "create --namespace NS [--service-account SA] [--service S]... [--address CIDR]... [--ttl D]",
		Short: "Create a join token and print it (only this once)",
		Example: `  weft token create --namespace shop > shop.token
  weft run --token-file shop.token --namespace shop --service orders -- ./orders
  weft token create --namespace shop --service-account orders --service orders --ttl 24h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output: must be text or json, got %q", output)
			}
			if ttl < 0 {
				return fmt.Errorf("--ttl: %s is negative", ttl)
			}
			if ttl > 0 {
				spec.TTL = ttl.String()
			}
			body, err := json.Marshal(spec)
			if err != nil {
				return err
			}
			c, err := g.apiClient()
			if err != nil {
				return err
			}
			var created apiserver.CreatedToken
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/tokens", body, &created); err != nil {
				return err
			}
			if output == "json" {
				return tokenPrintJSON(cmd.OutOrStdout(), created)
			}
			tokenPrintCreated(cmd.OutOrStdout(), cmd.ErrOrStderr(), created)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&spec.Namespace, "namespace", "n", "", "namespace the token's workloads must have (required)")
	f.StringVar(&spec.ServiceAccount, "service-account", "", "the only service account allowed (default: any in the namespace)")
	f.StringArrayVar(&spec.Services, "service", nil, "a service the workloads may join (repeatable; default: any in the namespace)")
	f.StringArrayVar(&spec.Addresses, "address", nil, "a CIDR prefix or IP the workloads may register as their address besides the one they connect from (repeatable)")
	f.DurationVar(&ttl, "ttl", 0, "lifetime of the token and of every certificate issued for it (default: no expiry)")
	f.StringVar(&spec.Description, "description", "", "what the token is for")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	_ = cmd.MarkFlagRequired("namespace")
	return cmd
}

func newTokenListCmd(g *globalFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List join tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("--output: must be table or json, got %q", output)
			}
			c, err := g.apiClient()
			if err != nil {
				return err
			}
			var list apiserver.TokenList
			if err := c.getJSON(cmd.Context(), "/api/v1/tokens", &list); err != nil {
				return err
			}
			if output == "json" {
				return tokenPrintJSON(cmd.OutOrStdout(), list)
			}
			if len(list.Items) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "No join tokens found.")
				return nil
			}
			return tokenPrintTable(cmd.OutOrStdout(), list.Items, time.Now())
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func newTokenRevokeCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a join token: no new certificates, renewals or registrations",
		Long: `Revoke a join token. The CA refuses it from now on, also for renewals of
certificates issued for it, and the xDS server refuses new registrations
under those certificates; a workload that is running keeps its certificate
until it expires (--cert-ttl of weft control, 24h by default).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.apiClient()
			if err != nil {
				return err
			}
			var t tokens.Token
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/tokens/"+url.PathEscape(args[0])+"/revoke", nil, &t); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", t.ID)
			return nil
		},
	}
}

// tokenPrintCreated prints the token string alone on out (so that `>
// file` captures just it) and what it allows on errOut.
func tokenPrintCreated(out, errOut io.Writer, c apiserver.CreatedToken) {
	fmt.Fprintln(out, c.Secret)
	t := c.Token
	fmt.Fprintf(errOut, "Created join token %s: namespace %s, service account %s, services %s, extra addresses %s, expires %s.\n",
		t.ID, t.Namespace, tokenOrAny(t.ServiceAccount), tokenListOrAny(t.Services), tokenAddresses(t), tokenExpires(t))
	fmt.Fprintln(errOut, "The token is shown only this once; give it to `weft run` or `weft proxy` with --token-file FILE or $WEFT_JOIN_TOKEN.")
}

// tokenPrintTable prints tokens as a table, ages relative to now.
func tokenPrintTable(w io.Writer, list []tokens.Token, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAMESPACE\tSERVICE ACCOUNT\tSERVICES\tADDRESSES\tEXPIRES\tSTATE\tAGE\tDESCRIPTION")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Namespace, tokenOrAny(t.ServiceAccount), tokenListOrAny(t.Services),
			tokenAddresses(t), tokenExpires(t), t.State(now), getAge(now, t.Created), getOr(t.Description, "-"))
	}
	return tw.Flush()
}

func tokenPrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func tokenOrAny(s string) string { return getOr(s, "*") }

func tokenListOrAny(l []string) string {
	if len(l) == 0 {
		return "*"
	}
	return strings.Join(l, ",")
}

func tokenAddresses(t tokens.Token) string {
	if len(t.Addresses) == 0 {
		return "-"
	}
	s := make([]string, len(t.Addresses))
	for i, p := range t.Addresses {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func tokenExpires(t tokens.Token) string {
	if t.Expires.IsZero() {
		return "never"
	}
	return t.Expires.UTC().Format(time.RFC3339)
}
