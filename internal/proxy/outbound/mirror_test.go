package outbound

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/demo/demov1"
	"weft.dev/weft/internal/proxy/mirror"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// seen is one request a mirror app received.
type seen struct{ method, host, path, body string }

// recordingApp sends what it receives to got, after waiting for release to
// be closed (nil: at once).
func recordingApp(got chan<- seen, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if release != nil {
			<-release
		}
		got <- seen{r.Method, r.Host, r.URL.Path, string(b)}
		w.WriteHeader(http.StatusTeapot) // discarded by the mirroring proxy
	})
}

// mirrorMesh is a mesh where requests to "api" are mirrored to "shadow",
// whose app is h.
func mirrorMesh(t *testing.T, h http.Handler) *testMesh {
	m := newMesh(t)
	m.addService(svc("api", &weftv1.Route{Name: "default/api/0", Backends: []*weftv1.Backend{backend("api", 1)},
		Mirrors: []*weftv1.RequestMirror{{Service: "shadow", Namespace: "default", PerMillion: weftv1.PerMillion}}}))
	m.addService(svc("shadow"))
	m.addWorkload(t, "api", startApp(t, echoApp("api")))
	m.addWorkload(t, "shadow", startApp(t, h))
	m.commit(t)
	m.startOutbound(t, nil)
	return m
}

func (m *testMesh) mirrorCount(t *testing.T, outcome string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "weft_proxy_mirror_requests_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestMirrorCopies: the mirror gets a copy of each request, with the
// "-shadow" Host and the body when it is small; the real request gets the
// real answer; a body over mirror.MaxBody is not mirrored and counts as
// dropped.
func TestMirrorCopies(t *testing.T) {
	got := make(chan seen, 16)
	m := mirrorMesh(t, recordingApp(got, nil))
	post := func(body string) (int, string) {
		resp, err := m.client.Post("http://api/p", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	wait := func() seen {
		t.Helper()
		select {
		case s := <-got:
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("no mirror copy within 5s")
		}
		return seen{}
	}
	if code, body, _ := m.get(t, "http://api/a?x=1"); code != 200 || !strings.Contains(body, "app=api") {
		t.Fatalf("GET = %d %q, want the real answer", code, body)
	}
	if s := wait(); s != (seen{"GET", "api-shadow", "/a", ""}) {
		t.Errorf("mirror got %+v", s)
	}
	if code, body := post("hello"); code != 200 || !strings.Contains(body, "app=api") {
		t.Fatalf("POST = %d %q", code, body)
	}
	if s := wait(); s != (seen{"POST", "api-shadow", "/p", "hello"}) {
		t.Errorf("mirror got %+v", s)
	}
	if code, _ := post(strings.Repeat("x", mirror.MaxBody+1)); code != 200 {
		t.Fatalf("large POST = %d", code)
	}
	if d := m.mirrorCount(t, "dropped"); d != 1 {
		t.Errorf("dropped = %v, want 1 (the large body)", d)
	}
	select {
	case s := <-got:
		t.Errorf("the large body was mirrored: %+v", s)
	case <-time.After(100 * time.Millisecond):
	}
	if s := m.mirrorCount(t, "sent"); s != 2 {
		t.Errorf("sent = %v, want 2", s)
	}
}

// TestMirrorBound: with the mirror hanging, the real requests are answered
// at once, mirror.DefaultMaxInFlight copies stay in flight and the rest
// are dropped and counted.
func TestMirrorBound(t *testing.T) {
	got := make(chan seen, 2*mirror.DefaultMaxInFlight)
	release := make(chan struct{})
	m := mirrorMesh(t, recordingApp(got, release))
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	const n = mirror.DefaultMaxInFlight + 10
	for i := range n {
		start := time.Now()
		if code, _, _ := m.get(t, fmt.Sprintf("http://api/%d", i)); code != 200 {
			t.Fatalf("request %d = %d", i, code)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("request %d took %s with the mirror hanging", i, d)
		}
	}
	if d := m.mirrorCount(t, "dropped"); d != n-mirror.DefaultMaxInFlight {
		t.Errorf("dropped = %v, want %d", d, n-mirror.DefaultMaxInFlight)
	}
	unblock()
	for range mirror.DefaultMaxInFlight {
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("released copies did not arrive")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.mirrorCount(t, "sent") < mirror.DefaultMaxInFlight && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := m.mirrorCount(t, "sent"); s != mirror.DefaultMaxInFlight {
		t.Errorf("sent = %v, want %d", s, mirror.DefaultMaxInFlight)
	}
}

// recordingGreeter sends the names it is greeted with to names.
type recordingGreeter struct {
	demov1.UnimplementedGreeterServer
	names chan<- string
}

func (g recordingGreeter) Hello(_ context.Context, req *demov1.HelloRequest) (*demov1.HelloReply, error) {
	g.names <- req.GetName()
	return nil, status.Error(codes.Internal, "the mirror fails; nobody must notice")
}

// TestGRPCMirror: a unary gRPC call to a mirrored route is answered by the
// real server while the mirror, a gRPC server too, receives the same call
// (its body once the real request has sent it) and fails unnoticed.
func TestGRPCMirror(t *testing.T) {
	m := newMesh(t)
	names := make(chan string, 4)
	for _, s := range []struct {
		name string
		srv  demov1.GreeterServer
	}{{"greeter", greeter{}}, {"shadow", recordingGreeter{names: names}}} {
		ln := listen(t)
		gs := grpc.NewServer()
		demov1.RegisterGreeterServer(gs, s.srv)
		go gs.Serve(ln)
		t.Cleanup(gs.Stop)
		m.addWorkload(t, s.name, ln.Addr().(*net.TCPAddr).Port)
	}
	m.addService(svc("greeter", &weftv1.Route{Name: "default/greeter/0", Backends: []*weftv1.Backend{backend("greeter", 1)},
		Mirrors: []*weftv1.RequestMirror{{Service: "shadow", Namespace: "default", PerMillion: weftv1.PerMillion}}}))
	m.addService(svc("shadow"))
	m.commit(t)
	m.startOutbound(t, grpcListener(t)) // HTTPS_PROXY points here (TestMain)
	cc, err := grpc.NewClient("passthrough:///greeter:80", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := demov1.NewGreeterClient(cc).Hello(ctx, &demov1.HelloRequest{Name: "mirrored"})
	if err != nil || !strings.HasPrefix(resp.GetMessage(), "hello mirrored") {
		t.Fatalf("Hello = %v, %v; want the real server's answer", resp, err)
	}
	select {
	case n := <-names:
		if n != "mirrored" {
			t.Errorf("mirror greeted %q, want %q", n, "mirrored")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the mirror got no copy within 5s")
	}
}

// TestMirrorToUnknownService: a mirror that is not a mesh service fails at
// once (counted), and the real request is served.
func TestMirrorToUnknownService(t *testing.T) {
	m := newMesh(t)
	m.addService(svc("api", &weftv1.Route{Name: "default/api/0", Backends: []*weftv1.Backend{backend("api", 1)},
		Mirrors: []*weftv1.RequestMirror{{Service: "nosuch", Namespace: "default", PerMillion: weftv1.PerMillion}}}))
	m.addWorkload(t, "api", startApp(t, echoApp("api")))
	m.commit(t)
	m.startOutbound(t, nil)
	if code, body, _ := m.get(t, "http://api/"); code != 200 || !strings.Contains(body, "app=api") {
		t.Fatalf("GET = %d %q", code, body)
	}
	if f := m.mirrorCount(t, "failed"); f != 1 {
		t.Errorf("failed = %v, want 1", f)
	}
}
