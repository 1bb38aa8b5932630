package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/control/stats"
)

// topOutput is one frame of weft top; -o json prints it.
type topOutput struct {
	Time     time.Time       `json:"time"`
	Window   string          `json:"window"`
	Seconds  float64         `json:"seconds"`
	Paths    []statRow       `json:"paths"`
	Verdicts []stats.Verdict `json:"verdicts"`
}

func newTopCmd(g *globalFlags) *cobra.Command {
	var (
		window, output string
		interval       time.Duration
		once           bool
		limit          int
	)
	cmd := &cobra.Command{
		Use:   "top [SERVICE]",
		Short: "Watch the busiest paths of the mesh and their failure rates, refreshed live",
		Long: `Show the busiest paths (caller → service, per route where one matched) over
the last --window, busiest first, with their failure rates and p99 latency,
and the verdict naming the failing service. The view refreshes every
--interval until Ctrl-C; --once prints one frame and exits. With SERVICE,
only the paths from or to it.`,
		Example: "  weft top\n  weft top backend --window 30s\n  weft top --once -o json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if interval <= 0 {
				return fmt.Errorf("--interval: must be positive, got %s", interval)
			}
			service := ""
			if len(args) == 1 {
				service = stats.ServiceKey(args[0])
			}
			c, err := g.apiClient()
			if err != nil {
				return err
			}
			frame := func(ctx context.Context) (topOutput, error) {
				var graph stats.Graph
				if err := c.getJSON(ctx, "/api/v1/stats/graph?window="+url.QueryEscape(window), &graph); err != nil {
					return topOutput{}, err
				}
				return topSelect(graph, service, limit, time.Now()), nil
			}
			out := cmd.OutOrStdout()
			for {
				f, err := frame(cmd.Context())
				if err != nil {
					return err
				}
				if output == "json" {
					if err := writeIndentedJSON(out, f); err != nil {
						return err
					}
				} else {
					if !once {
						fmt.Fprint(out, "\x1b[H\x1b[2J") // home and clear the screen
					}
					if err := topPrint(out, f); err != nil {
						return err
					}
				}
				if once {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&window, "window", "30s", "how far back each frame looks, 10s to 15m")
	f.DurationVar(&interval, "interval", 2*time.Second, "time between refreshes")
	f.BoolVar(&once, "once", false, "print one frame and exit")
	f.IntVar(&limit, "limit", 20, "paths shown at most")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json (one object per frame)")
	return cmd
}

// topSelect orders the paths of the graph busiest first: the routes, and
// the edges on which no route matched.
func topSelect(g stats.Graph, service string, limit int, now time.Time) topOutput {
	out := topOutput{Time: now.UTC().Truncate(time.Second), Window: g.Window, Seconds: g.Seconds, Paths: []statRow{}, Verdicts: g.Verdicts}
	routed := map[[2]string]float64{}
	for _, r := range g.Routes {
		routed[[2]string{r.Source, r.Destination}] += r.Requests
	}
	add := func(e stats.Edge) {
		if service == "" || e.Source == service || e.Destination == service {
			out.Paths = append(out.Paths, statRow{Source: e.Source, Destination: e.Destination, Route: e.Route, Golden: e.Golden})
		}
	}
	for _, r := range g.Routes {
		add(r)
	}
	for _, e := range g.Edges {
		if routed[[2]string{e.Source, e.Destination}] == 0 { // no route matched
			add(e)
		}
	}
	slices.SortStableFunc(out.Paths, func(a, b statRow) int {
		return cmp.Or(cmp.Compare(b.RPS, a.RPS), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Destination, b.Destination), cmp.Compare(a.Route, b.Route))
	})
	if limit > 0 && len(out.Paths) > limit {
		out.Paths = out.Paths[:limit]
	}
	return out
}

func topPrint(w io.Writer, f topOutput) error {
	fmt.Fprintf(w, "weft top  %s  window %s (%.0fs of data)\n\n", f.Time.Format(time.TimeOnly), f.Window, f.Seconds)
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "FROM\tTO\tROUTE\tRPS\tFAILURES\tSUCCESS\tLATENCY_P99")
	for _, p := range f.Paths {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%.0f\t%s\t%s\n", p.Source, p.Destination, getOr(p.Route, "-"), p.RPS, p.Failures, successText(p.SuccessRate), msText(p.P99Ms))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(f.Paths) == 0 {
		fmt.Fprintln(w, "No traffic yet.")
	}
	for _, v := range f.Verdicts {
		fmt.Fprintf(w, "\n=> %s", v.Text)
	}
	if len(f.Verdicts) > 0 {
		fmt.Fprintln(w)
	}
	return nil
}
