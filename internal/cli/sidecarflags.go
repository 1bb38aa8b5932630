package cli

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/proxy/inbound"
	"weft.dev/weft/internal/proxy/sidecar"
	"weft.dev/weft/internal/xdsmeta"
)

// sidecarFlags are the flags shared by `weft proxy` and `weft run`.
type sidecarFlags struct {
	service        string
	namespace      string
	serviceAccount string
	version        string
	labels         []string
	address        string
	appPort        int
	appProtocol    string
	inboundPort    int
	outboundPort   int
	adminPort      int
	caFile         string
	tokenFile      string
}

func (f *sidecarFlags) register(fs *pflag.FlagSet, defaultPorts [3]int) {
	fs.StringVar(&f.service, "service", "", "service this workload belongs to (required)")
	fs.StringVar(&f.namespace, "namespace", "default", "namespace of the workload")
	fs.StringVar(&f.serviceAccount, "service-account", "", "service account in the SPIFFE ID (default: the service name)")
	fs.StringVar(&f.version, "version", "", "version label of the workload (e.g. v2)")
	fs.StringArrayVar(&f.labels, "label", nil, "extra workload label K=V (repeatable)")
	fs.StringVar(&f.address, "address", "127.0.0.1", "host the inbound listener binds and other proxies dial")
	fs.IntVar(&f.appPort, "app-port", 0, "port the local app serves on (omit for a workload that only makes calls)")
	fs.StringVar(&f.appProtocol, "app-protocol", "http", "what the app speaks on --app-port: http (HTTP/1.1, and h2c if it answers the HTTP/2 preface), http1, h2c, grpc, or tcp (opaque: streams reach it unparsed)")
	fs.IntVar(&f.inboundPort, "inbound-port", defaultPorts[0], "mTLS inbound listener port (0: a free port)")
	fs.IntVar(&f.outboundPort, "outbound-port", defaultPorts[1], "outbound HTTP proxy port on 127.0.0.1 (0: a free port)")
	fs.IntVar(&f.adminPort, "admin-port", defaultPorts[2], "admin server port on 127.0.0.1: /ready /metrics /config_dump (0: a free port)")
	fs.StringVar(&f.caFile, "ca-file", "", "trust bundle PEM (default: ca.pem in --data-dir)")
	fs.StringVar(&f.tokenFile, "token-file", "", "join token file (default: env WEFT_JOIN_TOKEN, else join-token in --data-dir)")
}

// options validates the flags and resolves the control plane connection.
func (f *sidecarFlags) options(g *globalFlags) (sidecar.Options, error) {
	var o sidecar.Options
	if f.service == "" {
		return o, fmt.Errorf("--service is required")
	}
	sa := f.serviceAccount
	if sa == "" {
		sa = f.service
	}
	labels := map[string]string{}
	for _, l := range f.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return o, fmt.Errorf("--label %q: want K=V", l)
		}
		labels[k] = v
	}
	for name, p := range map[string]int{"--app-port": f.appPort, "--inbound-port": f.inboundPort, "--outbound-port": f.outboundPort, "--admin-port": f.adminPort} {
		if p < 0 || p > 65535 {
			return o, fmt.Errorf("%s: %d is not a port", name, p)
		}
	}
	appProto, err := inbound.ParseAppProtocol(f.appProtocol)
	if err != nil {
		return o, fmt.Errorf("--app-protocol: %w", err)
	}
	if net.ParseIP(f.address) == nil {
		return o, fmt.Errorf("--address: %q is not an IP address", f.address)
	}
	w := xdsmeta.Workload{Service: f.service, Namespace: f.namespace, ServiceAccount: sa, Version: f.version, Labels: labels}
	if err := w.Validate(); err != nil {
		return o, fmt.Errorf("workload: %w", err)
	}
	control := g.control
	if control == "" {
		c, err := connfile.Read(g.dataDir)
		if err != nil {
			return o, err
		}
		control = c.XDS
	}
	var bundle []*x509.Certificate
	if f.caFile != "" {
		b, rerr := os.ReadFile(f.caFile)
		if rerr != nil {
			return o, fmt.Errorf("--ca-file: %w", rerr)
		}
		bundle, err = connfile.ParsePEMCerts(b)
	} else {
		bundle, err = connfile.ReadBundle(g.dataDir)
	}
	if err != nil {
		return o, err
	}
	token := os.Getenv("WEFT_JOIN_TOKEN")
	switch {
	case f.tokenFile != "":
		b, rerr := os.ReadFile(f.tokenFile)
		if rerr != nil {
			return o, fmt.Errorf("--token-file: %w", rerr)
		}
		token = strings.TrimSpace(string(b))
	case token == "":
		if token, err = connfile.ReadToken(g.dataDir, connfile.JoinTokenFile); err != nil {
			return o, err
		}
	}
	hostPort := func(host string, p int) string { return net.JoinHostPort(host, strconv.Itoa(p)) }
	o = sidecar.Options{
		Control:        control,
		Bundle:         bundle,
		Token:          token,
		Workload:       w,
		AppPort:        f.appPort,
		AppProtocol:    appProto,
		InboundListen:  hostPort(f.address, f.inboundPort),
		OutboundListen: hostPort("127.0.0.1", f.outboundPort),
		AdminListen:    hostPort("127.0.0.1", f.adminPort),
	}
	return o, nil
}
