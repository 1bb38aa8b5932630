package identity_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/inbound"
)

// testRoot is a throwaway root CA.
type testRoot struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newRoot(t *testing.T, name string) *testRoot {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testRoot{cert: cert, key: key}
}

// leafSpec describes a leaf certificate; the zero value (plus URIs) is a
// good SVID.
type leafSpec struct {
	uris      []string
	dns       []string
	notBefore time.Time
	notAfter  time.Time
	eku       []x509.ExtKeyUsage
}

func (r *testRoot) leaf(t *testing.T, s leafSpec) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              s.dns,
	}
	if !s.notBefore.IsZero() {
		tmpl.NotBefore = s.notBefore
	}
	if !s.notAfter.IsZero() {
		tmpl.NotAfter = s.notAfter
	}
	if s.eku != nil {
		tmpl.ExtKeyUsage = s.eku
	}
	for _, u := range s.uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.cert, &key.PublicKey, r.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (r *testRoot) source(t *testing.T, td spiffeid.TrustDomain, id string) *identity.Source {
	t.Helper()
	c := r.leaf(t, leafSpec{uris: []string{id}})
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	src := &identity.Source{}
	src.Set(&x509svid.SVID{ID: spiffeid.RequireFromString(id), Certificates: []*x509.Certificate{leaf}, PrivateKey: c.PrivateKey.(crypto.Signer)},
		x509bundle.FromX509Authorities(td, []*x509.Certificate{r.cert}))
	return src
}

// recordingListener keeps every byte the app reads.
type recordingListener struct {
	net.Listener
	mu  sync.Mutex
	got bytes.Buffer
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, l: l}, nil
}

func (l *recordingListener) seen() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got.String()
}

type recordingConn struct {
	net.Conn
	l *recordingListener
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.mu.Lock()
	c.l.got.Write(p[:n])
	c.l.mu.Unlock()
	return n, err
}

// matrixCase is one certificate of the matrix.
type matrixCase struct {
	name string
	cert func(t *testing.T) tls.Certificate
}

// certMatrix is the certificate matrix of issue #10; role is the usage the
// certificate would need (clientAuth to an inbound listener, serverAuth
// from an upstream).
func certMatrix(good, other *testRoot, role x509.ExtKeyUsage, id string) []matrixCase {
	wrongRole := x509.ExtKeyUsageServerAuth
	if role == x509.ExtKeyUsageServerAuth {
		wrongRole = x509.ExtKeyUsageClientAuth
	}
	return []matrixCase{
		{"wrong trust domain", func(t *testing.T) tls.Certificate {
			return good.leaf(t, leafSpec{uris: []string{"spiffe://evil.local/ns/default/sa/web"}})
		}},
		{"two URI SANs", func(t *testing.T) tls.Certificate {
			return good.leaf(t, leafSpec{uris: []string{id, "spiffe://cluster.local/ns/default/sa/admin"}})
		}},
		{"DNS-only SAN", func(t *testing.T) tls.Certificate {
			return good.leaf(t, leafSpec{dns: []string{"web.default.svc"}})
		}},
		{"expired", func(t *testing.T) tls.Certificate {
			return good.leaf(t, leafSpec{uris: []string{id}, notBefore: time.Now().Add(-2 * time.Hour), notAfter: time.Now().Add(-time.Minute)})
		}},
		{"not yet valid", func(t *testing.T) tls.Certificate {
			return good.leaf(t, leafSpec{uris: []string{id}, notBefore: time.Now().Add(time.Hour), notAfter: time.Now().Add(2 * time.Hour)})
		}},
		{"missing " + usageName(role) + " EKU", func(t *testing.T) tls.Certificate {
			return good.leaf(t, leafSpec{uris: []string{id}, eku: []x509.ExtKeyUsage{wrongRole}})
		}},
		{"signed by another root", func(t *testing.T) tls.Certificate {
			return other.leaf(t, leafSpec{uris: []string{id}})
		}},
	}
}

func usageName(u x509.ExtKeyUsage) string {
	if u == x509.ExtKeyUsageServerAuth {
		return "server"
	}
	return "client"
}

// TestInboundCertificateMatrix: a client presenting any certificate of the
// matrix to a real inbound listener fails the handshake, and the app
// behind it receives none of its bytes; a good certificate gets through.
func TestInboundCertificateMatrix(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("cluster.local")
	good, other := newRoot(t, "mesh"), newRoot(t, "other")

	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appLn := &recordingListener{Listener: raw}
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go app.Serve(appLn)
	defer app.Close()

	l, err := inbound.New(inbound.Options{Identity: good.source(t, td, "spiffe://cluster.local/ns/default/sa/orders"),
		ServiceName: "orders", Namespace: "default", AppPort: raw.Addr().(*net.TCPAddr).Port})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- l.Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()

	// request sends GET path with cert and returns the status line or the
	// error that ended the exchange.
	request := func(cert tls.Certificate, path string) (string, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{
			Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, NextProtos: []string{identity.ALPNHTTP1},
		})
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: orders\r\n\r\n", path); err != nil {
			return "", err
		}
		return bufio.NewReader(c).ReadString('\n')
	}

	id := "spiffe://cluster.local/ns/default/sa/web"
	okCert := good.leaf(t, leafSpec{uris: []string{id}})
	if line, err := request(okCert, "/ok"); err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("good certificate: %q, %v", line, err)
	}
	for _, tc := range certMatrix(good, other, x509.ExtKeyUsageClientAuth, id) {
		t.Run(tc.name, func(t *testing.T) {
			path := "/bad-" + strings.ReplaceAll(tc.name, " ", "-")
			line, err := request(tc.cert(t), path)
			if err == nil {
				t.Fatalf("handshake accepted: got %q", line)
			}
			// A good request after the refused one: the app has read
			// everything the proxy forwarded before it.
			if line, err := request(okCert, "/ok"); err != nil || !strings.Contains(line, " 200 ") {
				t.Fatalf("good certificate after %s: %q, %v", tc.name, line, err)
			}
			if strings.Contains(appLn.seen(), path) {
				t.Errorf("the app received the request sent with the refused certificate")
			}
		})
	}
}

// TestUpstreamCertificateMatrix: a fake upstream presenting any certificate
// of the matrix, or a good certificate of another service, fails the
// outbound side's handshake before a request byte is written.
func TestUpstreamCertificateMatrix(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("cluster.local")
	good, other := newRoot(t, "mesh"), newRoot(t, "other")
	client := good.source(t, td, "spiffe://cluster.local/ns/default/sa/web")
	id := "spiffe://cluster.local/ns/default/sa/orders"
	expected := spiffeid.RequireFromString(id)

	cases := append(certMatrix(good, other, x509.ExtKeyUsageServerAuth, id), matrixCase{
		"valid but for another service", func(t *testing.T) tls.Certificate {
			return good.leaf(t, leafSpec{uris: []string{"spiffe://cluster.local/ns/default/sa/payments"}})
		}})
	// serve runs a fake upstream presenting cert and reports how many
	// application bytes it read from the first connection.
	serve := func(t *testing.T, cert tls.Certificate) (string, <-chan int) {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert, NextProtos: []string{identity.ALPNHTTP1}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		got := make(chan int, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- 0
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			n, _ := io.Copy(io.Discard, c)
			got <- int(n)
		}()
		return ln.Addr().String(), got
	}
	t.Run("good certificate", func(t *testing.T) {
		addr, got := serve(t, good.leaf(t, leafSpec{uris: []string{id}}))
		c, err := tls.Dial("tcp", addr, client.ClientTLS(expected, identity.ALPNHTTP1))
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
		c.Close()
		if n := <-got; n == 0 {
			t.Errorf("upstream read nothing after a good handshake")
		}
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, got := serve(t, tc.cert(t))
			c, err := tls.Dial("tcp", addr, client.ClientTLS(expected, identity.ALPNHTTP1))
			if err == nil {
				io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
				c.Close()
				t.Fatalf("handshake with the upstream accepted")
			}
			if n := <-got; n != 0 {
				t.Errorf("upstream read %d bytes", n)
			}
		})
	}
}
