package cli

import (
	"errors"
	"os"
	"time"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/control/controlplane"
	"weft.dev/weft/internal/control/xds"
)

func newControlCmd(g *globalFlags) *cobra.Command {
	opts := controlplane.Options{}
	var storeName string
	var kube *kubeStoreFlags
	var etcd *etcdStoreFlags
	var ident *identityFlags
	var admission controlplane.AdmissionOptions
	cmd := &cobra.Command{
		Use:   "control",
		Short: "Run the control plane (xDS, CA, API) with its state in --data-dir",
		Long: `Run the control plane. On first start it creates its store, CA root and
tokens under --data-dir; later starts reuse them. It writes the connection file
(control.json), the trust bundle (ca.pem), the default join token for proxies
(join-token, namespace "default" only; see weft token) and the admin token for
the CLI (admin-token) into the data dir, so every other weft command on this
machine finds it without flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			opts.DataDir = g.dataDir
			opts.Logger = log.With("component", "control")
			if opts.OpenStore, err = storeOpener(storeName, kube, etcd, log); err != nil { // control_kube.go
				return err
			}
			if storeName == storeKubernetes {
				opts.WriteStatus = kube.statusWriter(log) // control_kube.go
			}
			switch {
			case admission.Listen != "" && storeName != storeKubernetes:
				return errors.New("--admission-listen serves the Kubernetes validating webhook: it needs --store kubernetes")
			case admission.Listen != "":
				opts.Admission = &admission
			case admission.CertFile != "" || admission.KeyFile != "":
				return errors.New("--admission-tls-cert and --admission-tls-key need --admission-listen")
			}
			if opts.ServiceAccounts, err = ident.authenticator(kube); err != nil { // control_identity.go
				return err
			}
			if opts.Membership, err = ident.membership(cmd.Context(), kube); err != nil {
				return err
			}
			return controlplane.Run(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&storeName, "store", storeBolt, "where the configuration lives: bolt (a file in --data-dir), kubernetes (the cluster's API; see docs/kubernetes/store.md) or etcd (see docs/kubernetes/etcd.md)")
	kube = addKubeStoreFlags(f)
	f.StringVar(&opts.AdvertiseXDS, "advertise-xds", "", "with a shared store: this replica's xDS address host:port as the other replicas and proxies should dial it (default: --listen's, unless its host is 0.0.0.0 or ::)")
	f.StringVar(&opts.SealKeyFile, "seal-key-file", "", "with a store several replicas share (etcd, kubernetes): file of the key sealing the CA root and admin token in the store, created if missing; give every replica the same one (see docs/ha.md)")
	etcd = addEtcdStoreFlags(f)
	ident = addIdentityFlags(f)
	f.StringVar(&admission.Listen, "admission-listen", "", "with --store kubernetes: serve the validating admission webhook on this host:port over HTTPS (POST /validate): weft.dev objects are checked as `weft apply` checks them before the cluster stores them (see docs/kubernetes/install.md)")
	f.StringVar(&admission.CertFile, "admission-tls-cert", "", "PEM certificate (chain) of --admission-listen")
	f.StringVar(&admission.KeyFile, "admission-tls-key", "", "PEM private key of --admission-tls-cert")
	f.StringVar(&opts.XDSListen, "listen", "127.0.0.1:15010", "address for xDS and the CA (gRPC over TLS)")
	f.StringVar(&opts.APIListen, "api-listen", "127.0.0.1:15000", "address for the HTTPS API used by the CLI")
	f.StringVar(&opts.TrustDomain, "trust-domain", "cluster.local", "SPIFFE trust domain of the mesh (fixed when the CA is first created)")
	f.DurationVar(&opts.CertTTL, "cert-ttl", 24*time.Hour, "lifetime of workload certificates (renewed at half-life)")
	f.StringVar(&opts.ExternalCA.Cert, "ca-cert", "", "PEM file: an intermediate CA of an existing PKI to sign with instead of the self-made root (with --ca-key)")
	f.StringVar(&opts.ExternalCA.Key, "ca-key", "", "PEM file: the private key of --ca-cert")
	f.StringVar(&opts.ExternalCA.Chain, "ca-chain", "", "PEM file: the certificates above --ca-cert, ending with the PKI's root(s), which become the trust bundle")
	f.DurationVar(&opts.Stats.Interval, "stats-interval", 10*time.Second, "how often to scrape every local proxy's metrics for weft stat/top and the dashboard API (at most 10s)")
	f.StringVar(&opts.Stats.Prometheus, "prometheus", "", "read golden metrics from this Prometheus (http://host:9090) instead of scraping the proxies (see docs/observability/prometheus.md)")
	f.StringVar(&opts.DemoBreakDir, "demo-break-dir", "", "set by weft demo: the dashboard may break the demo's services through the fail-rate files in this dir")
	_ = f.MarkHidden("demo-break-dir")
	l, d := &opts.XDSLimits, xds.DefaultLimits()
	f.IntVar(&l.MaxStreams, "xds-max-streams", d.MaxStreams, "open xDS streams in total (-1: no limit)")
	f.IntVar(&l.MaxStreamsPerIdentity, "xds-max-streams-per-identity", d.MaxStreamsPerIdentity, "open xDS streams of one SPIFFE ID, shared by a service account's replicas (-1: no limit)")
	f.IntVar(&l.MaxStreamsPerCertificate, "xds-max-streams-per-cert", d.MaxStreamsPerCertificate, "open xDS streams of one client certificate, i.e. one proxy (-1: no limit)")
	f.IntVar(&l.MaxMessageSize, "xds-max-message-size", d.MaxMessageSize, "largest message accepted on the xDS port, in bytes")
	f.Float64Var(&l.RequestRate, "xds-request-rate", d.RequestRate, "sustained xDS requests per second on one stream (-1: no limit)")
	f.IntVar(&l.RequestBurst, "xds-request-burst", d.RequestBurst, "xDS requests one stream may send at once")
	f.IntVar(&l.MaxConnections, "xds-max-connections", d.MaxConnections, "open connections to the xDS port, CA calls included (-1: no limit)")
	return cmd
}
