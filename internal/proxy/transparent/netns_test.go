package transparent

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// netnsTables runs iptables inside a network namespace of the test's own.
type netnsTables struct{ ns string }

func (n netnsTables) Run(ctx context.Context, args ...string) error {
	full := append([]string{"netns", "exec", n.ns, "iptables", "-w", "5"}, args...)
	if out, err := exec.CommandContext(ctx, "ip", full...).CombinedOutput(); err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// newNetns makes a network namespace for the test, or skips (fails with
// WEFT_REQUIRE_NETNS=1) when it cannot.
func newNetns(t *testing.T) string {
	t.Helper()
	why := ""
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		why = "not root on Linux"
	} else if _, err := exec.LookPath("iptables"); err != nil {
		why = "iptables not installed"
	}
	ns := fmt.Sprintf("wefttr%d", os.Getpid())
	if why == "" {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			why = fmt.Sprintf("ip netns add: %v: %s", err, out)
		}
	}
	if why != "" {
		if os.Getenv("WEFT_REQUIRE_NETNS") == "1" {
			t.Fatalf("network namespaces unavailable (%s) and WEFT_REQUIRE_NETNS=1", why)
		}
		t.Skipf("skipping: network namespaces unavailable (%s); set WEFT_REQUIRE_NETNS=1 to fail instead", why)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	return ns
}

// TestInstallInNetns installs the rules of docs/transparent.md's example
// with the real iptables in a namespace of the test's own, compares
// `iptables -t nat -S` with the listing in the docs, and removes them.
func TestInstallInNetns(t *testing.T) {
	ns := newNetns(t)
	ctx := context.Background()
	run := netnsTables{ns: ns}
	cfg := Config{Namespace: "default", Service: "client", ProxyUID: 0, OutboundPort: 15001, AppPort: 8080, InboundPort: 15006,
		ExcludePorts: []int{22}, ExcludeCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	list := func() string {
		out, err := exec.Command("ip", "netns", "exec", ns, "iptables", "-t", "nat", "-S").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables -S: %v: %s", err, out)
		}
		var keep []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if !strings.HasPrefix(l, "-P ") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if stale, err := Install(ctx, run, cfg); err != nil || stale {
		t.Fatalf("Install: stale=%v err=%v", stale, err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "transparent.md"))
	if err != nil {
		t.Fatal(err)
	}
	got := list()
	if !strings.Contains(string(doc), "```\n"+got+"\n```") {
		t.Errorf("iptables -t nat -S after Install:\n%s\nis not the listing in docs/transparent.md", got)
	}
	// Installing again (after a SIGKILL) replaces the stale rules.
	if stale, err := Install(ctx, run, cfg); err != nil || !stale {
		t.Fatalf("second Install: stale=%v err=%v", stale, err)
	}
	if again := list(); again != got {
		t.Errorf("after reinstall:\n%s\nwant:\n%s", again, got)
	}
	if !Remove(ctx, run, cfg.Namespace, cfg.Service) {
		t.Error("Remove found nothing")
	}
	if left := list(); left != "" {
		t.Errorf("left after Remove:\n%s", left)
	}
}
