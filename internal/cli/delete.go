package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/api"
)

func newDeleteCmd(g *globalFlags) *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:     "delete KIND NAME",
		Short:   "Delete a configuration resource",
		Example: "  weft delete httproute web\n  weft delete svc orders-v2 -n shop",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := api.NormalizeKind(args[0])
			if err != nil {
				return err
			}
			info, _ := api.LookupKind(kind)
			ns := namespace
			if !info.Namespaced {
				ns = ""
			}
			c, err := g.apiClient()
			if err != nil {
				return err
			}
			if err := c.delete(cmd.Context(), kind, ns, args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s/%s deleted\n", info.Qualified(), args[1])
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", api.DefaultNS, "namespace of the resource")
	return cmd
}
