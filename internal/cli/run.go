package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/childproc"
	"weft.dev/weft/internal/proxy/sidecar"
	"weft.dev/weft/internal/schedtune"
)

func newRunCmd(g *globalFlags) *cobra.Command {
	f := &sidecarFlags{}
	var appUID int
	cmd := &cobra.Command{
		Use:   "run --service NAME [--app-port PORT] -- CMD [ARGS...]",
		Short: "Run any process with a weft sidecar: it reaches mesh services by name",
		Long: `Start a sidecar, wait until it is ready, then start CMD with http_proxy,
HTTPS_PROXY, grpc_proxy and WEFT_* set so that unmodified HTTP and gRPC clients
reach mesh services by name (http://orders/, orders.shop:8080).

On SIGTERM or SIGINT the sidecar first drains: it leaves the mesh, waits
until peers have stopped sending (--drain-quiet without a request, at most
--drain-timeout) and its requests in flight are answered; then CMD gets
SIGTERM (SIGKILL 10s later), and weft exits with CMD's exit code once CMD
has exited. When CMD exits on its own, the sidecar leaves the mesh and
stops at once. If weft is killed, CMD receives SIGTERM.

With --transparent (root, Linux), CMD gets no proxy variables: it runs as
--app-uid and its TCP is captured by iptables rules (docs/transparent.md).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			opts, err := f.options(g)
			if err != nil {
				return err
			}
			// Restart with the Go scheduler setting that keeps the
			// runtime's own CPU cost low (see internal/schedtune).
			if err := schedtune.Apply(os.Environ()); err != nil {
				log.Warn("running without the scheduler setting", "err", err)
			}
			opts.Logger = log.With("component", "proxy", "service", f.service)
			if cmd.Flags().Changed("app-uid") && opts.Transparent == nil {
				return fmt.Errorf("--app-uid needs --transparent")
			}
			if opts.Transparent != nil && appUID == os.Getuid() {
				return fmt.Errorf("--app-uid %d: the app must run under another uid than weft (%d), which --transparent never captures", appUID, os.Getuid())
			}
			return runWrapped(cmd.Context(), opts, args, uint32(appUID))
		},
	}
	cmd.Flags().SetInterspersed(false)
	f.register(cmd.Flags(), [3]int{0, 0, 0})
	cmd.Flags().IntVar(&appUID, "app-uid", 65534, "with --transparent: uid (and gid) the app runs as, which must differ from weft's (default: nobody)")
	return cmd
}

// runWrapped runs the sidecar and the app together. The sidecar stops the
// app itself, from its Drained hook, once its inbound listener has drained:
// the app still answers every request peers send until they have stopped,
// and its own calls go out until it exits.
func runWrapped(ctx context.Context, opts sidecar.Options, args []string, appUID uint32) error {
	log := opts.Logger
	sideCtx, stopSidecar := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSidecar()
	ready := make(chan sidecar.Addrs, 1)
	opts.Ready = func(a sidecar.Addrs) { ready <- a }
	var (
		child     *exec.Cmd
		childDone = make(chan error, 1)
		appGone   atomic.Bool
		started   = make(chan struct{}) // closed once child is set
	)
	// stopApp ends the app (once) and reports how it exited.
	stopApp := sync.OnceValue(func() error {
		select {
		case <-started:
		default:
			return nil // never started
		}
		if !appGone.Load() {
			log.Info("stopping app", "pid", child.Process.Pid)
			_ = child.Process.Signal(syscall.SIGTERM)
		}
		return waitOrKill(child, childDone, 10*time.Second)
	})
	opts.AppGone = appGone.Load
	opts.Drained = func() { stopApp() }
	sideErr := make(chan error, 1)
	go func() { sideErr <- sidecar.Run(sideCtx, opts) }()

	var addrs sidecar.Addrs
	select {
	case addrs = <-ready:
	case err := <-sideErr:
		return fmt.Errorf("sidecar: %w", err)
	case <-ctx.Done():
		stopSidecar()
		<-sideErr
		return nil
	}

	proxyURL := "http://" + addrs.Outbound
	child = exec.Command(args[0], args[1:]...)
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, os.Stdout, os.Stderr
	child.Env = appEnv(schedtune.AppEnv(os.Environ()))
	if opts.Transparent == nil {
		child.Env = append(child.Env,
			"http_proxy="+proxyURL, "HTTP_PROXY="+proxyURL,
			"https_proxy="+proxyURL, "HTTPS_PROXY="+proxyURL,
			"grpc_proxy="+proxyURL,
			"no_proxy=localhost,127.0.0.1,::1", "NO_PROXY=localhost,127.0.0.1,::1")
	}
	child.Env = append(child.Env,
		"WEFT_SERVICE="+opts.Workload.Service,
		"WEFT_NAMESPACE="+opts.Workload.Namespace,
		"WEFT_OUTBOUND_ADDR="+addrs.Outbound,
		"WEFT_INBOUND_ADDR="+addrs.Inbound,
		"WEFT_ADMIN_ADDR="+addrs.Admin,
	)
	if opts.AppPort != 0 {
		child.Env = append(child.Env, "WEFT_APP_PORT="+strconv.Itoa(opts.AppPort))
	}
	// On Linux, if this process dies, even by SIGKILL, the app gets SIGTERM.
	child.SysProcAttr = childproc.Attr(syscall.SIGTERM)
	if opts.Transparent != nil {
		// The rules capture every uid but weft's own (docs/transparent.md).
		if child.SysProcAttr == nil {
			child.SysProcAttr = &syscall.SysProcAttr{}
		}
		child.SysProcAttr.Credential = &syscall.Credential{Uid: appUID, Gid: appUID}
	}
	if err := child.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", args[0], err)
	}
	close(started)
	log.Info("started app", "cmd", args[0], "pid", child.Process.Pid, "outbound", addrs.Outbound, "inbound", addrs.Inbound, "admin", addrs.Admin)
	exited := make(chan struct{})
	go func() {
		err := child.Wait()
		appGone.Store(true)
		childDone <- err
		close(exited)
	}()

	select {
	case <-exited:
		// The app exited on its own: the sidecar leaves at once.
	case err := <-sideErr:
		stopApp()
		return fmt.Errorf("sidecar stopped: %w", err)
	case <-ctx.Done():
		// The sidecar drains, then stops the app (Drained).
	}
	stopSidecar()
	<-sideErr
	childErr := stopApp() // a no-op if Drained ran
	var ee *exec.ExitError
	if errors.As(childErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitError{code: 128 + int(ws.Signal())}
		}
		return exitError{code: ee.ExitCode()}
	}
	return childErr
}

// secretEnv are the variables through which weft itself takes secrets;
// the app started by `weft run` never sees them.
var secretEnv = []string{"WEFT_JOIN_TOKEN", "WEFT_ADMIN_TOKEN"}

// appEnv is environ without weft's own secrets (secretEnv), whatever the
// case of their names.
func appEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if slices.ContainsFunc(secretEnv, func(s string) bool { return strings.EqualFold(s, name) }) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func waitOrKill(child *exec.Cmd, done <-chan error, grace time.Duration) error {
	select {
	case err := <-done:
		return err
	case <-time.After(grace):
		_ = child.Process.Kill()
		return <-done
	}
}
