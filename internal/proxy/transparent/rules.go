// Package transparent captures a workload's TCP without the app's help, the
// way a Kubernetes pod's init step does: iptables NAT rules (iptables-nft on
// hosts with nftables) REDIRECT the app's outbound connections to the
// sidecar's transparent listener and connections to the app's port to the
// inbound listener. The listener recovers each connection's original
// destination with SO_ORIGINAL_DST and detects its protocol (HTTP/1.1, the
// HTTP/2 preface, a TLS ClientHello, or opaque after a bounded wait).
//
// The rules live in two chains of the nat table named for the workload,
// WEFT-OUT-<id> (jumped to from OUTPUT) and WEFT-IN-<id> (from PREROUTING).
// They are removed when the sidecar stops; a chain found at start belongs to
// a sidecar of the same workload that was killed (SIGKILL) and is removed
// before the new rules go in. One transparent workload per network
// namespace, as in a pod.
package transparent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
)

// Config describes what to capture.
type Config struct {
	// Namespace and Service name the workload; the chains are named for it.
	Namespace, Service string
	// ProxyUID is the uid the sidecar runs as: its own connections are
	// never captured. The app must run under another uid.
	ProxyUID int
	// OutboundPort is the transparent listener's port on 127.0.0.1.
	OutboundPort int
	// AppPort and InboundPort: connections arriving for AppPort are
	// redirected to InboundPort. AppPort 0 captures no inbound traffic.
	AppPort, InboundPort int
	// ExcludePorts are destination ports never captured outbound.
	ExcludePorts []int
	// ExcludeCIDRs are destination networks never captured outbound
	// (loopback, 127.0.0.0/8, never is).
	ExcludeCIDRs []netip.Prefix
}

// Validate checks c.
func (c Config) Validate() error {
	if c.Service == "" || c.Namespace == "" {
		return errors.New("transparent: Namespace and Service are required")
	}
	if c.ProxyUID < 0 {
		return fmt.Errorf("transparent: proxy uid %d is negative", c.ProxyUID)
	}
	for name, p := range map[string]int{"outbound port": c.OutboundPort, "inbound port": c.InboundPort} {
		if p < 1 || p > 65535 {
			return fmt.Errorf("transparent: %s %d is not a port", name, p)
		}
	}
	if c.AppPort < 0 || c.AppPort > 65535 {
		return fmt.Errorf("transparent: app port %d is not a port", c.AppPort)
	}
	for _, p := range c.ExcludePorts {
		if p < 1 || p > 65535 {
			return fmt.Errorf("transparent: excluded port %d is not a port", p)
		}
	}
	for _, p := range c.ExcludeCIDRs {
		if !p.Addr().Is4() {
			return fmt.Errorf("transparent: excluded network %s is not IPv4 (only IPv4 is captured)", p)
		}
	}
	return nil
}

// Chains returns the names of the workload's outbound and inbound chains:
// WEFT-OUT- and WEFT-IN- followed by up to ten characters of the service
// name and six hex digits of a hash of namespace/service (iptables chain
// names are at most 28 characters).
func Chains(namespace, service string) (out, in string) {
	sum := sha256.Sum256([]byte(namespace + "/" + service))
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(service))
	if len(name) > 10 {
		name = name[:10]
	}
	id := name + "-" + hex.EncodeToString(sum[:3])
	return "WEFT-OUT-" + id, "WEFT-IN-" + id
}

// jump is a rule in a built-in chain that sends TCP to one of ours.
type jump struct{ builtin, chain string }

func (c Config) jumps() []jump {
	out, in := Chains(c.Namespace, c.Service)
	j := []jump{{"OUTPUT", out}}
	if c.AppPort != 0 {
		j = append(j, jump{"PREROUTING", in})
	}
	return j
}

func (j jump) args(op string) []string {
	return []string{"-t", "nat", op, j.builtin, "-p", "tcp", "-j", j.chain}
}

// Rules returns the iptables invocations (arguments after the binary name)
// that install c's capture, in order.
func (c Config) Rules() [][]string {
	out, in := Chains(c.Namespace, c.Service)
	nat := func(a ...string) []string { return append([]string{"-t", "nat"}, a...) }
	r := [][]string{
		nat("-N", out),
		// The sidecar's own connections (to peers, the control plane,
		// passthrough destinations) go out as they are.
		nat("-A", out, "-m", "owner", "--uid-owner", strconv.Itoa(c.ProxyUID), "-j", "RETURN"),
		nat("-A", out, "-d", "127.0.0.0/8", "-j", "RETURN"),
	}
	for _, p := range c.ExcludeCIDRs {
		r = append(r, nat("-A", out, "-d", p.Masked().String(), "-j", "RETURN"))
	}
	for _, p := range c.ExcludePorts {
		r = append(r, nat("-A", out, "-p", "tcp", "--dport", strconv.Itoa(p), "-j", "RETURN"))
	}
	r = append(r, nat("-A", out, "-p", "tcp", "-j", "REDIRECT", "--to-ports", strconv.Itoa(c.OutboundPort)))
	if c.AppPort != 0 {
		r = append(r,
			nat("-N", in),
			nat("-A", in, "-p", "tcp", "--dport", strconv.Itoa(c.AppPort), "-j", "REDIRECT", "--to-ports", strconv.Itoa(c.InboundPort)),
		)
	}
	for _, j := range c.jumps() {
		r = append(r, j.args("-A"))
	}
	return r
}

// Runner runs one iptables invocation.
type Runner interface {
	Run(ctx context.Context, args ...string) error
}

// Exec runs the iptables binary Path ("iptables" if empty, which is
// iptables-nft where nftables is the backend), waiting for the xtables lock.
type Exec struct{ Path string }

// Run implements Runner.
func (e Exec) Run(ctx context.Context, args ...string) error {
	path := e.Path
	if path == "" {
		path = "iptables"
	}
	out, err := exec.CommandContext(ctx, path, append([]string{"-w", "5"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", path, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Install removes any stale chains of the workload (left by a sidecar that
// was killed) and installs c's rules. stale reports whether there were
// any. On error the rules installed so far are removed.
func Install(ctx context.Context, run Runner, c Config) (stale bool, err error) {
	if err := c.Validate(); err != nil {
		return false, err
	}
	stale = Remove(ctx, run, c.Namespace, c.Service)
	for _, args := range c.Rules() {
		if err := run.Run(ctx, args...); err != nil {
			Remove(context.WithoutCancel(ctx), run, c.Namespace, c.Service)
			return stale, fmt.Errorf("transparent: installing rules: %w", err)
		}
	}
	return stale, nil
}

// Remove deletes the workload's jumps and chains, whatever they hold, and
// reports whether any existed.
func Remove(ctx context.Context, run Runner, namespace, service string) (existed bool) {
	out, in := Chains(namespace, service)
	for _, j := range []jump{{"OUTPUT", out}, {"PREROUTING", in}} {
		for run.Run(ctx, j.args("-D")...) == nil {
			existed = true
		}
		if run.Run(ctx, "-t", "nat", "-F", j.chain) == nil {
			existed = true
			_ = run.Run(ctx, "-t", "nat", "-X", j.chain)
		}
	}
	return existed
}
