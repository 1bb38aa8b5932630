package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// source is a Source whose Gateway the test sets.
type source struct {
	mu      sync.Mutex
	g       *config.Gateway
	changed chan struct{}
}

func (s *source) Gateway() (*config.Gateway, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.g, s.changed
}

func (s *source) set(g *config.Gateway) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.g = g
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}

// forwarder records what the gateway hands over.
type forwarder struct {
	mu      sync.Mutex
	streams []string
}

func (f *forwarder) ServeGateway(w http.ResponseWriter, r *http.Request, svc *config.Service) {
	w.Header().Set("X-Routes", svc.Routes[0].Name)
	w.WriteHeader(http.StatusOK)
}

func (f *forwarder) ServeGatewayStream(_ context.Context, c net.Conn, key string) {
	f.mu.Lock()
	f.streams = append(f.streams, key)
	f.mu.Unlock()
	c.Close()
}

func freePort(t *testing.T) uint32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint32(ln.Addr().(*net.TCPAddr).Port)
}

func build(t *testing.T, g *weftv1.Gateway) *config.Gateway {
	t.Helper()
	cg, err := config.BuildGateway(g)
	if err != nil {
		t.Fatal(err)
	}
	return cg
}

func routes(name string) *weftv1.Service {
	return &weftv1.Service{Name: "gw", Namespace: "edge", Routes: []*weftv1.Route{{Name: name, Matches: []*weftv1.RouteMatch{{}}, Backends: []*weftv1.Backend{{Service: "app", Namespace: "shop", Weight: 1}}}}}
}

// serve runs Serve on src until the test ends and counts refusals.
func serve(t *testing.T, src *source, fw *forwarder) *sync.Map {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var rejected sync.Map
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(ctx, Options{Source: src, Forwarder: fw, Address: "127.0.0.1", Rejected: func(r string) {
			n, _ := rejected.LoadOrStore(r, new(int))
			*n.(*int)++
		}})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return &rejected
}

// rawExchange sends req on a new connection to port and returns the
// status line and the x-weft-reason header of the answer.
func rawExchange(t *testing.T, port uint32, req string) (string, string) {
	t.Helper()
	var c net.Conn
	var err error
	for range 100 {
		if c, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port))); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, req)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %.60q: %v", req, err)
	}
	resp.Body.Close()
	return resp.Status, resp.Header.Get("X-Weft-Reason") + resp.Header.Get("X-Routes")
}

// TestHTTPListener: a request is routed by Host to its host's routes; an
// unknown host is 404 no-matching-host, an Upgrade is forwarded like any
// request, CONNECT 501, an oversized head
// 431, each counted; a listener removed from the Gateway stops listening.
func TestHTTPListener(t *testing.T) {
	port := freePort(t)
	src, fw := &source{}, &forwarder{}
	src.set(build(t, &weftv1.Gateway{Name: "gw", Namespace: "edge", Listeners: []*weftv1.GatewayListener{{
		Name: "web", Port: port, Protocol: "HTTP", Hostname: "*.example.com",
		Hosts: []*weftv1.GatewayHost{{Hostname: "a.example.com", Routes: routes("a")}, {Hostname: "*.example.com", Routes: routes("wild")}},
	}}}))
	rejected := serve(t, src, fw)
	for _, tt := range []struct{ name, req, status, header string }{
		{"exact host", "GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n", "200 OK", "a"},
		{"wildcard host", "GET / HTTP/1.1\r\nHost: b.example.com:80\r\n\r\n", "200 OK", "wild"},
		{"unknown host", "GET / HTTP/1.1\r\nHost: other.test\r\n\r\n", "404 Not Found", "no-matching-host"},
		{"upgrade forwarded", "GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", "200 OK", "a"},
		{"connect", "CONNECT a.example.com:443 HTTP/1.1\r\nHost: a.example.com:443\r\n\r\n", "501 Not Implemented", "upgrade-not-supported"},
		{"oversized", "GET / HTTP/1.1\r\nHost: a.example.com\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", "431 Request Header Fields Too Large", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, header := rawExchange(t, port, tt.req)
			if status != tt.status || header != tt.header {
				t.Fatalf("got %s %q, want %s %q", status, header, tt.status, tt.header)
			}
		})
	}
	for _, r := range []string{"no_matching_host", "upgrade_not_supported"} {
		if n, ok := rejected.Load(r); !ok || *n.(*int) != 1 {
			t.Errorf("refusals %s not counted once", r)
		}
	}
	src.set(&config.Gateway{Name: "gw", Namespace: "edge"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the port still listens after its listener was removed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTLSPassthrough: a connection is routed by its ClientHello's SNI
// (exact, then wildcard); an SNI no route serves is closed unforwarded.
func TestTLSPassthrough(t *testing.T) {
	port := freePort(t)
	src, fw := &source{}, &forwarder{}
	stream := func(host, svc string) *weftv1.GatewayStream {
		return &weftv1.GatewayStream{Name: "edge/" + svc, Hostname: host, Backends: []*weftv1.Backend{{Service: svc, Namespace: "shop", Weight: 1}}}
	}
	src.set(build(t, &weftv1.Gateway{Name: "gw", Namespace: "edge", Listeners: []*weftv1.GatewayListener{{
		Name: "tls", Port: port, Protocol: "TLS", Hostname: "*.example.com",
		Streams: []*weftv1.GatewayStream{stream("*.example.com", "wild"), stream("db.example.com", "db")},
	}}}))
	serve(t, src, fw)
	for _, sni := range []string{"db.example.com", "x.example.com", "evil.test"} {
		var c net.Conn
		var err error
		for range 100 {
			if c, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port))); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		err = tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true}).Handshake()
		c.Close()
		if err == nil {
			t.Fatalf("SNI %s: handshake succeeded against a closing forwarder", sni)
		}
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if got := fmt.Sprint(fw.streams); got != "[db.shop wild.shop]" {
		t.Fatalf("forwarded to %s, want [db.shop wild.shop] (evil.test refused)", got)
	}
}

// TestPick: the listener whose hostname covers a host best.
func TestPick(t *testing.T) {
	ls := []*config.GatewayListener{{Name: "any"}, {Name: "wild", Hostname: "*.example.com"}, {Name: "deep", Hostname: "*.a.example.com"}, {Name: "exact", Hostname: "b.example.com"}}
	for _, tt := range []struct{ host, want string }{
		{"b.example.com", "exact"}, {"B.example.com:443", "exact"}, {"c.example.com", "wild"}, {"x.a.example.com", "deep"}, {"other.test", "any"},
	} {
		if got := pick(ls, tt.host); got == nil || got.Name != tt.want {
			t.Errorf("pick(%q) = %v, want %s", tt.host, got, tt.want)
		}
	}
	if got := pick(ls[1:], "other.test"); got != nil {
		t.Errorf("pick without an any-host listener = %s, want nil", got.Name)
	}
}
