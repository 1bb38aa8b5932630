package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"weft.dev/weft/internal/api"
)

func newGetCmd(g *globalFlags) *cobra.Command {
	var (
		namespace string
		all       bool
		output    string
	)
	kindNames := make([]string, 0, len(api.Kinds()))
	for _, k := range api.Kinds() {
		kindNames = append(kindNames, strings.ToLower(k.Kind))
	}
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "Show configuration resources",
		Long: "Show configuration resources as a table, YAML or JSON.\n\nKinds: " + strings.Join(kindNames, ", ") +
			"\n(plurals and short names such as svc, dp and authz work too).",
		Example: "  weft get httproutes -A\n  weft get svc orders-v2 -n shop -o yaml",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch output {
			case "table", "yaml", "json":
			default:
				return fmt.Errorf("--output: must be table, yaml or json, got %q", output)
			}
			kind, err := api.NormalizeKind(args[0])
			if err != nil {
				return err
			}
			info, _ := api.LookupKind(kind)
			ns := namespace
			if all || !info.Namespaced {
				ns = ""
			}
			c, err := g.apiClient()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 2 {
				o, err := c.get(cmd.Context(), kind, ns, args[1])
				if err != nil {
					return err
				}
				if output == "table" {
					return getPrintTable(out, info, []api.Object{o}, time.Now(), nil)
				}
				return getPrintObject(out, output, o)
			}
			objs, err := c.list(cmd.Context(), kind, ns)
			if err != nil {
				return err
			}
			switch output {
			case "table":
				if kind == api.KindService {
					return getPrintServices(cmd.Context(), out, cmd.ErrOrStderr(), c, objs, ns)
				}
				if len(objs) == 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "No %s found%s.\n", info.Plural, getWhere(ns))
					return nil
				}
				return getPrintTable(out, info, objs, time.Now(), nil)
			case "json":
				return getPrintJSONList(out, objs)
			default:
				for i, o := range objs {
					if i > 0 {
						fmt.Fprintln(out, "---")
					}
					if err := getPrintObject(out, "yaml", o); err != nil {
						return err
					}
				}
				return nil
			}
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", api.DefaultNS, "namespace to show")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "show every namespace")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, yaml or json")
	return cmd
}

// getObjectMap renders o as a JSON map without an empty status.
func getObjectMap(o api.Object) (map[string]any, error) {
	b, err := api.Marshal(o)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if st, ok := m["status"].(map[string]any); ok && !getHasValue(st) {
		delete(m, "status")
	}
	return m, nil
}

func getHasValue(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case map[string]any:
		for _, x := range v {
			if getHasValue(x) {
				return true
			}
		}
		return false
	case []any:
		return len(v) > 0
	case string:
		return v != ""
	}
	return true
}

func getPrintObject(w io.Writer, format string, o api.Object) error {
	m, err := getObjectMap(o)
	if err != nil {
		return err
	}
	if format == "json" {
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// getPrintJSONList prints a v1 List, which `weft apply -f` accepts back.
func getPrintJSONList(w io.Writer, objs []api.Object) error {
	items := make([]any, 0, len(objs))
	for _, o := range objs {
		m, err := getObjectMap(o)
		if err != nil {
			return err
		}
		items = append(items, m)
	}
	b, err := json.MarshalIndent(map[string]any{"apiVersion": "v1", "kind": "List", "items": items}, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// getPrintTable prints NAMESPACE NAME <kind columns> AGE, and before AGE an
// ENDPOINTS column if endpoints (by namespace/name) is not nil.
func getPrintTable(w io.Writer, info api.KindInfo, objs []api.Object, now time.Time, endpoints map[string]int) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	head := []string{"NAME"}
	if info.Namespaced {
		head = append([]string{"NAMESPACE"}, head...)
	}
	head = append(head, getColumns(info.Kind, nil)...)
	if endpoints != nil {
		head = append(head, "ENDPOINTS")
	}
	fmt.Fprintln(tw, strings.Join(append(head, "AGE"), "\t"))
	for _, o := range objs {
		row := []string{o.GetName()}
		if info.Namespaced {
			row = append([]string{o.GetNamespace()}, row...)
		}
		row = append(row, getColumns(info.Kind, o)...)
		if endpoints != nil {
			row = append(row, fmt.Sprint(endpoints[o.GetNamespace()+"/"+o.GetName()]))
		}
		row = append(row, getAge(now, o.GetCreationTimestamp().Time))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// getColumns returns the kind-specific column headers (o == nil) or values.
func getColumns(kind string, o api.Object) []string {
	switch kind {
	case api.KindService:
		if o == nil {
			return []string{"SELECTOR", "PORTS"}
		}
		s := o.(*corev1.Service)
		var sel, ports []string
		for _, k := range slices.Sorted(maps.Keys(s.Spec.Selector)) {
			sel = append(sel, k+"="+s.Spec.Selector[k])
		}
		for _, p := range s.Spec.Ports {
			ports = append(ports, fmt.Sprintf("%d/%s", p.Port, getOr(string(p.Protocol), "TCP")))
		}
		return []string{getOr(strings.Join(sel, ","), "<none>"), getOr(strings.Join(ports, ","), "<none>")}
	case api.KindHTTPRoute, api.KindGRPCRoute:
		if o == nil {
			return []string{"PARENTS", "RULES"}
		}
		var refs []gatewayv1.ParentReference
		var rules int
		if r, ok := o.(*gatewayv1.HTTPRoute); ok {
			refs, rules = r.Spec.ParentRefs, len(r.Spec.Rules)
		} else {
			r := o.(*gatewayv1.GRPCRoute)
			refs, rules = r.Spec.ParentRefs, len(r.Spec.Rules)
		}
		var parents []string
		for _, p := range refs {
			kind := "Gateway"
			if p.Kind != nil {
				kind = string(*p.Kind)
			}
			parents = append(parents, kind+"/"+string(p.Name))
		}
		return []string{getOr(strings.Join(parents, ","), "<none>"), fmt.Sprint(rules)}
	case api.KindMeshConfig:
		if o == nil {
			return []string{"TRUST DOMAIN", "MTLS", "LOAD BALANCER"}
		}
		m := o.(*api.MeshConfig)
		mode, lb := api.MTLSStrict, api.LBP2CEWMA
		if m.Spec.MTLS != nil && m.Spec.MTLS.Mode != "" {
			mode = m.Spec.MTLS.Mode
		}
		if m.Spec.Defaults != nil && m.Spec.Defaults.LoadBalancer != "" {
			lb = m.Spec.Defaults.LoadBalancer
		}
		return []string{getOr(m.Spec.TrustDomain, "cluster.local"), mode, lb}
	case api.KindDestinationPolicy:
		if o == nil {
			return []string{"TARGET", "LOAD BALANCER"}
		}
		d := o.(*api.DestinationPolicy)
		return []string{getOr(d.Spec.TargetRef.Kind, "Service") + "/" + d.Spec.TargetRef.Name, getOr(d.Spec.LoadBalancer, "<default>")}
	case api.KindFaultInjection:
		return faultColumns(o) // get_fault.go
	case api.KindTCPRoute:
		return tcpRouteColumns(o) // get_tcp.go
	case api.KindExternalService:
		return externalServiceColumns(o) // get_egress.go
	case api.KindGateway, api.KindSecret, api.KindTLSRoute:
		return gatewayColumns(kind, o) // get_gateway.go
	case api.KindAuthorizationPolicy:
		if o == nil {
			return []string{"TARGET", "ACTION", "RULES"}
		}
		a := o.(*api.AuthorizationPolicy)
		target := getOr(a.Spec.TargetRef.Kind, "Service") + "/" + a.Spec.TargetRef.Name
		if a.Spec.TargetRef.Name == "" {
			target = "<namespace>"
			if a.Namespace == api.RootNamespace {
				target = "<mesh>"
			}
		}
		return []string{target, getOr(a.Spec.Action, api.ActionAllow), fmt.Sprint(len(a.Spec.Rules))}
	}
	return nil
}

func getOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// getAge renders how long ago t was, kubectl style: 45s, 12m, 5h, 3d.
func getAge(now, t time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// getWhere says which namespace a listing covers ("" for all).
func getWhere(ns string) string {
	if ns == "" {
		return ""
	}
	return fmt.Sprintf(" in namespace %q", ns)
}

// getPrintServices prints the declared Services with their endpoint
// counts, then the services that exist because workloads run with
// --service (selector app=<name>) and that no Service resource declares: on
// a laptop these are most of the mesh. Only when both lists are empty does
// it say so (on errOut).
func getPrintServices(ctx context.Context, out, errOut io.Writer, c *apiClient, declared []api.Object, ns string) error {
	var mesh struct {
		Services []struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Declared  bool              `json:"declared"`
			Endpoints []json.RawMessage `json:"endpoints"`
		} `json:"services"`
	}
	if err := c.getJSON(ctx, "/api/v1/mesh", &mesh); err != nil {
		return err
	}
	endpoints := map[string]int{}
	// The workload services come after the declared ones, which need the
	// endpoint counts first.
	var workloads bytes.Buffer
	tw := tabwriter.NewWriter(&workloads, 0, 4, 3, ' ', 0)
	n := 0
	for _, s := range mesh.Services {
		endpoints[s.Namespace+"/"+s.Name] = len(s.Endpoints)
		if s.Declared || (ns != "" && s.Namespace != ns) {
			continue
		}
		if n == 0 {
			if len(declared) > 0 {
				fmt.Fprintln(tw)
			}
			fmt.Fprintln(tw, "Services of running workloads (selector app=NAME):")
			fmt.Fprintln(tw, "NAMESPACE\tNAME\tENDPOINTS")
		}
		n++
		fmt.Fprintf(tw, "%s\t%s\t%d\n", s.Namespace, s.Name, len(s.Endpoints))
	}
	if len(declared) == 0 && n == 0 {
		fmt.Fprintf(errOut, "No services found%s.\n", getWhere(ns))
		return nil
	}
	if len(declared) > 0 {
		info, _ := api.LookupKind(api.KindService)
		if err := getPrintTable(out, info, declared, time.Now(), endpoints); err != nil {
			return err
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := out.Write(workloads.Bytes())
	return err
}
