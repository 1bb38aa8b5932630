package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/control/ca"
	"weft.dev/weft/internal/control/controlplane"
	"weft.dev/weft/internal/proxy/xdsclient"
)

func newProxyStatusCmd(g *globalFlags) *cobra.Command {
	var adminAddr string
	cmd := &cobra.Command{
		Use:   "proxy-status [--admin HOST:PORT]",
		Short: "List the proxies connected to the control plane and their config state",
		Long: `List the proxies connected to the control plane, since when, and their
config state (SYNCED, PENDING, or REJECTED with the last NACK).

A proxy that cannot reach the control plane is not in that list; with
--admin, proxy-status asks one proxy's admin endpoint instead (its /xds):
whether its xDS stream is connected, since when, the failed attempts since
and the cause of the last one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if adminAddr != "" {
				return localProxyStatus(cmd.Context(), cmd.OutOrStdout(), adminAddr)
			}
			c, err := g.apiClient()
			if err != nil {
				return err
			}
			var ps []controlplane.ProxyStatus
			if err := c.getJSON(cmd.Context(), "/api/v1/proxies", &ps); err != nil {
				return err
			}
			// The CA's status tells an old root from a new one during a
			// rotation.
			var status ca.RotationStatus
			if err := c.getJSON(cmd.Context(), "/api/v1/ca/rotation", &status); err != nil {
				return err
			}
			if len(ps) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "No proxies are connected to the control plane (start one with weft run or weft proxy; proxy-status --admin HOST:PORT asks a proxy that cannot connect).")
				return nil
			}
			// The revisions tell a proxy that has not caught up yet (a
			// control plane older than them has no such endpoint).
			var rev controlplane.RevisionStatus
			if err := c.getJSON(cmd.Context(), "/api/v1/revision", &rev); err == nil {
				replica := ""
				if rev.Replica != "" {
					replica = " by replica " + rev.Replica
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Store at revision %d; configuration served%s: revision %d.\n", rev.Store, replica, rev.Served)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROXY\tSERVICE\tINBOUND\tIDENTITY\tROOT\tCONNECTED\tREVISION\tCONFIG")
			for _, p := range ps {
				state := "SYNCED"
				if len(p.Nacked) > 0 {
					var msgs []string
					for t, m := range p.Nacked {
						msgs = append(msgs, t[strings.LastIndex(t, ".")+1:]+": "+m)
					}
					sort.Strings(msgs)
					state = "REJECTED " + strings.Join(msgs, "; ")
				} else if len(p.Acked) == 0 {
					state = "PENDING"
				}
				addr := p.Address
				if addr == "" {
					addr = "-"
				}
				root := p.Root
				if root == "" {
					root = "-"
				} else if root == status.NewRoot {
					root += " (new)"
				} else if status.NewRoot != "" {
					root += " (old)"
				}
				fmt.Fprintf(tw, "%s\t%s.%s\t%s\t%s\t%s\t%s ago\t%s\t%s\n", p.ID, p.Service, p.Namespace, addr, p.Identity, root, time.Since(p.Connected).Round(time.Second), revisionCell(p.Revision, rev.Served), state)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&adminAddr, "admin", "", "read the xDS state of the proxy whose admin endpoint is HOST:PORT (e.g. 127.0.0.1:15020) instead of asking the control plane")
	return cmd
}

// revisionCell shows the store revision a proxy acknowledged, and how far
// it is behind the revision its replica serves.
func revisionCell(proxy, served uint64) string {
	switch {
	case proxy == 0:
		return "-"
	case proxy < served:
		return fmt.Sprintf("r%d (behind r%d)", proxy, served)
	}
	return fmt.Sprintf("r%d", proxy)
}

// localProxyStatus prints the xDS stream state a proxy's admin endpoint
// reports at /xds.
func localProxyStatus(ctx context.Context, w io.Writer, adminAddr string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/xds", nil)
	if err != nil {
		return fmt.Errorf("--admin %q: %w", adminAddr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("proxy admin endpoint %s: %w", adminAddr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("proxy admin endpoint %s: GET /xds: %s: %s", adminAddr, resp.Status, strings.TrimSpace(string(b)))
	}
	var st xdsclient.ConnState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("proxy admin endpoint %s: GET /xds: %w", adminAddr, err)
	}
	ago := func(t time.Time) string { return time.Since(t).Round(time.Second).String() + " ago" }
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	state := "DISCONNECTED"
	if st.Connected {
		state = "CONNECTED"
	}
	fmt.Fprintf(tw, "XDS\t%s since %s\n", state, ago(st.Since))
	fmt.Fprintf(tw, "FAILED ATTEMPTS\t%d\n", st.FailedAttempts)
	fmt.Fprintf(tw, "RECONNECTS\t%d\n", st.Reconnects)
	lastErr := "-"
	if st.LastError != "" {
		lastErr = st.LastError + " (" + ago(st.LastErrorAt) + ")"
	}
	fmt.Fprintf(tw, "LAST ERROR\t%s\n", lastErr)
	if st.Control != "" {
		fmt.Fprintf(tw, "CONTROL PLANE\t%s\n", st.Control)
	}
	if st.Revision != 0 {
		fmt.Fprintf(tw, "REVISION\tr%d\n", st.Revision)
	}
	fmt.Fprintf(tw, "ACKS/NACKS\t%d/%d\n", st.ACKs, st.NACKs)
	if st.LastNACK != "" {
		fmt.Fprintf(tw, "LAST NACK\t%s\n", st.LastNACK)
	}
	return tw.Flush()
}
