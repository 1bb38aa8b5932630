package cli

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"

	"github.com/spf13/pflag"

	"weft.dev/weft/internal/proxy/sidecar"
)

// transparentFlags are the transparent interception flags of `weft proxy`
// and `weft run` (docs/transparent.md).
type transparentFlags struct {
	on           bool
	port         int
	excludePorts []int
	excludeCIDRs []string
	preinstalled bool
}

func (f *transparentFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.on, "transparent", false, "capture the app's outbound TCP and the connections to --app-port with iptables NAT rules (root; Linux); the proxy's own uid is never captured, so the app must run under another uid (weft run: --app-uid)")
	fs.IntVar(&f.port, "transparent-port", 0, "port of the transparent outbound listener on 127.0.0.1 (0: a free port)")
	fs.IntSliceVar(&f.excludePorts, "exclude-ports", nil, "with --transparent: outbound destination ports never captured (comma-separated or repeated)")
	fs.BoolVar(&f.preinstalled, "transparent-preinstalled", false, "with --transparent: the rules were installed before (weft transparent-init, a pod's weft-init container); serve --transparent-port, install and remove nothing, need no root")
	fs.StringSliceVar(&f.excludeCIDRs, "exclude-cidrs", nil, "with --transparent: outbound destination IPv4 networks never captured, e.g. 10.0.0.0/8 (comma-separated or repeated)")
}

// options returns the sidecar's Transparent options, nil without
// --transparent.
func (f *transparentFlags) options() (*sidecar.Transparent, error) {
	if !f.on {
		if len(f.excludePorts) > 0 || len(f.excludeCIDRs) > 0 || f.port != 0 || f.preinstalled {
			return nil, fmt.Errorf("--exclude-ports, --exclude-cidrs, --transparent-port and --transparent-preinstalled need --transparent")
		}
		return nil, nil
	}
	if f.port < 0 || f.port > 65535 {
		return nil, fmt.Errorf("--transparent-port: %d is not a port", f.port)
	}
	if f.preinstalled {
		if f.port == 0 {
			return nil, fmt.Errorf("--transparent-preinstalled needs --transparent-port: the port the installed rules redirect to")
		}
		if len(f.excludePorts) > 0 || len(f.excludeCIDRs) > 0 {
			return nil, fmt.Errorf("--transparent-preinstalled: --exclude-ports and --exclude-cidrs belong to the step that installed the rules")
		}
		return &sidecar.Transparent{Listen: fmt.Sprintf("127.0.0.1:%d", f.port), Preinstalled: true}, nil
	}
	t := &sidecar.Transparent{Listen: fmt.Sprintf("127.0.0.1:%d", f.port)}
	for _, p := range f.excludePorts {
		if p < 1 || p > 65535 {
			return nil, fmt.Errorf("--exclude-ports: %d is not a port", p)
		}
		t.ExcludePorts = append(t.ExcludePorts, p)
	}
	for _, s := range f.excludeCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("--exclude-cidrs: %w", err)
		}
		if !p.Addr().Is4() {
			return nil, fmt.Errorf("--exclude-cidrs: %s is not IPv4 (only IPv4 is captured)", s)
		}
		t.ExcludeCIDRs = append(t.ExcludeCIDRs, p)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("--transparent: installing iptables rules needs root")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil, fmt.Errorf("--transparent: %w (install the iptables package; iptables-nft drives nftables)", err)
	}
	return t, nil
}
