package transparent

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestChains(t *testing.T) {
	out, in := Chains("default", "Orders_API.v2-long-name")
	if !strings.HasPrefix(out, "WEFT-OUT-orders-api-") || !strings.HasPrefix(in, "WEFT-IN-orders-api-") {
		t.Errorf("chains %q %q", out, in)
	}
	if len(out) > 28 || len(in) > 28 {
		t.Errorf("chain names longer than iptables allows: %q %q", out, in)
	}
	if o2, _ := Chains("shop", "Orders_API.v2-long-name"); o2 == out {
		t.Errorf("namespaces share chain %q", out)
	}
}

func TestRules(t *testing.T) {
	out, in := Chains("default", "client")
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{{
		name: "outbound only",
		cfg:  Config{Namespace: "default", Service: "client", ProxyUID: 0, OutboundPort: 15001, InboundPort: 15006},
		want: []string{
			"-t nat -N " + out,
			"-t nat -A " + out + " -m owner --uid-owner 0 -j RETURN",
			"-t nat -A " + out + " -d 127.0.0.0/8 -j RETURN",
			"-t nat -A " + out + " -p tcp -j REDIRECT --to-ports 15001",
			"-t nat -A OUTPUT -p tcp -j " + out,
		},
	}, {
		name: "inbound and exclusions",
		cfg: Config{Namespace: "default", Service: "client", ProxyUID: 1337, OutboundPort: 15001, AppPort: 8080, InboundPort: 15006,
			ExcludePorts: []int{22, 5432}, ExcludeCIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8")}},
		want: []string{
			"-t nat -N " + out,
			"-t nat -A " + out + " -m owner --uid-owner 1337 -j RETURN",
			"-t nat -A " + out + " -d 127.0.0.0/8 -j RETURN",
			"-t nat -A " + out + " -d 10.0.0.0/8 -j RETURN",
			"-t nat -A " + out + " -p tcp --dport 22 -j RETURN",
			"-t nat -A " + out + " -p tcp --dport 5432 -j RETURN",
			"-t nat -A " + out + " -p tcp -j REDIRECT --to-ports 15001",
			"-t nat -N " + in,
			"-t nat -A " + in + " -p tcp --dport 8080 -j REDIRECT --to-ports 15006",
			"-t nat -A OUTPUT -p tcp -j " + out,
			"-t nat -A PREROUTING -p tcp -j " + in,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, r := range tc.cfg.Rules() {
				got = append(got, strings.Join(r, " "))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Namespace: "default", Service: "a", OutboundPort: 1, InboundPort: 2}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no service", func(c *Config) { c.Service = "" }, "Service are required"},
		{"outbound port", func(c *Config) { c.OutboundPort = 0 }, "outbound port 0"},
		{"excluded port", func(c *Config) { c.ExcludePorts = []int{70000} }, "excluded port 70000"},
		{"ipv6 cidr", func(c *Config) { c.ExcludeCIDRs = []netip.Prefix{netip.MustParsePrefix("fd00::/8")} }, "not IPv4"},
	} {
		c := ok
		tc.edit(&c)
		err := c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// fakeTables records invocations and keeps the set of chains that exist.
type fakeTables struct {
	calls  []string
	chains map[string]int // chain -> jumps to it
}

func (f *fakeTables) Run(_ context.Context, args ...string) error {
	f.calls = append(f.calls, strings.Join(args, " "))
	op, chain := args[2], args[3]
	switch op {
	case "-N":
		f.chains[chain] = 0
	case "-F", "-X":
		if _, ok := f.chains[chain]; !ok {
			return errors.New("no chain")
		}
		if op == "-X" {
			delete(f.chains, chain)
		}
	case "-A":
		if chain == "OUTPUT" || chain == "PREROUTING" {
			f.chains[args[len(args)-1]]++
		}
	case "-D":
		target := args[len(args)-1]
		if f.chains[target] == 0 {
			return errors.New("no rule")
		}
		f.chains[target]--
	}
	return nil
}

func TestInstallRemovesStaleChains(t *testing.T) {
	ctx := context.Background()
	f := &fakeTables{chains: map[string]int{}}
	cfg := Config{Namespace: "default", Service: "client", OutboundPort: 15001, AppPort: 8080, InboundPort: 15006}
	stale, err := Install(ctx, f, cfg)
	if err != nil || stale {
		t.Fatalf("first Install: stale=%v err=%v", stale, err)
	}
	// A killed sidecar left them: the next Install finds and replaces them.
	stale, err = Install(ctx, f, cfg)
	if err != nil || !stale {
		t.Fatalf("second Install: stale=%v err=%v", stale, err)
	}
	out, in := Chains("default", "client")
	if f.chains[out] != 1 || f.chains[in] != 1 {
		t.Errorf("jumps after reinstall: %v, want one each", f.chains)
	}
	if !Remove(ctx, f, "default", "client") {
		t.Error("Remove found nothing")
	}
	if len(f.chains) != 0 {
		t.Errorf("chains left after Remove: %v", f.chains)
	}
	if Remove(ctx, f, "default", "client") {
		t.Error("second Remove found chains")
	}
}
