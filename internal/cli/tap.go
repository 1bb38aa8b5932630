package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/tapwire"
)

type tapFlags struct {
	namespace, path, method, status, output string
	bodies                                  bool
	admins                                  []string
	count                                   int
	duration                                time.Duration
}

func newTapCmd(g *globalFlags) *cobra.Command {
	var f tapFlags
	cmd := &cobra.Command{
		Use:   "tap SERVICE [--path P] [--method M] [--status S] [--bodies] [-o json]",
		Short: "Stream the requests through a service's proxies, live",
		Long: `Stream the requests through a service's proxies as they happen: those it
receives (side server) and those it makes (side client), with time, source
and destination, method, path, status, latency, identity, route and the
decisions taken (route matched, retries, authorization).

Filters: --path is a path prefix, --method a method, --status a code (503)
or a class (5xx). With --bodies, and only if the service opted in with the
annotation weft.dev/tap-bodies: "true", the first 4 KiB of request and
response bodies are shown, with authorization, cookie, password, token and
secret-like headers and fields redacted.

weft tap reads the proxies' admin endpoints (/tap), which listen on
loopback only: run it on the proxies' machine. --admin HOST:PORT (the
--admin-port of weft run; repeatable) names the proxies to tap; without it
weft tap asks the control plane for the service's proxies and their admin
addresses.`,
		Example: "  weft tap backend --admin 127.0.0.1:9901\n  weft tap backend --status 5xx -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.output != "" && f.output != "json" && f.output != "table" {
				return fmt.Errorf("--output: must be table or json, got %q", f.output)
			}
			q := url.Values{}
			for k, v := range map[string]string{"path": f.path, "method": f.method, "status": f.status} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if f.bodies {
				q.Set("bodies", "true")
			}
			if _, err := tapwire.ParseFilter(q); err != nil {
				return fmt.Errorf("--%w", err)
			}
			admins := f.admins
			if len(admins) == 0 {
				var err error
				if admins, err = tapAdmins(cmd.Context(), g, args[0], f.namespace); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			if f.duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, f.duration)
				defer cancel()
			}
			return runTap(ctx, cmd.OutOrStdout(), admins, q, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.namespace, "namespace", "n", "default", "namespace of the service")
	fl.StringVar(&f.path, "path", "", "only requests whose path starts with this")
	fl.StringVar(&f.method, "method", "", "only requests with this method")
	fl.StringVar(&f.status, "status", "", "only requests with this status code (503) or class (5xx)")
	fl.BoolVar(&f.bodies, "bodies", false, "show the first KiB of bodies (redacted), for services annotated weft.dev/tap-bodies: \"true\"")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table or json (one event per line)")
	fl.StringArrayVar(&f.admins, "admin", nil, "admin address HOST:PORT of a proxy to tap (repeatable); default: the service's proxies, from the control plane")
	fl.IntVar(&f.count, "count", 0, "stop after this many events (0: never)")
	fl.DurationVar(&f.duration, "duration", 0, "stop after this long (0: never)")
	return cmd
}

// tapAdmins asks the control plane for the admin addresses of the proxies
// of service name in namespace ns.
func tapAdmins(ctx context.Context, g *globalFlags, name, ns string) ([]string, error) {
	c, err := g.apiClient()
	if err != nil {
		return nil, fmt.Errorf("%w (or pass --admin HOST:PORT)", err)
	}
	var ps []struct {
		Service   string `json:"service"`
		Namespace string `json:"namespace"`
		Admin     string `json:"admin"`
	}
	if err := c.getJSON(ctx, "/api/v1/proxies", &ps); err != nil {
		return nil, err
	}
	var out []string
	found := 0
	for _, p := range ps {
		if p.Service != name || p.Namespace != ns {
			continue
		}
		found++
		if p.Admin != "" {
			out = append(out, p.Admin)
		}
	}
	switch {
	case found == 0:
		return nil, fmt.Errorf("no proxy of service %s.%s is connected to the control plane", name, ns)
	case len(out) == 0:
		return nil, fmt.Errorf("the control plane does not report the admin addresses of the %d proxies of %s.%s (it does only for proxies on its own machine): pass --admin HOST:PORT (the --admin-port of their weft run)", found, name, ns)
	}
	return out, nil
}

// runTap streams the events of every admin endpoint to w until ctx ends,
// f.count events were printed, or every stream ended.
func runTap(ctx context.Context, w io.Writer, admins []string, q url.Values, f tapFlags) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan tapwire.Event)
	errs := make(chan error, len(admins))
	var wg sync.WaitGroup
	for _, a := range admins {
		wg.Go(func() { errs <- tapwire.Stream(ctx, nil, a, q, events) })
	}
	go func() { wg.Wait(); close(events) }()
	enc := json.NewEncoder(w)
	n := 0
	if f.output != "json" {
		fmt.Fprintln(w, "TIME          SIDE    SOURCE -> DESTINATION                   METHOD PATH                 STATUS  LATENCY  ROUTE / DECISIONS")
	}
	for e := range events {
		if f.output == "json" {
			if err := enc.Encode(&e); err != nil {
				return err
			}
		} else {
			printTapEvent(w, &e)
		}
		if n++; f.count > 0 && n >= f.count {
			cancel()
			return nil
		}
	}
	close(errs)
	var all []error
	for err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

func printTapEvent(w io.Writer, e *tapwire.Event) {
	status := fmt.Sprint(e.Status)
	if e.GRPCStatus != "" {
		status += "/" + e.GRPCStatus
	}
	var ds []string
	for _, d := range e.Decisions {
		ds = append(ds, d.Stage+"="+d.Detail)
	}
	fmt.Fprintf(w, "%s  %-6s  %-38s  %-6s %-20s %-7s %7.1fms  %s\n", e.Time.Format("15:04:05.000"), e.Side,
		e.Source+" -> "+e.Destination, e.Method, e.Path, status, float64(e.Duration)/1e6, strings.Join(ds, ", "))
	if b := e.Bodies; b != nil {
		fmt.Fprintf(w, "    > %s\n    < %s\n", b.Request, b.Response)
	}
}
