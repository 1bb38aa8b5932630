package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"weft.dev/weft/internal/demo/demov1"
)

// gatewayCert makes a self-signed certificate for *.example.com and
// returns the Secret YAML of docs/gateways.md holding it, a pool that
// trusts it, and the certificate.
func gatewayCert(t *testing.T) (string, *x509.CertPool, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "*.example.com"},
		DNSNames: []string{"*.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kpem := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	secret := docYAML(t, "gateways.md", docContaining("kind: Secret"))
	secret = strings.Replace(secret, "<base64 of the PEM certificate chain>", base64.StdEncoding.EncodeToString(crt), 1)
	secret = strings.Replace(secret, "<base64 of the PEM private key>", base64.StdEncoding.EncodeToString(kpem), 1)
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	cert, err := tls.X509KeyPair(crt, kpem)
	if err != nil {
		t.Fatal(err)
	}
	return secret, pool, cert
}

// gatewayClient dials every request to 127.0.0.1 whatever its host (as
// curl --resolve does) and trusts pool for TLS; the server name is the
// URL's host unless sni is set.
func gatewayClient(pool *x509.CertPool, sni string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(a)
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: sni},
		ForceAttemptHTTP2: false,
	}}
}

// gatewayGet GETs u with c and returns status, x-weft-reason and the
// decoded demo-backend reply (zero when the body is no reply).
func gatewayGet(c *http.Client, u string, hdr ...string) (int, string, backendReply, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, "", backendReply{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", backendReply{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var br backendReply
	_ = json.Unmarshal(b, &br)
	return resp.StatusCode, resp.Header.Get("X-Weft-Reason"), br, nil
}

// startGateway starts `weft gateway --name name` against c on loopback.
func startGateway(t *testing.T, c *control, name string) *workload {
	t.Helper()
	w := &workload{t: t, service: name, namespace: "default", inbound: freePort(t), outbound: freePort(t), admin: freePort(t)}
	w.proc = startProc(t, "gateway-"+name, nil, weftBin, "gateway", "--name", name, "--data-dir", c.dataDir, "--listen-address", "127.0.0.1",
		"--inbound-port", strconv.Itoa(w.inbound), "--outbound-port", strconv.Itoa(w.outbound), "--admin-port", strconv.Itoa(w.admin))
	w.waitReady()
	return w
}

// TestGatewayHTTPS: the Gateway and HTTPRoute of docs/gateways.md, with a
// certificate made here: HTTPS requests for shop.example.com reach
// backend-v1, or backend-v2 by path or header; the backends see the
// gateway's SPIFFE ID as caller; the HTTP listener serves the same routes;
// an unknown Host gets 404 no-matching-host, an unknown SNI no handshake, an
// oversized head 431; a DENY policy on the gateway's identity gives 403; a
// route whose Gateway does not exist is not accepted.
func TestGatewayHTTPS(t *testing.T) {
	ports := newGatewayPorts(t)
	c := startControl(t)
	startBackend(t, c, "v1")
	startBackend(t, c, "v2")
	secret, pool, _ := gatewayCert(t)
	c.apply(versionServices + "---\n" + secret + "---\n" + ports.sub(docYAML(t, "gateways.md", docMarked("gateway"))) + "---\n" + ports.sub(docYAML(t, "gateways.md", docMarked("gateway-route"))))
	gw := startGateway(t, c, "shop-gateway")
	client := gatewayClient(pool, "")
	base := ports.sub("https://shop.example.com:18443")
	eventually(t, 15*time.Second, 100*time.Millisecond, "gateway serving shop.example.com", func() error {
		if gw.proc.exited() {
			return stopErr{fmt.Errorf("weft gateway exited: %v", gw.proc.err)}
		}
		code, reason, br, err := gatewayGet(client, base+"/")
		if err != nil {
			return err
		}
		if code != 200 || br.Version != "v1" {
			return fmt.Errorf("GET /: %d %q version %q", code, reason, br.Version)
		}
		return nil
	})

	// Path and header matching, over N requests each.
	const n = 20
	cases := []struct {
		name, url, version string
		hdr                []string
	}{
		{"prefix /", base + "/", "v1", nil},
		{"prefix /v2", base + "/v2", "v2", nil},
		{"header x-canary", base + "/", "v2", []string{"x-canary", "1"}},
		{"HTTP listener", ports.sub("http://shop.example.com:18080/v2"), "v2", nil},
		{"HTTP listener /", ports.sub("http://shop.example.com:18080/"), "v1", nil},
	}
	for _, tc := range cases {
		counts := map[string]int{}
		for range n {
			code, reason, br, err := gatewayGet(client, tc.url, tc.hdr...)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if code != 200 {
				t.Fatalf("%s: GET %s: status %d (x-weft-reason %q)", tc.name, tc.url, code, reason)
			}
			if want := spiffeID("default", "shop-gateway"); br.Caller != want {
				t.Fatalf("%s: backend saw caller %q, want the gateway's %q", tc.name, br.Caller, want)
			}
			counts[br.Version]++
		}
		if counts[tc.version] != n {
			t.Fatalf("%s: versions %v over %d requests, want all %s", tc.name, counts, n, tc.version)
		}
		t.Logf("%s: %v", tc.name, counts)
	}

	// HTTP/2: ALPN h2 on the HTTPS listener, prior knowledge (h2c) on the HTTP one.
	h2 := gatewayClient(pool, "")
	h2.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	h2c := gatewayClient(pool, "")
	h2c.Transport.(*http.Transport).Protocols = new(http.Protocols)
	h2c.Transport.(*http.Transport).Protocols.SetUnencryptedHTTP2(true)
	for _, tc := range []struct {
		c   *http.Client
		url string
	}{{h2, base + "/v2"}, {h2c, ports.sub("http://shop.example.com:18080/v2")}} {
		resp, err := tc.c.Get(tc.url)
		if err != nil {
			t.Fatalf("HTTP/2 GET %s: %v", tc.url, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var br backendReply
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 || json.Unmarshal(b, &br) != nil || br.Version != "v2" {
			t.Fatalf("HTTP/2 GET %s: %s %d %.200s, want HTTP/2 200 from v2", tc.url, resp.Proto, resp.StatusCode, b)
		}
	}

	// Hostile: a host no route serves, under the listener's wildcard.
	for _, u := range []string{ports.sub("https://other.example.com:18443/"), ports.sub("http://nowhere.test:18080/")} {
		code, reason, _, err := gatewayGet(client, u)
		if err != nil || code != 404 || reason != "no-matching-host" {
			t.Fatalf("GET %s: %d %q %v, want 404 no-matching-host", u, code, reason, err)
		}
	}
	// An SNI no listener covers fails the handshake.
	conn, err := tls.Dial("tcp", ports.sub("127.0.0.1:18443"), &tls.Config{ServerName: "evil.test", RootCAs: pool})
	if err == nil {
		conn.Close()
		t.Fatal("TLS handshake with SNI evil.test succeeded, want it refused")
	}
	t.Logf("SNI evil.test: %v", err)
	// An oversized head gets 431, as on the sidecar.
	code, _, _, err := gatewayGet(client, base+"/", "x-big", strings.Repeat("a", 70<<10))
	if err != nil || code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("70 KiB header: %d %v, want 431", code, err)
	}
	// Malformed: a bare LF head and a bad header name get 400.
	raw, err := net.Dial("tcp", ports.sub("127.0.0.1:18080"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(raw, "GET / HTTP/1.1\r\nHost: shop.example.com\r\nbad header: x\r\n\r\n")
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := io.ReadAll(io.LimitReader(raw, 12))
	raw.Close()
	if string(line) != "HTTP/1.1 400" {
		t.Fatalf("malformed header name: got %q, want HTTP/1.1 400", line)
	}

	// The route whose Gateway does not exist.
	c.apply(ports.sub(docYAML(t, "gateways.md", docMarked("gateway-orphan"))))
	r := c.cli("get", "httproute", "orphan", "-o", "yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "NoMatchingParent") || !strings.Contains(r.stdout, "status: \"False\"") {
		t.Fatalf("weft get httproute orphan -o yaml does not report Accepted=False NoMatchingParent:\n%s", r)
	}
	r = c.cli("get", "httproute", "shop", "-o", "yaml")
	if r.code != 0 || strings.Contains(r.stdout, "NoMatchingParent") || !strings.Contains(r.stdout, "attached to Gateway default/shop-gateway, listeners https, http") {
		t.Fatalf("weft get httproute shop -o yaml:\n%s", r)
	}
	eventually(t, 10*time.Second, 100*time.Millisecond, "Gateway Programmed", func() error {
		r := c.cli("get", "gateway", "shop-gateway", "-o", "yaml")
		if r.code != 0 || !strings.Contains(r.stdout, "type: Programmed") || !strings.Contains(r.stdout, "reason: Programmed") {
			return fmt.Errorf("weft get gateway shop-gateway -o yaml:\n%s", r)
		}
		return nil
	})

	if dump, err := gw.configDump(); err != nil || !strings.Contains(dump, `"shop.example.com"`) || !strings.Contains(dump, `"gateway"`) || strings.Contains(dump, "PRIVATE KEY") || strings.Contains(dump, "key_pem") {
		t.Fatalf("the gateway's config dump does not show its routes by host, or shows its key (%v):\n%.2000s", err, dump)
	}
	if r := c.cli("get", "gateways"); r.code != 0 || !strings.Contains(r.stdout, ports.sub("https/HTTPS:18443,http/HTTP:18080")) || !strings.Contains(r.stdout, "True") {
		t.Fatalf("weft get gateways does not list the listeners as programmed:\n%s", r)
	}

	// Authorization applies to the gateway like any caller.
	c.apply(ports.sub(docYAML(t, "gateways.md", docMarked("gateway-deny"))))
	eventually(t, 10*time.Second, 100*time.Millisecond, "gateway denied", func() error {
		code, _, _, err := gatewayGet(client, base+"/")
		if err != nil {
			return err
		}
		if code != http.StatusForbidden {
			return fmt.Errorf("status %d, want 403", code)
		}
		return nil
	})
}

// echoServer accepts connections on a free loopback port (TLS with cert
// when cert is set) and echoes what it reads; it returns the port.
func echoServer(t *testing.T, cert *tls.Certificate) int {
	t.Helper()
	p := freePort(t)
	ln, err := net.Listen("tcp", addr(p))
	if err != nil {
		t.Fatal(err)
	}
	if cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}})
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return p
}

// echoRoundTrip writes size random bytes on c while reading them back,
// and checks they come back intact.
func echoRoundTrip(t *testing.T, c net.Conn, size int) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		errc <- err
	}()
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("echoed bytes differ from those sent")
	}
}

// TestGatewayStreams: the TLS passthrough and TCP listeners of
// docs/gateways.md carry 4 MiB each way intact to in-test echo servers
// behind `weft run --app-protocol tcp` workloads; the TLS client's
// handshake is with the backend (its certificate, SNI routed); an SNI no
// TLSRoute serves is refused; the routes report Accepted.
func TestGatewayStreams(t *testing.T) {
	ports := newGatewayPorts(t)
	c := startControl(t)
	_, pool, cert := gatewayCert(t)
	tlsPort, tcpPort := echoServer(t, &cert), echoServer(t, nil)
	sleep := []string{"sleep", "3600"}
	startWorkload(t, c, wlOpts{service: "tlsecho", appPort: tlsPort, appProtocol: "tcp", cmd: sleep})
	startWorkload(t, c, wlOpts{service: "tcpecho", appPort: tcpPort, appProtocol: "tcp", cmd: sleep})
	c.apply(ports.sub(docYAML(t, "gateways.md", docMarked("gateway-streams"))))
	gw := startGateway(t, c, "db-gateway")

	const size = 4 << 20
	var tc *tls.Conn
	eventually(t, 15*time.Second, 100*time.Millisecond, "TLS passthrough handshake with the backend", func() error {
		if gw.proc.exited() {
			return stopErr{fmt.Errorf("weft gateway exited: %v", gw.proc.err)}
		}
		d := &net.Dialer{Timeout: 2 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", ports.sub("127.0.0.1:18444"), &tls.Config{ServerName: "secure.example.com", RootCAs: pool})
		if err != nil {
			return err
		}
		tc = conn
		return nil
	})
	defer tc.Close()
	if got := tc.ConnectionState().PeerCertificates[0].Raw; !bytes.Equal(got, cert.Certificate[0]) {
		t.Fatal("the TLS peer is not the backend's certificate")
	}
	echoRoundTrip(t, tc, size)

	var raw net.Conn
	eventually(t, 10*time.Second, 100*time.Millisecond, "TCP listener", func() error {
		conn, err := net.DialTimeout("tcp", ports.sub("127.0.0.1:15433"), 2*time.Second)
		if err != nil {
			return err
		}
		conn.Write([]byte("ping"))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 4)
		if _, err := io.ReadFull(conn, b); err != nil || string(b) != "ping" {
			conn.Close()
			return fmt.Errorf("echo %q: %v", b, err)
		}
		conn.SetReadDeadline(time.Time{})
		raw = conn
		return nil
	})
	defer raw.Close()
	echoRoundTrip(t, raw, size)

	// An SNI under the listener's wildcard that no TLSRoute serves.
	if conn, err := tls.Dial("tcp", ports.sub("127.0.0.1:18444"), &tls.Config{ServerName: "nope.example.com", RootCAs: pool}); err == nil {
		conn.Close()
		t.Fatal("TLS handshake with SNI nope.example.com succeeded, want it refused")
	} else {
		t.Logf("SNI nope.example.com: %v", err)
	}
	for _, kind := range []string{"tlsroute/secure", "tcproute/echo"} {
		k, name, _ := strings.Cut(kind, "/")
		r := c.cli("get", k, name, "-o", "yaml")
		if r.code != 0 || !strings.Contains(r.stdout, "attached to Gateway default/db-gateway") {
			t.Fatalf("weft get %s %s -o yaml:\n%s", k, name, r)
		}
	}
}

// TestGatewayGRPC: the docs' GRPCRoute on the HTTPS listener: 20 gRPC
// calls over TLS (ALPN h2) to grpc.example.com reach the greeter.
func TestGatewayGRPC(t *testing.T) {
	ports := newGatewayPorts(t)
	c := startControl(t)
	gp := freePort(t)
	startWorkload(t, c, wlOpts{service: "greeter", appPort: gp, appProtocol: "grpc",
		cmd: []string{weftBin, "demo-app", "greeter", "--listen", addr(gp)}, waitApp: true})
	secret, pool, _ := gatewayCert(t)
	c.apply(secret + "---\n" + ports.sub(docYAML(t, "gateways.md", docMarked("gateway"))) + "---\n" + ports.sub(docYAML(t, "gateways.md", docMarked("gateway-grpc"))))
	startGateway(t, c, "shop-gateway")
	cc, err := grpc.NewClient(ports.sub("passthrough:///grpc.example.com:18443"),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "grpc.example.com"})),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", ports.sub("127.0.0.1:18443"))
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	gc := demov1.NewGreeterClient(cc)
	hello := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		reply, err := gc.Hello(ctx, &demov1.HelloRequest{Name: "edge"})
		if err != nil {
			return err
		}
		if !strings.HasPrefix(reply.GetServer(), "greeter/") {
			return fmt.Errorf("server %q, want greeter/...", reply.GetServer())
		}
		return nil
	}
	eventually(t, 15*time.Second, 100*time.Millisecond, "gRPC through the gateway", hello)
	for i := range 20 {
		if err := hello(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

// gatewayPorts are free ports for the listeners of the Gateways in
// docs/gateways.md, whose examples use 18443 (HTTPS), 18080 (HTTP), 18444
// (TLS passthrough) and 15433 (TCP): tests apply the examples with these
// ports in their place, never the fixed ones.
type gatewayPorts struct{ https, http, tls, tcp int }

func newGatewayPorts(t *testing.T) gatewayPorts {
	return gatewayPorts{freePort(t), freePort(t), freePort(t), freePort(t)}
}

// sub puts the free ports in place of the docs' ones in s.
func (p gatewayPorts) sub(s string) string {
	return strings.NewReplacer("18443", strconv.Itoa(p.https), "18080", strconv.Itoa(p.http), "18444", strconv.Itoa(p.tls), "15433", strconv.Itoa(p.tcp)).Replace(s)
}
