package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"weft.dev/weft/internal/buildinfo"
	"weft.dev/weft/internal/control/kube/inject"
)

// injectFlags are the flags of `weft inject-webhook`.
type injectFlags struct {
	listen, certFile, keyFile     string
	kubeconfig                    string
	image, pullPolicy, caConfig   string
	xds                           []string
	mode                          string
	cpuRequest, memRequest        string
	cpuLimit, memLimit            string
	printConfig, webhookURL, name string
	caBundle                      string
}

func newInjectWebhookCmd(g *globalFlags) *cobra.Command {
	f := &injectFlags{}
	cmd := &cobra.Command{
		Use:   "inject-webhook --image IMAGE --xds HOST:PORT --tls-cert FILE --tls-key FILE",
		Short: "Serve the mutating admission webhook that adds weft's sidecar to Pods",
		Long: `Serve the mutating admission webhook that adds weft's native sidecar to
Pods in Namespaces labelled weft.dev/inject=enabled, and to Pods labelled so
(see docs/kubernetes/injection.md). It serves POST /inject over TLS with
--tls-cert and --tls-key (a certificate signed by weft's CA, or a
self-signed one, for the webhook Service's DNS name), and /metrics.

With --print-config it prints the MutatingWebhookConfiguration that sends
Pod creations to --webhook-url, trusting --ca-bundle, and exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config()
			if err != nil {
				return err
			}
			if f.printConfig != "" {
				return f.print(cmd)
			}
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			if f.certFile == "" || f.keyFile == "" {
				return errors.New("--tls-cert and --tls-key are required (the API server calls webhooks over HTTPS only)")
			}
			cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
			if err != nil {
				return fmt.Errorf("--tls-cert/--tls-key: %w", err)
			}
			rc, err := (&kubeStoreFlags{kubeconfig: f.kubeconfig}).restConfig()
			if err != nil {
				return err
			}
			cs, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return fmt.Errorf("kubernetes client: %w", err)
			}
			reg := prometheus.NewRegistry()
			h, err := inject.NewHandler(inject.HandlerOptions{
				Config: cfg,
				Namespace: func(ctx context.Context, name string) (*corev1.Namespace, error) {
					return cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
				},
				Logger:     log.With("component", "inject-webhook"),
				Registerer: reg,
			})
			if err != nil {
				return err
			}
			mux := http.NewServeMux()
			mux.Handle("/inject", h)
			mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
			mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ready\n")) })
			ln, err := net.Listen("tcp", f.listen)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			srv := &http.Server{
				Handler:           mux,
				TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
				ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout:       30 * time.Second,
			}
			go func() {
				<-cmd.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
			}()
			log.Info("injection webhook serving", "listen", ln.Addr().String(), "image", cfg.Image, "mode", string(cfg.Mode))
			if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("inject webhook: %w", err)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.listen, "listen", ":9443", "host:port the webhook serves HTTPS on")
	fs.StringVar(&f.certFile, "tls-cert", "", "PEM certificate (chain) the webhook serves")
	fs.StringVar(&f.keyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: the in-cluster service account, else $KUBECONFIG)")
	fs.StringVar(&f.image, "image", "", "weft image the sidecar runs (required)")
	fs.StringVar(&f.pullPolicy, "image-pull-policy", "", "the sidecar's imagePullPolicy: Always, IfNotPresent or Never (default: Kubernetes')")
	fs.StringSliceVar(&f.xds, "xds", nil, "control plane xDS address host:port the sidecars dial, e.g. weft.weft-system.svc:15012 (repeatable for replicas; required)")
	fs.StringVar(&f.caConfig, "ca-configmap", "weft-ca-root", "ConfigMap in each Pod's namespace whose key ca.pem is the trust bundle")
	fs.StringVar(&f.mode, "mode", string(inject.ModeExplicit), "how app traffic reaches the proxy: explicit (HTTP_PROXY environment) or transparent (iptables rules installed by a weft-init container with NET_ADMIN)")
	fs.StringVar(&f.cpuRequest, "proxy-cpu-request", "100m", "the sidecar's CPU request")
	fs.StringVar(&f.memRequest, "proxy-memory-request", "64Mi", "the sidecar's memory request")
	fs.StringVar(&f.cpuLimit, "proxy-cpu-limit", "1", "the sidecar's CPU limit (\"\": none)")
	fs.StringVar(&f.memLimit, "proxy-memory-limit", "256Mi", "the sidecar's memory limit (\"\": none)")
	fs.StringVar(&f.printConfig, "print-config", "", "print the MutatingWebhookConfiguration as yaml (the only format) and exit")
	fs.StringVar(&f.webhookURL, "webhook-url", "", "with --print-config: the https URL the API server calls, e.g. https://weft-inject.weft-system.svc:443/inject")
	fs.StringVar(&f.name, "webhook-name", "weft-inject", "with --print-config: the configuration's name")
	fs.StringVar(&f.caBundle, "ca-bundle", "", "with --print-config: PEM file of the CA that signs --tls-cert (default: --tls-cert itself, when self-signed)")
	return cmd
}

// config is the injector's Config from the flags.
func (f *injectFlags) config() (inject.Config, error) {
	res := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	for _, q := range []struct {
		flag, v string
		list    corev1.ResourceList
		name    corev1.ResourceName
	}{
		{"--proxy-cpu-request", f.cpuRequest, res.Requests, corev1.ResourceCPU},
		{"--proxy-memory-request", f.memRequest, res.Requests, corev1.ResourceMemory},
		{"--proxy-cpu-limit", f.cpuLimit, res.Limits, corev1.ResourceCPU},
		{"--proxy-memory-limit", f.memLimit, res.Limits, corev1.ResourceMemory},
	} {
		if q.v == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.v)
		if err != nil {
			return inject.Config{}, fmt.Errorf("%s: %q: %w", q.flag, q.v, err)
		}
		q.list[q.name] = v
	}
	switch p := corev1.PullPolicy(f.pullPolicy); p {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return inject.Config{}, fmt.Errorf("--image-pull-policy: %q is not Always, IfNotPresent or Never", f.pullPolicy)
	}
	cfg := inject.Config{
		Image: f.image, ImagePullPolicy: corev1.PullPolicy(f.pullPolicy),
		Control: f.xds, CAConfigMap: f.caConfig, Mode: inject.Mode(f.mode),
		Resources: res, Version: buildinfo.Get().Version,
	}.Defaults()
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w (flags --image, --xds, --mode, --proxy-*)", err)
	}
	return cfg, nil
}

// print writes the MutatingWebhookConfiguration.
func (f *injectFlags) print(cmd *cobra.Command) error {
	if f.printConfig != "yaml" {
		return fmt.Errorf("--print-config: %q: only yaml", f.printConfig)
	}
	if !strings.HasPrefix(f.webhookURL, "https://") {
		return fmt.Errorf("--webhook-url: %q: the API server calls webhooks over https only", f.webhookURL)
	}
	file := f.caBundle
	if file == "" {
		file = f.certFile
	}
	if file == "" {
		return errors.New("--print-config needs --ca-bundle (or a self-signed --tls-cert)")
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("--ca-bundle: %w", err)
	}
	b, err := yaml.Marshal(inject.WebhookConfiguration(f.name, f.webhookURL, pem))
	if err != nil {
		return fmt.Errorf("encoding the webhook configuration: %w", err)
	}
	_, err = cmd.OutOrStdout().Write(b)
	return err
}
