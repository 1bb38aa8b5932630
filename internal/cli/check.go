package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/buildinfo"
	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/control/controlplane"
)

// checkResult is the outcome of one named check.
type checkResult struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Skipped bool   `json:"skipped,omitempty"`
	Detail  string `json:"detail"`
	// Hint says what to do about a failure.
	Hint string `json:"hint,omitempty"`
}

// checkEnv is what the checks look at.
type checkEnv struct {
	g   *globalFlags
	c   *apiClient // nil if the control plane is unreachable
	now time.Time
	// serverDate is the control plane's clock (its Date header).
	serverDate time.Time
}

// checker is one named check.
type checker struct {
	name string
	// needsAPI checks are skipped when the control plane is unreachable.
	needsAPI bool
	run      func(ctx context.Context, e *checkEnv) (detail, hint string, err error)
}

// Thresholds of the checks.
const (
	caExpiryWarning = 30 * 24 * time.Hour
	maxClockSkew    = 10 * time.Second
	pendingGrace    = 30 * time.Second
)

var checkers = []checker{
	{name: "control plane reachable", run: checkReachable},
	{name: "CA valid and not near expiry", needsAPI: true, run: checkCA},
	{name: "every proxy synced", needsAPI: true, run: checkProxies},
	{name: "clock skew", needsAPI: true, run: checkClock},
	{name: "data dir permissions", run: checkDataDir},
}

func newCheckCmd(g *globalFlags) *cobra.Command {
	var output string
	var kube *kubeCheckFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that the mesh is healthy, with a hint for each problem",
		Long: `Run named checks — the control plane is reachable, its CA is valid and not
within 30 days of expiry, every connected proxy acknowledged its config, the
clocks agree within 10s, the data dir is private — and print a hint for each
failure. Exits 1 if any check fails.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true, // a failed check is not a usage error
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kube.enabled {
				return kube.run(cmd) // check_kube.go
			}
			if err := checkOutput(output); err != nil {
				return err
			}
			results := runChecks(cmd.Context(), g, time.Now())
			failed := 0
			for _, r := range results {
				if !r.OK && !r.Skipped {
					failed++
				}
			}
			if output == "json" {
				if err := writeIndentedJSON(cmd.OutOrStdout(), results); err != nil {
					return err
				}
			} else {
				checkPrint(cmd.OutOrStdout(), results)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d checks failed", failed, len(results))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	kube = addKubeCheckFlags(cmd)
	return cmd
}

func runChecks(ctx context.Context, g *globalFlags, now time.Time) []checkResult {
	e := &checkEnv{g: g, now: now}
	var out []checkResult
	for _, ck := range checkers {
		r := checkResult{Name: ck.name}
		if ck.needsAPI && e.c == nil {
			r.Skipped, r.Detail = true, "skipped: the control plane is unreachable"
			out = append(out, r)
			continue
		}
		detail, hint, err := ck.run(ctx, e)
		r.OK, r.Detail = err == nil, detail
		if err != nil {
			r.Detail, r.Hint = err.Error(), hint
		}
		out = append(out, r)
	}
	return out
}

func checkPrint(w io.Writer, results []checkResult) {
	for _, r := range results {
		mark := "√"
		switch {
		case r.Skipped:
			mark = "-"
		case !r.OK:
			mark = "×"
		}
		fmt.Fprintf(w, "%s %s: %s\n", mark, r.Name, r.Detail)
		if r.Hint != "" {
			fmt.Fprintf(w, "    hint: %s\n", r.Hint)
		}
	}
}

func checkReachable(ctx context.Context, e *checkEnv) (string, string, error) {
	const hint = "start it with `weft control`, or point at it with --data-dir, or --control https://HOST:PORT with --ca and $WEFT_ADMIN_TOKEN"
	c, err := e.g.apiClient()
	if err != nil {
		return "", hint, err
	}
	var v buildinfo.Info
	h, err := c.doHeader(ctx, http.MethodGet, "/api/v1/version", nil, &v)
	if err != nil {
		return "", hint, err
	}
	e.c = c
	e.serverDate, _ = http.ParseTime(h.Get("Date"))
	return fmt.Sprintf("%s answers (version %s)", c.base, v.Version), "", nil
}

func checkCA(_ context.Context, e *checkEnv) (string, string, error) {
	if len(e.c.roots) == 0 {
		return "", "the trust bundle is empty: restore ca.pem from the control plane's data dir", errors.New("no CA certificate")
	}
	soonest := e.c.roots[0]
	for _, r := range e.c.roots {
		if r.NotAfter.Before(soonest.NotAfter) {
			soonest = r
		}
	}
	left := soonest.NotAfter.Sub(e.now)
	days := int(left.Hours() / 24)
	in := fmt.Sprintf("in %d days", days)
	if days == 0 {
		in = "in less than a day"
	}
	switch {
	case e.now.Before(soonest.NotBefore):
		return "", "the root's validity starts in the future: check this machine's clock", fmt.Errorf("root %s is not valid before %s", soonest.Subject.CommonName, soonest.NotBefore.UTC().Format(time.DateOnly))
	case left <= 0:
		return "", "rotate the root: weft ca rotate (see docs/security.md)", fmt.Errorf("root %s expired on %s", soonest.Subject.CommonName, soonest.NotAfter.UTC().Format(time.DateOnly))
	case left < caExpiryWarning:
		return "", "rotate the root before it expires: weft ca rotate (see docs/security.md)", fmt.Errorf("root %s expires %s", soonest.Subject.CommonName, in)
	}
	return fmt.Sprintf("%d root(s); the first to expire does so %s", len(e.c.roots), in), "", nil
}

func checkProxies(ctx context.Context, e *checkEnv) (string, string, error) {
	var ps []controlplane.ProxyStatus
	if err := e.c.getJSON(ctx, "/api/v1/proxies", &ps); err != nil {
		return "", "", err
	}
	if len(ps) == 0 {
		return "no proxies connected", "", nil
	}
	var bad []string
	for _, p := range ps {
		switch {
		case len(p.Nacked) > 0:
			var types []string
			for t := range p.Nacked {
				types = append(types, t[strings.LastIndex(t, ".")+1:])
			}
			sort.Strings(types)
			bad = append(bad, p.ID+" rejected "+strings.Join(types, ", "))
		case len(p.Acked) == 0 && e.now.Sub(p.Connected) > pendingGrace:
			bad = append(bad, p.ID+" has acknowledged nothing since it connected "+e.now.Sub(p.Connected).Round(time.Minute).String()+" ago")
		}
	}
	if len(bad) > 0 {
		return "", "weft proxy-status shows each proxy's last rejection; fix the config it names (weft get, weft apply)",
			fmt.Errorf("%d of %d proxies not synced: %s", len(bad), len(ps), strings.Join(bad, "; "))
	}
	if len(ps) == 1 {
		return "1 proxy synced", "", nil
	}
	return fmt.Sprintf("%d proxies synced", len(ps)), "", nil
}

func checkClock(_ context.Context, e *checkEnv) (string, string, error) {
	if e.serverDate.IsZero() {
		return "", "", errors.New("the control plane sent no Date header")
	}
	skew := e.now.Sub(e.serverDate)
	if skew < 0 {
		skew = -skew
	}
	if skew > maxClockSkew {
		return "", "synchronise the clocks (NTP): certificates are checked against them",
			fmt.Errorf("this machine's clock and the control plane's differ by %s (more than %s)", skew.Round(time.Second), maxClockSkew)
	}
	return fmt.Sprintf("within %s", maxClockSkew), "", nil
}

func checkDataDir(_ context.Context, e *checkEnv) (string, string, error) {
	dir := e.g.dataDir
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Sprintf("no data dir at %s on this machine (nothing to check)", dir), "", nil
	}
	if err != nil {
		return "", "", err
	}
	const hint = "only the control plane's user may read its keys and tokens: chmod 700 on the dir, 600 on the tokens"
	if st.Mode().Perm()&0o077 != 0 {
		return "", hint, fmt.Errorf("%s is %s: group or others have access", dir, st.Mode().Perm())
	}
	for _, name := range []string{connfile.AdminTokenFile, connfile.JoinTokenFile, connfile.StoreFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			continue // not every data dir holds every file
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", hint, fmt.Errorf("%s is %s: group or others may read it", filepath.Join(dir, name), fi.Mode().Perm())
		}
	}
	return dir + " is private", "", nil
}
