package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/demo/apps"
)

// demoAppFlags are the flags of `weft demo-app`; each app reads its own.
type demoAppFlags struct {
	listen   string
	service  string
	version  string
	failRate float64
	slowRate float64
	slow     time.Duration
	failFor  time.Duration
	backend  string
	greeter  string
	url      string
	rps      float64

	// failRateFile is the backend's --fail-rate-file.
	failRateFile string
}

func newDemoAppCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo-app backend|greeter|frontend|load|tcp-echo [flags]",
		Short: "Run one of the sample services (usually under `weft run`)",
		Long: `Run one of weft's sample services. They speak plaintext and rely on their
sidecar for mTLS; outbound calls go through HTTP_PROXY / HTTPS_PROXY, which
` + "`weft run`" + ` sets. The listen port defaults to $WEFT_APP_PORT (exported by
` + "`weft run --app-port`" + `), else to the app's usual port.`,
		Example: `  weft run --service backend --app-port 8081 -- weft demo-app backend --fail-rate 0.1
  weft run --service frontend --app-port 8080 -- weft demo-app frontend
  weft run --service loadgen -- weft demo-app load --url http://frontend/ --rps 5`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newDemoBackendCmd(), newDemoGreeterCmd(), newDemoFrontendCmd(), newDemoLoadCmd(), newDemoTCPEchoCmd())
	return cmd
}

// addServingFlags adds the flags every serving app has.
func addServingFlags(cmd *cobra.Command, f *demoAppFlags, name string, port int) {
	fs := cmd.Flags()
	fs.StringVar(&f.listen, "listen", "", fmt.Sprintf("address or port to serve on (default 127.0.0.1:$WEFT_APP_PORT, else 127.0.0.1:%d)", port))
	fs.StringVar(&f.service, "service", "", fmt.Sprintf("service name reported in replies (default $WEFT_SERVICE, else %q)", name))
	fs.StringVar(&f.version, "version", "v1", "version reported in replies")
}

func newDemoBackendCmd() *cobra.Command {
	f := &demoAppFlags{}
	cmd := &cobra.Command{
		Use:   "backend",
		Short: "HTTP/1.1 JSON service with injectable failures (503) and latency",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			listen, err := demoListenAddr(f.listen, 8081)
			if err != nil {
				return err
			}
			return runDemoApp(cmd, func(ctx context.Context, log *slog.Logger) error {
				return apps.RunBackend(ctx, apps.BackendConfig{
					Listen: listen, Service: demoServiceName(f.service, "backend"), Version: f.version,
					FailRate: f.failRate, SlowRate: f.slowRate, Slow: f.slow, FailFor: f.failFor,
					FailRateFile: f.failRateFile,
				}, log)
			})
		},
	}
	addServingFlags(cmd, f, "backend", 8081)
	cmd.Flags().Float64Var(&f.failRate, "fail-rate", 0, "fraction of requests (0..1) answered with 503")
	cmd.Flags().StringVar(&f.failRateFile, "fail-rate-file", "", "file read every second: a fraction above 0 in it replaces --fail-rate")
	cmd.Flags().Float64Var(&f.slowRate, "slow-rate", 0, "fraction of requests (0..1) delayed by --slow")
	cmd.Flags().DurationVar(&f.slow, "slow", 300*time.Millisecond, "delay of a slow request")
	cmd.Flags().DurationVar(&f.failFor, "fail-for", 0, "fail (--fail-rate) only for this long after start, then recover; 0 for ever")
	return cmd
}

func newDemoTCPEchoCmd() *cobra.Command {
	f := &demoAppFlags{}
	var banner string
	cmd := &cobra.Command{
		Use:   "tcp-echo",
		Short: "Raw TCP echo (run it with --app-protocol tcp), optionally server-first with --banner",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			listen, err := demoListenAddr(f.listen, 9000)
			if err != nil {
				return err
			}
			return runDemoApp(cmd, func(ctx context.Context, log *slog.Logger) error {
				return apps.RunTCPEcho(ctx, apps.TCPEchoConfig{Listen: listen, Banner: banner}, log)
			})
		},
	}
	cmd.Flags().StringVar(&f.listen, "listen", "", "address or port to serve on (default 127.0.0.1:$WEFT_APP_PORT, else 127.0.0.1:9000)")
	cmd.Flags().StringVar(&banner, "banner", "", "written to each connection as it is accepted, before anything is read (a server-first protocol)")
	return cmd
}

func newDemoGreeterCmd() *cobra.Command {
	f := &demoAppFlags{}
	cmd := &cobra.Command{
		Use:   "greeter",
		Short: "Plaintext (h2c) gRPC Greeter service with gRPC health checking",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			listen, err := demoListenAddr(f.listen, 9090)
			if err != nil {
				return err
			}
			return runDemoApp(cmd, func(ctx context.Context, log *slog.Logger) error {
				return apps.RunGreeter(ctx, apps.GreeterConfig{
					Listen: listen, Service: demoServiceName(f.service, "greeter"), Version: f.version,
				}, log)
			})
		},
	}
	addServingFlags(cmd, f, "greeter", 9090)
	return cmd
}

func newDemoFrontendCmd() *cobra.Command {
	f := &demoAppFlags{}
	cmd := &cobra.Command{
		Use:   "frontend",
		Short: "HTTP/1.1 service that calls backend (HTTP) and greeter (gRPC) by name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			listen, err := demoListenAddr(f.listen, 8080)
			if err != nil {
				return err
			}
			return runDemoApp(cmd, func(ctx context.Context, log *slog.Logger) error {
				return apps.RunFrontend(ctx, apps.FrontendConfig{
					Listen: listen, Service: demoServiceName(f.service, "frontend"), Version: f.version,
					Backend: f.backend, Greeter: f.greeter, FailRate: f.failRate,
				}, log)
			})
		},
	}
	addServingFlags(cmd, f, "frontend", 8080)
	cmd.Flags().StringVar(&f.backend, "backend", "http://backend/", "backend URL (called through HTTP_PROXY)")
	cmd.Flags().StringVar(&f.greeter, "greeter", "greeter:80", "greeter host:port (called through HTTPS_PROXY)")
	cmd.Flags().Float64Var(&f.failRate, "fail-rate", 0, "fraction of requests (0..1) failed with 500 without calling anything")
	return cmd
}

func newDemoLoadCmd() *cobra.Command {
	f := &demoAppFlags{}
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Steady traffic generator: GET --url at --rps, summary every 10s",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemoApp(cmd, func(ctx context.Context, log *slog.Logger) error {
				return apps.RunLoad(ctx, apps.LoadConfig{URL: f.url, RPS: f.rps}, log)
			})
		},
	}
	cmd.Flags().StringVar(&f.url, "url", "http://frontend/", "URL to GET (through HTTP_PROXY)")
	cmd.Flags().Float64Var(&f.rps, "rps", 5, "requests per second")
	return cmd
}

// runDemoApp runs app until SIGINT or SIGTERM, logging to stderr.
func runDemoApp(cmd *cobra.Command, app func(context.Context, *slog.Logger) error) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app(ctx, slog.New(slog.NewTextHandler(os.Stderr, nil)))
}

// demoListenAddr resolves --listen: an explicit address wins (a bare port
// means 127.0.0.1:port), then $WEFT_APP_PORT, then the app's usual port.
// Apps listen on loopback by default: only their sidecar should reach them.
func demoListenAddr(flag string, defPort int) (string, error) {
	if flag != "" {
		if !strings.Contains(flag, ":") {
			if _, err := strconv.ParseUint(flag, 10, 16); err != nil {
				return "", fmt.Errorf("--listen %q: want host:port or a port", flag)
			}
			return net.JoinHostPort("127.0.0.1", flag), nil
		}
		if _, _, err := net.SplitHostPort(flag); err != nil {
			return "", fmt.Errorf("--listen %q: %w", flag, err)
		}
		return flag, nil
	}
	if p := os.Getenv("WEFT_APP_PORT"); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return "", fmt.Errorf("WEFT_APP_PORT %q is not a port", p)
		}
		return net.JoinHostPort("127.0.0.1", p), nil
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(defPort)), nil
}

// demoServiceName is --service, else $WEFT_SERVICE (set by `weft run`),
// else the app's name.
func demoServiceName(flag, def string) string {
	if flag != "" {
		return flag
	}
	if s := os.Getenv("WEFT_SERVICE"); s != "" {
		return s
	}
	return def
}
