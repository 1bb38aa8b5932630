package cli

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"weft.dev/weft/internal/appprobe"
	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/proxy/h1parse"
	"weft.dev/weft/internal/proxy/inbound"
	"weft.dev/weft/internal/proxy/outbound"
	"weft.dev/weft/internal/proxy/sidecar"
	"weft.dev/weft/internal/proxy/xdsclient"
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
	egress         bool
	appProtocol    string
	inboundPort    int
	outboundPort   int
	adminPort      int
	healthPort     int
	caFile         string
	tokenFile      string
	saTokenFile    string
	http           sidecar.HTTPLimits
	upstreams      []string         // upstreams.go
	transparent    transparentFlags // transparentflags.go

	// Startup and graceful stop (see docs/configuration.md).
	startupTimeout time.Duration
	drainTimeout   time.Duration
	drainQuiet     time.Duration
}

func (f *sidecarFlags) register(fs *pflag.FlagSet, defaultPorts [3]int) {
	fs.StringVar(&f.service, "service", "", "service this workload belongs to (required)")
	fs.StringVar(&f.namespace, "namespace", "default", "namespace of the workload")
	fs.StringVar(&f.serviceAccount, "service-account", "", "service account in the SPIFFE ID (default: the service name)")
	fs.StringVar(&f.version, "version", "", "version label of the workload (e.g. v2)")
	fs.StringArrayVar(&f.labels, "label", nil, "extra workload label K=V (repeatable)")
	fs.StringVar(&f.address, "address", "127.0.0.1", "host the inbound listener binds and other proxies dial")
	fs.IntVar(&f.appPort, "app-port", 0, "port the local app serves on (omit for a workload that only makes calls)")
	fs.BoolVar(&f.egress, "egress", false, "run as an egress gateway: no app; the inbound listener passes mesh callers' requests to hosts outside the mesh (see docs/egress.md; excludes --app-port)")
	fs.StringVar(&f.appProtocol, "app-protocol", "http", "what the app speaks on --app-port: http (HTTP/1.1, and h2c if it answers the HTTP/2 preface), http1, h2c, grpc, or tcp (opaque: streams reach it unparsed)")
	fs.IntVar(&f.inboundPort, "inbound-port", defaultPorts[0], "mTLS inbound listener port (0: a free port)")
	fs.IntVar(&f.outboundPort, "outbound-port", defaultPorts[1], "outbound HTTP proxy port on 127.0.0.1 (0: a free port)")
	fs.StringArrayVar(&f.upstreams, "upstream", nil, "TCP upstream SERVICE[.NS]:PORT[=LOCAL_PORT]: a listener on 127.0.0.1:LOCAL_PORT (default: a free port, logged at start) forwarding raw TCP to the mesh service (repeatable)")
	fs.IntVar(&f.adminPort, "admin-port", defaultPorts[2], "admin server port on 127.0.0.1: /ready /metrics /config_dump (0: a free port)")
	fs.IntVar(&f.healthPort, "health-port", 0, "health server port on --address for kubelet's probes: /ready and the app's probes of env WEFT_APP_PROBES, as sidecar injection sets up (0: none)")
	fs.StringVar(&f.caFile, "ca-file", "", "trust bundle PEM (default: ca.pem in --data-dir)")
	fs.StringVar(&f.tokenFile, "token-file", "", "join token file (default: env WEFT_JOIN_TOKEN, else join-token in --data-dir)")
	fs.StringVar(&f.saTokenFile, "sa-token-file", "", "Kubernetes service-account token file (a projected volume with audience weft, conventionally "+saTokenPath+") sent to a control plane running --identity kubernetes instead of a join token; re-read at every certificate request, as the kubelet rotates it (excludes --token-file)")
	fs.IntVar(&f.http.MaxHeaderBytes, "max-header-bytes", h1parse.DefaultMaxHeaderBytes, "largest HTTP/1.x request head accepted, in bytes (larger: 431)")
	fs.IntVar(&f.http.MaxHeaders, "max-headers", h1parse.DefaultMaxHeaders, "most header fields accepted in a request (more: 431)")
	fs.DurationVar(&f.http.HeaderTimeout, "header-timeout", 10*time.Second, "time allowed to receive a request head from its first byte (then 408)")
	fs.IntVar(&f.http.MaxOutboundConns, "max-outbound-conns", outbound.DefaultMaxConns, "open connections the outbound listener accepts from the app (more: 503)")
	fs.IntVar(&f.http.MaxInboundConns, "max-inbound-conns", inbound.DefaultMaxConns, "open connections the inbound listener accepts from peers (more: closed)")

	f.transparent.register(fs)

	// Startup and graceful stop.
	fs.DurationVar(&f.startupTimeout, "startup-timeout", 60*time.Second, "exit with an error if no certificate and first config arrive from the control plane within this time (0: wait for ever)")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", sidecar.DefaultDrainTimeout, "on SIGTERM, the longest the sidecar waits for peers to stop sending and requests in flight to finish before it stops (and, under weft run, stops the app)")
	fs.DurationVar(&f.drainQuiet, "drain-quiet", sidecar.DefaultDrainQuiet, "on SIGTERM, the drain ends early once no request has arrived for this long since the sidecar left the mesh")
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
	if f.egress && f.appPort != 0 {
		return o, fmt.Errorf("--egress and --app-port exclude each other: an egress gateway has no app")
	}
	for name, p := range map[string]int{"--app-port": f.appPort, "--inbound-port": f.inboundPort, "--outbound-port": f.outboundPort, "--admin-port": f.adminPort, "--health-port": f.healthPort} {
		if p < 0 || p > 65535 {
			return o, fmt.Errorf("%s: %d is not a port", name, p)
		}
	}
	for name, v := range map[string]int{"--max-header-bytes": f.http.MaxHeaderBytes, "--max-headers": f.http.MaxHeaders, "--max-outbound-conns": f.http.MaxOutboundConns, "--max-inbound-conns": f.http.MaxInboundConns} {
		if v <= 0 {
			return o, fmt.Errorf("%s: %d must be positive", name, v)
		}
	}
	if f.http.MaxHeaderBytes < 1024 {
		return o, fmt.Errorf("--max-header-bytes: %d is below 1024", f.http.MaxHeaderBytes)
	}
	if f.http.HeaderTimeout <= 0 {
		return o, fmt.Errorf("--header-timeout: %v must be positive", f.http.HeaderTimeout)
	}
	if f.startupTimeout < 0 {
		return o, fmt.Errorf("--startup-timeout: %s is negative", f.startupTimeout)
	}
	for name, d := range map[string]time.Duration{"--drain-timeout": f.drainTimeout, "--drain-quiet": f.drainQuiet} {
		if d <= 0 {
			return o, fmt.Errorf("%s: %s is not positive", name, d)
		}
	}
	if f.drainQuiet > f.drainTimeout {
		return o, fmt.Errorf("--drain-quiet %s is longer than --drain-timeout %s", f.drainQuiet, f.drainTimeout)
	}
	appProto, err := inbound.ParseAppProtocol(f.appProtocol)
	if err != nil {
		return o, fmt.Errorf("--app-protocol: %w", err)
	}
	if net.ParseIP(f.address) == nil {
		return o, fmt.Errorf("--address: %q is not an IP address", f.address)
	}
	ups, err := parseUpstreams(f.upstreams) // upstreams.go
	if err != nil {
		return o, err
	}
	tr, err := f.transparent.options()
	if err != nil {
		return o, err
	}
	w := xdsmeta.Workload{Service: f.service, Namespace: f.namespace, ServiceAccount: sa, Version: f.version, Labels: labels}
	if err := w.Validate(); err != nil {
		return o, fmt.Errorf("workload: %w", err)
	}
	// --control may list several replicas (a,b,c); the connection file
	// lists every replica its writer knew. The proxy's gRPC channels hold
	// them all and fail over (xdsclient.Target).
	var addrs []string
	if g.control != "" {
		if addrs, err = xdsclient.ParseAddresses(g.control); err != nil {
			return o, fmt.Errorf("--control: %w", err)
		}
	} else {
		c, err := connfile.Read(g.dataDir)
		if err != nil {
			return o, err
		}
		if addrs = c.Addresses(); len(addrs) == 0 {
			return o, fmt.Errorf("connection file in %s names no xDS address", g.dataDir)
		}
	}
	control := xdsclient.Target(addrs)
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
	case f.saTokenFile != "":
		if token, err = checkSATokenFile(f.saTokenFile, f.tokenFile); err != nil { // sidecar_identity.go
			return o, err
		}
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
	var healthListen string
	var probes appprobe.Probes
	if f.healthPort != 0 {
		healthListen = hostPort(f.address, f.healthPort)
		if probes, err = appprobe.Parse(os.Getenv("WEFT_APP_PROBES")); err != nil {
			return o, fmt.Errorf("env WEFT_APP_PROBES: %w", err)
		}
	}
	o = sidecar.Options{
		Control:        control,
		Bundle:         bundle,
		Token:          token,
		TokenFile:      f.saTokenFile,
		Workload:       w,
		AppPort:        f.appPort,
		EgressGateway:  f.egress,
		AppProtocol:    appProto,
		InboundListen:  hostPort(f.address, f.inboundPort),
		OutboundListen: hostPort("127.0.0.1", f.outboundPort),
		AdminListen:    hostPort("127.0.0.1", f.adminPort),
		HTTP:           f.http,
		Upstreams:      ups,
		StartupTimeout: f.startupTimeout,
		DrainTimeout:   f.drainTimeout,
		DrainQuiet:     f.drainQuiet,
		Transparent:    tr,
		HealthListen:   healthListen,
		AppProbes:      probes,
	}
	return o, nil
}
