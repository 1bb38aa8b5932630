package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/control/stats"
)

// statRow is one line of weft stat: a service, an edge or a route.
type statRow struct {
	Service     string `json:"service,omitempty"`
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination,omitempty"`
	Route       string `json:"route,omitempty"`
	stats.Golden
	// Culprit is set on a service whose own failures cause errors.
	Culprit bool `json:"culprit,omitempty"`
}

// statOutput is what weft stat -o json prints.
type statOutput struct {
	Window   string          `json:"window"`
	Seconds  float64         `json:"seconds"`
	Source   string          `json:"source"`
	Kind     string          `json:"kind"`
	Rows     []statRow       `json:"rows"`
	Verdicts []stats.Verdict `json:"verdicts"`
}

func newStatCmd(g *globalFlags) *cobra.Command {
	var from, to, window, output string
	cmd := &cobra.Command{
		Use:   "stat [KIND[/NAME]]",
		Short: "Show golden metrics (requests/s, success rate, latency) per service, edge or route",
		Long: `Show, over the last --window, the requests per second, success rate and
p50/p95/p99 latency that the proxies recorded: per service (KIND service, the
default: the requests each service answered), per edge (KIND edge: calls from
one service to another) or per route (KIND route). --from and --to keep the
calls from or to one service; with KIND service they list its edges.

Below the table, the verdict names the services whose own failures cause the
errors ("backend is failing 48% of requests; frontend's errors come from
backend"). A request fails on a 5xx, or a gRPC status UNKNOWN,
DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE or DATA_LOSS. Service
names are NAME.NAMESPACE; a bare NAME means namespace default.`,
		Example: "  weft stat\n  weft stat service/backend\n  weft stat edges --from frontend\n  weft stat routes --to backend --window 5m -o json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			kind, name := "service", ""
			if len(args) == 1 {
				var err error
				if kind, name, err = statTarget(args[0]); err != nil {
					return err
				}
			}
			c, err := g.apiClient()
			if err != nil {
				return err
			}
			var graph stats.Graph
			if err := c.getJSON(cmd.Context(), "/api/v1/stats/graph?window="+url.QueryEscape(window), &graph); err != nil {
				return err
			}
			res := statSelect(graph, kind, name, from, to)
			if output == "json" {
				return writeIndentedJSON(cmd.OutOrStdout(), res)
			}
			return statPrint(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "only calls from this service")
	f.StringVar(&to, "to", "", "only calls to this service")
	f.StringVar(&window, "window", "1m", "how far back to look, 10s to 15m")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// checkOutput accepts -o table or json.
func checkOutput(o string) error {
	if o != "table" && o != "json" {
		return fmt.Errorf("--output: must be table or json, got %q", o)
	}
	return nil
}

// statTarget reads KIND[/NAME].
func statTarget(arg string) (kind, name string, err error) {
	k, name, _ := strings.Cut(arg, "/")
	switch strings.ToLower(k) {
	case "service", "services", "svc":
		kind = "service"
	case "edge", "edges":
		kind = "edge"
	case "route", "routes", "rt":
		kind = "route"
	default:
		return "", "", fmt.Errorf("stat %q: unknown kind %q (want service, edge or route, e.g. service/backend)", arg, k)
	}
	return kind, name, nil
}

// statSelect picks the rows of kind (named name, from and to, each "" for
// any) and the verdicts about the services shown.
func statSelect(g stats.Graph, kind, name, from, to string) statOutput {
	key := func(s string) string {
		if s == "" {
			return ""
		}
		return stats.ServiceKey(s)
	}
	from, to = key(from), key(to)
	if kind == "service" && (from != "" || to != "") {
		kind = "edge"
		if name != "" {
			// stat service/x --to y: the calls from x to y, and the reverse.
			if from == "" {
				from = key(name)
			} else if to == "" {
				to = key(name)
			}
			name = ""
		}
	}
	out := statOutput{Window: g.Window, Seconds: g.Seconds, Source: g.Source, Kind: kind, Rows: []statRow{}, Verdicts: []stats.Verdict{}}
	involved := map[string]bool{}
	switch kind {
	case "service":
		for _, n := range g.Nodes {
			if name != "" && n.Service != key(name) {
				continue
			}
			out.Rows = append(out.Rows, statRow{Service: n.Service, Golden: n.Inbound, Culprit: n.Culprit})
			involved[n.Service] = true
		}
	default:
		edges := g.Edges
		if kind == "route" {
			edges = g.Routes
		}
		for _, e := range edges {
			if (from != "" && e.Source != from) || (to != "" && e.Destination != to) || (kind == "route" && name != "" && e.Route != name) ||
				(kind == "edge" && name != "" && e.Source != key(name) && e.Destination != key(name)) {
				continue
			}
			out.Rows = append(out.Rows, statRow{Source: e.Source, Destination: e.Destination, Route: e.Route, Golden: e.Golden})
			involved[e.Source], involved[e.Destination] = true, true
		}
	}
	for _, v := range g.Verdicts {
		hit := involved[v.Culprit]
		for _, c := range v.Callers {
			hit = hit || involved[c]
		}
		if hit {
			out.Verdicts = append(out.Verdicts, v)
		}
	}
	return out
}

// statPrint prints the table Linkerd users know, then the verdicts.
func statPrint(w io.Writer, res statOutput) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	switch res.Kind {
	case "service":
		fmt.Fprintln(tw, "NAME\tSUCCESS\tRPS\tLATENCY_P50\tLATENCY_P95\tLATENCY_P99\tTCP_CONN")
	case "edge":
		fmt.Fprintln(tw, "FROM\tTO\tSUCCESS\tRPS\tLATENCY_P50\tLATENCY_P95\tLATENCY_P99")
	default:
		fmt.Fprintln(tw, "ROUTE\tFROM\tTO\tSUCCESS\tRPS\tLATENCY_P50\tLATENCY_P95\tLATENCY_P99")
	}
	for _, r := range res.Rows {
		golden := fmt.Sprintf("%s\t%.1f\t%s\t%s\t%s", successText(r.SuccessRate), r.RPS, msText(r.P50Ms), msText(r.P95Ms), msText(r.P99Ms))
		switch res.Kind {
		case "service":
			name := r.Service
			if r.Culprit {
				name += " (culprit)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", name, golden, tcpText(r.TCPConnections))
		case "edge":
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Source, r.Destination, golden)
		default:
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Route, r.Source, r.Destination, golden)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Rows) == 0 {
		fmt.Fprintf(w, "No traffic in the last %s (%s).\n", res.Window, statCoverage(res))
	}
	for _, v := range res.Verdicts {
		fmt.Fprintf(w, "\n=> %s", v.Text)
	}
	if len(res.Verdicts) > 0 {
		fmt.Fprintln(w)
	}
	return nil
}

// statCoverage says where the numbers come from and how much of the window
// has data.
func statCoverage(res statOutput) string {
	if res.Source == "prometheus" {
		return "from Prometheus"
	}
	return fmt.Sprintf("the control plane has %.0fs of data from the proxies it scrapes", res.Seconds)
}

func successText(sr *float64) string {
	if sr == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", *sr*100)
}

func msText(ms float64) string {
	if ms == 0 {
		return "-"
	}
	if ms < 10 {
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}

func tcpText(n float64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", n)
}

// writeIndentedJSON prints v as indented JSON.
func writeIndentedJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
