// Package cli builds weft's command tree: one file per subcommand.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/connfile"
)

// globalFlags are the flags every command shares.
type globalFlags struct {
	// dataDir holds the control plane's state and connection file.
	dataDir string
	// control is host:port of the control plane's xDS/CA endpoint.
	control string
	// controlAPI is host:port of the control plane's HTTPS API.
	controlAPI string
	logLevel   string
	logFormat  string
	// caFile is a PEM bundle to trust the API with, instead of the data
	// dir's ca.pem.
	caFile string
}

// exitError carries a specific exit code (e.g. the wrapped command's).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs weft with args and returns the process exit code.
func Main(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(os.Stderr, "weft: "+err.Error())
		return 1
	}
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "weft",
		Short:         "weft is a service mesh that runs anywhere: one binary, no Kubernetes required",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.dataDir, "data-dir", connfile.DefaultDataDir(), "control plane state and connection file (env WEFT_DATA_DIR)")
	pf.StringVar(&g.control, "control", "", "control plane: its xDS address host:port for proxy and run (several replicas: host:port,host:port,...), its API URL https://host:port for every other command (env WEFT_CONTROL; default: from the connection file in --data-dir)")
	pf.StringVar(&g.controlAPI, "control-api", "", "control plane API address host:port (default: --control https://..., else from the connection file in --data-dir)")
	pf.StringVar(&g.caFile, "ca", "", "PEM bundle that signs the control plane API's certificate (env WEFT_CA; default: ca.pem in --data-dir)")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.AddCommand(
		newControlCmd(g),
		newProxyCmd(g),
		newGatewayCmd(g),
		newRunCmd(g),
		newDemoCmd(g),
		newDemoAppCmd(),
		newApplyCmd(g),
		newGetCmd(g),
		newDeleteCmd(g),
		newProxyStatusCmd(g),
		newTapCmd(g),
		newTokenCmd(g),
		newCACmd(g),
		newStatCmd(g),
		newTopCmd(g),
		newCheckCmd(g),
		newVersionCmd(g),
		newDashboardCmd(g),
		newInjectWebhookCmd(g),
		newTransparentInitCmd(),
		newInstallCmd(),
	)
	return root
}

// logger builds the logger the flags ask for, writing to w.
func (g *globalFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(g.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format: %q is not text or json", g.logFormat)
	}
}
