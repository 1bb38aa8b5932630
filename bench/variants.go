//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Variant names.
const (
	varDirect  = "direct"
	varWeft    = "weft"
	varNginx   = "nginx"
	varHAProxy = "haproxy"
	varCaddy   = "caddy"
)

// variant is one running topology: where the load generator sends HTTP/1.1
// and gRPC, and the proxy processes whose CPU and memory are measured.
type variant struct {
	Name          string
	H1Addr        string
	H1Absolute    bool // send absolute-form requests (explicit HTTP proxy)
	GRPCAddr      string
	GRPCAuthority string
	// Client and Server are the client-side and server-side proxies (nil
	// for direct). Others are processes that are not measured (weft's
	// control plane).
	Client, Server *Proc
	Others         []*Proc
	// Admin holds the client and server proxies' admin addresses (weft
	// only), for CPU profiles.
	Admin []string
	// Sink is weft-telemetry's OTLP collector (telemetry.go); nil for the
	// others.
	Sink *otlpSink
}

func (v *variant) proxies() []*Proc {
	if v.Client == nil {
		return nil
	}
	return []*Proc{v.Client, v.Server}
}

func (v *variant) proxyPids() []int {
	var out []int
	for _, p := range v.proxies() {
		out = append(out, p.Pid())
	}
	return out
}

func (v *variant) stop() {
	for _, p := range v.proxies() {
		p.Stop()
	}
	for _, p := range v.Others {
		p.Stop()
	}
	if v.Sink != nil {
		v.Sink.stop()
	}
}

// dpEnv is what every variant is set up from.
type dpEnv struct {
	dir      string
	echoPort int
	weftBin  string
	tools    map[string]string // variant name → binary path
	threads  int               // worker processes / threads / GOMAXPROCS per proxy
	certs    peerCerts
	// authzRules is the size of the AuthorizationPolicy on weft's server
	// side (0: none).
	authzRules int
}

// findTools looks for the peer proxies' binaries. It installs nothing; a
// missing one is reported with how to get it.
func findTools(caddyFlag string) (found map[string]string, missing map[string]string) {
	found, missing = map[string]string{}, map[string]string{}
	look := func(name string, extra ...string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, e := range extra {
			if st, err := os.Stat(e); err == nil && !st.IsDir() {
				return e
			}
		}
		return ""
	}
	if p := look("nginx", "/usr/sbin/nginx"); p != "" {
		found[varNginx] = p
	} else {
		missing[varNginx] = "nginx not found: apt-get install -y nginx"
	}
	if p := look("haproxy", "/usr/sbin/haproxy"); p != "" {
		found[varHAProxy] = p
	} else {
		missing[varHAProxy] = "haproxy not found: apt-get install -y haproxy"
	}
	caddyCandidates := []string{}
	if gp := os.Getenv("GOPATH"); gp != "" {
		caddyCandidates = append(caddyCandidates, filepath.Join(gp, "bin", "caddy"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		caddyCandidates = append(caddyCandidates, filepath.Join(home, "go", "bin", "caddy"))
	}
	switch {
	case caddyFlag != "":
		if _, err := os.Stat(caddyFlag); err == nil {
			found[varCaddy] = caddyFlag
		} else {
			missing[varCaddy] = fmt.Sprintf("-caddy %s: %v", caddyFlag, err)
		}
	default:
		if p := look("caddy", caddyCandidates...); p != "" {
			found[varCaddy] = p
		} else {
			missing[varCaddy] = "caddy not found: GOBIN=/tmp/caddybin go install github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9, then pass -caddy /tmp/caddybin/caddy"
		}
	}
	return found, missing
}

func (e *dpEnv) start(ctx context.Context, name string) (*variant, error) {
	switch name {
	case varDirect:
		a := addrOf(e.echoPort)
		return &variant{Name: name, H1Addr: a, GRPCAddr: a, GRPCAuthority: "echo"}, nil
	case varWeft, varWeftTelemetry:
		return e.startWeft(ctx, name == varWeftTelemetry)
	case varNginx:
		return e.startNginx(ctx)
	case varHAProxy:
		return e.startHAProxy(ctx)
	case varCaddy:
		return e.startCaddy(ctx)
	}
	return nil, fmt.Errorf("unknown variant %q", name)
}

// startWeft runs a control plane and two sidecars: "loadgen" (calls only;
// the load generator uses its outbound listener as an explicit HTTP proxy)
// and "echo" (inbound mTLS → the echo backend). Metrics stay on, as they
// are in production; with telemetry, access logs and 1% tracing to an
// OTLP sink too (varWeftTelemetry).
func (e *dpEnv) startWeft(ctx context.Context, telemetry bool) (*variant, error) {
	name := varWeft
	if telemetry {
		name = varWeftTelemetry
	}
	dir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ports, err := freePorts(8)
	if err != nil {
		return nil, err
	}
	v := &variant{Name: name, H1Absolute: true, GRPCAuthority: "echo:80"}
	ok := false
	defer func() {
		if !ok {
			v.stop()
		}
	}()
	ctrl, err := startProc(dir, "weft-control", nil, e.weftBin, "control", "--data-dir", dir,
		"--listen", addrOf(ports[0]), "--api-listen", addrOf(ports[1]), "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	v.Others = append(v.Others, ctrl)
	if err := waitFile(ctx, ctrl, filepath.Join(dir, "control.json")); err != nil {
		return nil, err
	}
	env := []string{"GOMAXPROCS=" + strconv.Itoa(e.threads)}
	v.Server, err = startProc(dir, "weft-proxy-echo", env, e.weftBin, "proxy", "--data-dir", dir, "--log-level", "warn",
		"--service", "echo", "--app-port", strconv.Itoa(e.echoPort),
		"--inbound-port", strconv.Itoa(ports[2]), "--outbound-port", strconv.Itoa(ports[3]), "--admin-port", strconv.Itoa(ports[4]))
	if err != nil {
		return nil, err
	}
	v.Client, err = startProc(dir, "weft-proxy-loadgen", env, e.weftBin, "proxy", "--data-dir", dir, "--log-level", "warn",
		"--service", "loadgen",
		"--inbound-port", strconv.Itoa(ports[5]), "--outbound-port", strconv.Itoa(ports[6]), "--admin-port", strconv.Itoa(ports[7]))
	if err != nil {
		return nil, err
	}
	for _, p := range []struct {
		proc  *Proc
		admin int
	}{{v.Server, ports[4]}, {v.Client, ports[7]}} {
		if err := waitReady(ctx, p.proc, "http://"+addrOf(p.admin)+"/ready"); err != nil {
			return nil, err
		}
	}
	if e.authzRules > 0 {
		if err := applyAuthz(ctx, e.weftBin, dir, e.authzRules, addrOf(ports[4])); err != nil {
			return nil, err
		}
	}
	if telemetry {
		if v.Sink, err = startOTLPSink(); err != nil {
			return nil, err
		}
		// Both proxies hold the collector once their config dumps name it.
		if err := applyAndWait(ctx, e.weftBin, dir, "meshconfig.yaml", fmt.Sprintf(telemetryMeshConfig, v.Sink.addr), v.Sink.addr, addrOf(ports[4]), addrOf(ports[7])); err != nil {
			return nil, err
		}
	}
	v.H1Addr, v.GRPCAddr = addrOf(ports[6]), addrOf(ports[6])
	v.Admin = []string{addrOf(ports[7]), addrOf(ports[4])}
	ok = true
	return v, nil
}

func waitFile(ctx context.Context, p *Proc, path string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s exited (%v):\n%s", p.Name, err, p.Tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not write %s within 20s:\n%s", p.Name, path, p.Tail())
}

func waitReady(ctx context.Context, p *Proc, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s exited (%v):\n%s", p.Name, err, p.Tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready at %s within 30s:\n%s", p.Name, url, p.Tail())
}

// pairPorts are the ports of a peer proxy pair: the client-side proxy's
// plaintext listeners (HTTP/1.1, h2c for gRPC) and the server-side proxy's
// mTLS listeners.
type pairPorts struct {
	FrontH1, FrontGRPC, BackH1, BackGRPC, Echo int
	Dir                                        string
	Threads                                    int
	Certs                                      peerCerts
	BackName                                   string
}

func (e *dpEnv) pair(name string) (pairPorts, error) {
	ports, err := freePorts(4)
	if err != nil {
		return pairPorts{}, err
	}
	dir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return pairPorts{}, err
	}
	return pairPorts{FrontH1: ports[0], FrontGRPC: ports[1], BackH1: ports[2], BackGRPC: ports[3], Echo: e.echoPort,
		Dir: dir, Threads: e.threads, Certs: e.certs, BackName: backName}, nil
}

func (e *dpEnv) startPair(ctx context.Context, name string, pp pairPorts, front, back []string, env []string) (*variant, error) {
	v := &variant{Name: name, H1Addr: addrOf(pp.FrontH1), GRPCAddr: addrOf(pp.FrontGRPC), GRPCAuthority: "echo"}
	var err error
	if v.Server, err = startProc(pp.Dir, name+"-back", env, back...); err != nil {
		return nil, err
	}
	if v.Client, err = startProc(pp.Dir, name+"-front", env, front...); err != nil {
		v.Server.Stop()
		return nil, err
	}
	for _, w := range []struct {
		p    *Proc
		port int
	}{{v.Server, pp.BackH1}, {v.Server, pp.BackGRPC}, {v.Client, pp.FrontH1}, {v.Client, pp.FrontGRPC}} {
		if err := waitTCP(ctx, w.p, addrOf(w.port)); err != nil {
			v.stop()
			return nil, err
		}
	}
	return v, nil
}

func renderTo(path, tmpl string, data any) error {
	t, err := template.New(filepath.Base(path)).Parse(tmpl)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// nginx: one worker process each; keep-alive upstream connections
// (proxy_http_version 1.1 + keepalive), mTLS with session reuse between the
// pair, gRPC through grpc_pass (h2c in, h2 over TLS between the pair, h2c to
// the backend). Access logs off on every variant's peers (weft has no
// access log on by default).
const nginxCommon = `worker_processes {{.Threads}};
pid {{.Dir}}/{{.Role}}.pid;
error_log {{.Dir}}/{{.Role}}-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path {{.Dir}}/{{.Role}}-tmp/body;
  proxy_temp_path {{.Dir}}/{{.Role}}-tmp/proxy;
  fastcgi_temp_path {{.Dir}}/{{.Role}}-tmp/fastcgi;
  uwsgi_temp_path {{.Dir}}/{{.Role}}-tmp/uwsgi;
  scgi_temp_path {{.Dir}}/{{.Role}}-tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
`

const nginxFront = nginxCommon + `
  upstream back_h1 { server 127.0.0.1:{{.BackH1}}; keepalive 64; keepalive_requests 1000000; }
  upstream back_grpc { server 127.0.0.1:{{.BackGRPC}}; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:{{.FrontH1}};
    location / {
      proxy_pass https://back_h1;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_ssl_certificate {{.Certs.ClientCert}};
      proxy_ssl_certificate_key {{.Certs.ClientKey}};
      proxy_ssl_trusted_certificate {{.Certs.CA}};
      proxy_ssl_verify on;
      proxy_ssl_name {{.BackName}};
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }
  }
  server {
    listen 127.0.0.1:{{.FrontGRPC}} http2;
    location / {
      grpc_pass grpcs://back_grpc;
      grpc_ssl_certificate {{.Certs.ClientCert}};
      grpc_ssl_certificate_key {{.Certs.ClientKey}};
      grpc_ssl_trusted_certificate {{.Certs.CA}};
      grpc_ssl_verify on;
      grpc_ssl_name {{.BackName}};
      grpc_ssl_server_name on;
      grpc_ssl_session_reuse on;
    }
  }
}
`

const nginxBack = nginxCommon + `
  upstream app { server 127.0.0.1:{{.Echo}}; keepalive 64; keepalive_requests 1000000; }
  ssl_certificate {{.Certs.ServerCert}};
  ssl_certificate_key {{.Certs.ServerKey}};
  ssl_client_certificate {{.Certs.CA}};
  ssl_verify_client on;
  ssl_session_cache shared:SSL:1m;
  server {
    listen 127.0.0.1:{{.BackH1}} ssl;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
  server {
    listen 127.0.0.1:{{.BackGRPC}} ssl http2;
    location / { grpc_pass grpc://app; }
  }
}
`

func (e *dpEnv) startNginx(ctx context.Context) (*variant, error) {
	pp, err := e.pair(varNginx)
	if err != nil {
		return nil, err
	}
	var args [2][]string
	for i, role := range []string{"front", "back"} {
		if err := os.MkdirAll(filepath.Join(pp.Dir, role+"-tmp"), 0o755); err != nil {
			return nil, err
		}
		tmpl := nginxFront
		if role == "back" {
			tmpl = nginxBack
		}
		conf := filepath.Join(pp.Dir, role+".conf")
		data := struct {
			pairPorts
			Role string
		}{pp, role}
		if err := renderTo(conf, tmpl, data); err != nil {
			return nil, err
		}
		args[i] = []string{e.tools[varNginx], "-e", filepath.Join(pp.Dir, role+"-error.log"), "-p", pp.Dir, "-c", conf, "-g", "daemon off;"}
	}
	return e.startPair(ctx, varNginx, pp, args[0], args[1], nil)
}

// HAProxy: one thread each (nbthread), http-reuse always on every backend,
// mTLS between the pair; gRPC with "proto h2" (h2c in and to the backend,
// h2 over TLS with ALPN between the pair).
const haproxyCommon = `global
  nbthread {{.Threads}}
  maxconn 4096
  tune.ssl.default-dh-param 2048
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
`

const haproxyFront = haproxyCommon + `
frontend fe_h1
  bind 127.0.0.1:{{.FrontH1}}
  default_backend be_h1
frontend fe_grpc
  bind 127.0.0.1:{{.FrontGRPC}} proto h2
  default_backend be_grpc
backend be_h1
  http-reuse always
  server back 127.0.0.1:{{.BackH1}} ssl crt {{.Certs.ClientBundle}} ca-file {{.Certs.CA}} verify required sni str({{.BackName}}) verifyhost {{.BackName}}
backend be_grpc
  http-reuse always
  server back 127.0.0.1:{{.BackGRPC}} ssl crt {{.Certs.ClientBundle}} ca-file {{.Certs.CA}} verify required sni str({{.BackName}}) verifyhost {{.BackName}} alpn h2
`

const haproxyBack = haproxyCommon + `
frontend fe_h1
  bind 127.0.0.1:{{.BackH1}} ssl crt {{.Certs.ServerBundle}} ca-file {{.Certs.CA}} verify required
  default_backend app_h1
frontend fe_grpc
  bind 127.0.0.1:{{.BackGRPC}} ssl crt {{.Certs.ServerBundle}} ca-file {{.Certs.CA}} verify required alpn h2
  default_backend app_grpc
backend app_h1
  http-reuse always
  server app 127.0.0.1:{{.Echo}}
backend app_grpc
  http-reuse always
  server app 127.0.0.1:{{.Echo}} proto h2
`

func (e *dpEnv) startHAProxy(ctx context.Context) (*variant, error) {
	pp, err := e.pair(varHAProxy)
	if err != nil {
		return nil, err
	}
	var args [2][]string
	for i, role := range []string{"front", "back"} {
		tmpl := haproxyFront
		if role == "back" {
			tmpl = haproxyBack
		}
		conf := filepath.Join(pp.Dir, role+".cfg")
		if err := renderTo(conf, tmpl, pp); err != nil {
			return nil, err
		}
		args[i] = []string{e.tools[varHAProxy], "-db", "-f", conf}
	}
	return e.startPair(ctx, varHAProxy, pp, args[0], args[1], nil)
}

// Caddy: GOMAXPROCS=threads (Go's equivalent of one worker), JSON config,
// admin endpoint off, no automatic HTTPS; reverse_proxy with keep-alive
// pools, mTLS between the pair, h2c in and to the backend for gRPC.
func (e *dpEnv) startCaddy(ctx context.Context) (*variant, error) {
	pp, err := e.pair(varCaddy)
	if err != nil {
		return nil, err
	}
	c := pp.Certs
	clientTLS := map[string]any{
		"ca":                          map[string]any{"provider": "file", "pem_files": []string{c.CA}},
		"client_certificate_file":     c.ClientCert,
		"client_certificate_key_file": c.ClientKey,
		"server_name":                 pp.BackName,
	}
	proxy := func(dial string, versions []string, tls map[string]any) map[string]any {
		tr := map[string]any{"protocol": "http", "versions": versions,
			"keep_alive": map[string]any{"enabled": true, "max_idle_conns_per_host": 64, "idle_timeout": "300s"}}
		if tls != nil {
			tr["tls"] = tls
		}
		return map[string]any{"handle": []any{map[string]any{
			"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": dial}}, "transport": tr,
		}}}
	}
	server := func(port int, protocols []string, route map[string]any, mtls bool) map[string]any {
		s := map[string]any{
			"listen": []string{addrOf(port)}, "protocols": protocols, "routes": []any{route},
			"automatic_https": map[string]any{"disable": true},
		}
		if mtls {
			// Caddy turns on strict SNI/Host matching with client auth;
			// the Host header is the mesh name "echo", not the TLS name.
			s["strict_sni_host"] = false
		}
		if mtls {
			s["tls_connection_policies"] = []any{map[string]any{
				"certificate_selection": map[string]any{"any_tag": []string{"bench"}},
				"client_authentication": map[string]any{
					"mode": "require_and_verify",
					"ca":   map[string]any{"provider": "file", "pem_files": []string{c.CA}},
				},
			}}
		}
		return s
	}
	base := func(servers map[string]any, withCert bool) map[string]any {
		apps := map[string]any{"http": map[string]any{"servers": servers}}
		if withCert {
			apps["tls"] = map[string]any{"certificates": map[string]any{"load_files": []any{map[string]any{
				"certificate": c.ServerCert, "key": c.ServerKey, "tags": []string{"bench"},
			}}}}
		}
		return map[string]any{
			"admin":   map[string]any{"disabled": true},
			"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
			"storage": map[string]any{"module": "file_system", "root": filepath.Join(pp.Dir, "storage")},
			"apps":    apps,
		}
	}
	front := base(map[string]any{
		"h1":   server(pp.FrontH1, []string{"h1"}, proxy(addrOf(pp.BackH1), []string{"1.1"}, clientTLS), false),
		"grpc": server(pp.FrontGRPC, []string{"h1", "h2c"}, proxy(addrOf(pp.BackGRPC), []string{"2"}, clientTLS), false),
	}, false)
	back := base(map[string]any{
		"h1":   server(pp.BackH1, []string{"h1"}, proxy(addrOf(pp.Echo), []string{"1.1"}, nil), true),
		"grpc": server(pp.BackGRPC, []string{"h1", "h2"}, proxy(addrOf(pp.Echo), []string{"h2c"}, nil), true),
	}, true)
	var args [2][]string
	for i, cfg := range []struct {
		role string
		conf map[string]any
	}{{"front", front}, {"back", back}} {
		b, err := json.MarshalIndent(cfg.conf, "", "  ")
		if err != nil {
			return nil, err
		}
		path := filepath.Join(pp.Dir, cfg.role+".json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return nil, err
		}
		args[i] = []string{e.tools[varCaddy], "run", "--config", path}
	}
	env := []string{"GOMAXPROCS=" + strconv.Itoa(e.threads), "HOME=" + pp.Dir, "XDG_DATA_HOME=" + pp.Dir, "XDG_CONFIG_HOME=" + pp.Dir}
	return e.startPair(ctx, varCaddy, pp, args[0], args[1], env)
}

// check sends one request of each protocol through v, retrying briefly
// (the first weft call subscribes to the endpoints of echo).
func (v *variant) check(ctx context.Context, protos []string) error {
	for _, proto := range protos {
		cs, err := newClients(v, proto, 1)
		if err != nil {
			return err
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			err = cs[0].do(ctx)
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		closeClients(cs)
		if err != nil {
			return fmt.Errorf("%s %s request through %s failed: %w", v.Name, proto, v.H1Addr, err)
		}
	}
	return nil
}

// applyAuthz applies an ALLOW AuthorizationPolicy of n rules to the echo
// service, of which only the last matches the load generator's requests,
// and waits until the server-side proxy at admin has it.
func applyAuthz(ctx context.Context, weftBin, dir string, n int, admin string) error {
	var b strings.Builder
	b.WriteString("apiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata:\n  name: bench-authz\n  namespace: default\nspec:\n  targetRef: {kind: Service, name: echo}\n  action: ALLOW\n  rules:\n")
	for i := 0; i < n-1; i++ {
		fmt.Fprintf(&b, "  - from: [{identities: [\"spiffe://cluster.local/ns/default/sa/caller-%d\"]}]\n    to: [{methods: [GET, POST], paths: [\"/api/%d/*\"]}]\n", i, i)
	}
	b.WriteString("  - from: [{identities: [\"spiffe://cluster.local/ns/default/sa/loadgen\"]}]\n    to: [{methods: [GET, POST]}]\n")
	return applyAndWait(ctx, weftBin, dir, "authz.yaml", b.String(), "bench-authz", admin)
}

// applyAndWait applies yaml (written to dir/file) and waits until the
// config dump of every proxy at admins contains needle.
func applyAndWait(ctx context.Context, weftBin, dir, file, yaml, needle string, admins ...string) error {
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, weftBin, "apply", "-f", path, "--data-dir", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("applying the benchmark's %s: %v: %s", file, err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, admin := range admins {
		for {
			resp, err := http.Get("http://" + admin + "/config_dump")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(body), needle) {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the proxy at %s did not get %s within 20s", admin, file)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}
