package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"weft.dev/weft/internal/control/store"
	"weft.dev/weft/internal/control/store/etcdstore"
)

// storeEtcd is `weft control --store etcd`.
const storeEtcd = "etcd"

// etcdStoreFlags are the flags of `weft control --store etcd`.
type etcdStoreFlags struct {
	endpoints   []string
	cert, key   string
	ca          string
	prefix      string
	dialTimeout time.Duration
}

func addEtcdStoreFlags(f *pflag.FlagSet) *etcdStoreFlags {
	e := &etcdStoreFlags{}
	f.StringSliceVar(&e.endpoints, "etcd-endpoints", nil, "with --store etcd: client URLs of the etcd members, comma-separated (https://etcd-0:2379,...)")
	f.StringVar(&e.cert, "etcd-cert", "", "with --store etcd: PEM client certificate to present to etcd (with --etcd-key)")
	f.StringVar(&e.key, "etcd-key", "", "with --store etcd: PEM private key of --etcd-cert")
	f.StringVar(&e.ca, "etcd-ca", "", "with --store etcd: PEM CA bundle that signed etcd's serving certificates (default: the system roots)")
	f.StringVar(&e.prefix, "etcd-prefix", etcdstore.DefaultPrefix, "with --store etcd: key prefix of this mesh's data; replicas of one control plane share it")
	f.DurationVar(&e.dialTimeout, "etcd-dial-timeout", 5*time.Second, "with --store etcd: how long to wait for the first connection to etcd")
	return e
}

// options checks the flags and turns them into etcdstore.Options.
func (e *etcdStoreFlags) options() (etcdstore.Options, error) {
	opts := etcdstore.Options{Prefix: e.prefix, DialTimeout: e.dialTimeout}
	for _, ep := range e.endpoints {
		ep = strings.TrimSpace(ep)
		if ep == "" {
			continue
		}
		if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
			return opts, fmt.Errorf("--etcd-endpoints %q: want a URL, http:// or https://", ep)
		}
		opts.Endpoints = append(opts.Endpoints, ep)
	}
	if len(opts.Endpoints) == 0 {
		return opts, errors.New("--store etcd needs --etcd-endpoints (the client URLs of the etcd members)")
	}
	if e.dialTimeout <= 0 {
		return opts, fmt.Errorf("--etcd-dial-timeout %s: must be positive", e.dialTimeout)
	}
	if !strings.HasPrefix(e.prefix, "/") {
		return opts, fmt.Errorf("--etcd-prefix %q: must start with /", e.prefix)
	}
	if (e.cert == "") != (e.key == "") {
		return opts, errors.New("--etcd-cert and --etcd-key go together")
	}
	secure := strings.HasPrefix(opts.Endpoints[0], "https://")
	for _, ep := range opts.Endpoints[1:] {
		if strings.HasPrefix(ep, "https://") != secure {
			return opts, fmt.Errorf("--etcd-endpoints: %s and %s: all https:// or all http://", opts.Endpoints[0], ep)
		}
	}
	if (e.cert != "" || e.ca != "") && !secure {
		return opts, fmt.Errorf("--etcd-endpoints %q: with --etcd-cert or --etcd-ca the endpoints must be https://", opts.Endpoints[0])
	}
	if secure {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if e.cert != "" {
			cert, err := tls.LoadX509KeyPair(e.cert, e.key)
			if err != nil {
				return opts, fmt.Errorf("--etcd-cert %s / --etcd-key %s: %w", e.cert, e.key, err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if e.ca != "" {
			b, err := os.ReadFile(e.ca)
			if err != nil {
				return opts, fmt.Errorf("--etcd-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				return opts, fmt.Errorf("--etcd-ca %s: no PEM certificate in it", e.ca)
			}
			tc.RootCAs = pool
		}
		opts.TLS = tc
	}
	return opts, nil
}

// openStore returns the controlplane.Options.OpenStore of the etcd store,
// or the flags' error.
func (e *etcdStoreFlags) openStore(log *slog.Logger) (func(context.Context) (store.Store, error), error) {
	opts, err := e.options()
	if err != nil {
		return nil, err
	}
	opts.Logger = log.With("component", "etcdstore")
	return func(ctx context.Context) (store.Store, error) {
		s, err := etcdstore.Open(ctx, opts)
		if err != nil {
			return nil, err
		}
		return s, nil
	}, nil
}
