package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/demo/demov1"
)

// obsApp is an app served by the test itself: /ok answers 200 with a
// 100-byte body, /fail 503, /slow 200 after obsSlow, /echo a JSON body
// with secrets (a token, a cookie); it records the headers of every
// request.
type obsApp struct {
	port int
	mu   sync.Mutex
	hdrs map[string]http.Header // path -> headers of the last request
}

const obsSlow = 300 * time.Millisecond

func startObsApp(t *testing.T) *obsApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &obsApp{port: ln.Addr().(*net.TCPAddr).Port, hdrs: map[string]http.Header{}}
	body := strings.Repeat("x", 99) + "\n"
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.hdrs[r.URL.Path] = r.Header.Clone()
		a.mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/echo"):
			// Echoes the request body's length, with a secret of its own.
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Set-Cookie", "session=resp-cookie-secret")
			fmt.Fprintf(w, `{"got":%d,"user":"ann","access_token":"resp-token-secret"}`, len(b))
			return
		case strings.HasPrefix(r.URL.Path, "/fail"):
			http.Error(w, "failing on purpose", http.StatusServiceUnavailable)
			return
		case strings.HasPrefix(r.URL.Path, "/slow"):
			time.Sleep(obsSlow)
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(body))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

func (a *obsApp) requestID(path string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hdrs[path].Get("X-Request-Id")
}

// header returns header k of the last request for path.
func (a *obsApp) header(path, k string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hdrs[path].Get(k)
}

// send sends method path through w to service host and checks the status.
func (w *workload) send(method, u, body string, want int) error {
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		return err
	}
	if body == "" {
		req.Body = nil
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d", method, u, resp.StatusCode, want)
	}
	return nil
}

// delta returns after minus before of the samples summed by sum.
func delta(before, after []sample, name string, want map[string]string) float64 {
	return sum(after, name, want) - sum(before, name, want)
}

// noRetries applies a DestinationPolicy that turns retries to service svc
// off, for tests that count every request once (by default a GET answered
// 503 is retried, docs/traffic/retries.md), and waits until client has it.
func noRetries(t *testing.T, c *control, client *workload, svc string) {
	c.apply(`apiVersion: weft.dev/v1alpha1
kind: DestinationPolicy
metadata: {name: ` + svc + `-no-retries}
spec:
  targetRef: {kind: Service, name: ` + svc + `}
  retry: {attempts: 0}
`)
	waitDump(t, client, `"attempts": 0`, false)
}

// TestMetricsExact drives known traffic through two real sidecars and a
// route: N POSTs answered 200, K POSTs answered 503, D requests delayed by
// 300 ms, and checks both proxies' histograms count exactly that, by
// status, with the mesh labels of both sides (the route too: the server
// side learns it from the caller's proxy), in the right latency buckets
// and with the body sizes sent; an x-weft-route the app forges changes no
// label and never reaches the app.
func TestMetricsExact(t *testing.T) {
	c := startControl(t)
	app := startObsApp(t)
	backend := startWorkload(t, c, wlOpts{service: "backend", version: "v7", appPort: app.port, cmd: []string{"sleep", "3600"}})
	client := startClient(t, c, "client")
	c.apply(docYAML(t, "observability/metrics.md", docMarked("metrics-route")))
	const route = "default/backend-metrics/0"
	eventually(t, 15*time.Second, 50*time.Millisecond, "client reaches backend through the route", func() error {
		if err := client.send("GET", "http://backend/warm", "", 200); err != nil {
			return err
		}
		ms, err := backend.metrics()
		if err != nil {
			return err
		}
		if sum(ms, "http_server_request_duration_seconds_count", map[string]string{"route": route}) == 0 {
			return fmt.Errorf("no server-side request with route %q yet;%s", route, describe(ms, "http_server_request_duration_seconds_count"))
		}
		return nil
	})
	cBefore, err := client.metrics()
	if err != nil {
		t.Fatal(err)
	}
	sBefore, err := backend.metrics()
	if err != nil {
		t.Fatal(err)
	}
	const N, K, D = 20, 5, 4
	reqBody := strings.Repeat("b", 50)
	for i := range N {
		if err := client.send("POST", "http://backend/ok/"+strconv.Itoa(i), reqBody, 200); err != nil {
			t.Fatal(err)
		}
	}
	// The failures are POSTs: the default retry policy retries only
	// idempotent requests, so each reaches the server once.
	for i := range K {
		if err := client.send("POST", "http://backend/fail/"+strconv.Itoa(i), "", 503); err != nil {
			t.Fatal(err)
		}
	}
	for i := range D {
		if err := client.send("GET", "http://backend/slow/"+strconv.Itoa(i), "", 200); err != nil {
			t.Fatal(err)
		}
	}
	cAfter, err := client.metrics()
	if err != nil {
		t.Fatal(err)
	}
	sAfter, err := backend.metrics()
	if err != nil {
		t.Fatal(err)
	}

	// The app cannot forge the server-side route label: the caller's proxy
	// replaces its x-weft-route, and the app behind the inbound never sees one.
	forged, err := http.NewRequest("GET", "http://backend/forged", nil)
	if err != nil {
		t.Fatal(err)
	}
	forged.Header.Set("X-Weft-Route", "default/made-up/0")
	resp, err := client.client.Do(forged)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("forged request: status %d", resp.StatusCode)
	}
	if got := app.header("/forged", "X-Weft-Route"); got != "" {
		t.Errorf("the app saw x-weft-route %q", got)
	}
	sForged, err := backend.metrics()
	if err != nil {
		t.Fatal(err)
	}
	for lbl, want := range map[string]float64{route: 1, "default/made-up/0": 0, "_unknown": 0} {
		if got := delta(sAfter, sForged, "http_server_request_duration_seconds_count", map[string]string{"route": lbl}); got != want {
			t.Errorf("forged x-weft-route: server requests with route %q = %v, want %v", lbl, got, want)
		}
	}

	// Both sides carry the same mesh labels.
	edge := map[string]string{
		"source_service": "client.default", "source_namespace": "default", "source_identity": client.spiffeID(),
		"destination_service": "backend.default", "destination_namespace": "default", "destination_version": "v7", "tls": "true",
		"route": route,
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, side := range []struct {
		name          string
		prefix        string
		labels        map[string]string
		before, after []sample
	}{
		{"client", "http_client", edge, cBefore, cAfter},
		{"server", "http_server", edge, sBefore, sAfter},
	} {
		t.Run(side.name, func(t *testing.T) {
			dur := side.prefix + "_request_duration_seconds"
			checks := []struct {
				what   string
				name   string
				labels map[string]string
				want   float64
			}{
				{"200 POST", dur + "_count", with(side.labels, "http_response_status_code", "200", "http_request_method", "POST"), N},
				{"200 GET (slow)", dur + "_count", with(side.labels, "http_response_status_code", "200", "http_request_method", "GET"), D},
				{"503", dur + "_count", with(side.labels, "http_response_status_code", "503"), K},
				{"fast ones under 250 ms", dur + "_bucket", with(side.labels, "le", "0.25"), N + K},
				{"all under +Inf", dur + "_bucket", with(side.labels, "le", "+Inf"), N + K + D},
				{"request bodies of the POSTs", side.prefix + "_request_body_size_bytes_sum", with(side.labels, "http_request_method", "POST"), N * 50},
				{"response bodies of the 200s", side.prefix + "_response_body_size_bytes_sum", with(side.labels, "http_response_status_code", "200"), (N + D) * 100},
				{"no gRPC code on HTTP", dur + "_count", with(side.labels, "rpc_grpc_status_code", ""), N + K + D},
			}
			for _, ck := range checks {
				if got := delta(side.before, side.after, ck.name, ck.labels); got != ck.want {
					t.Errorf("%s: %s%v = %v, want %v;%s", ck.what, ck.name, ck.labels, got, ck.want, describe(side.after, ck.name))
				}
			}
			slowSum := delta(side.before, side.after, dur+"_sum", with(side.labels, "http_request_method", "GET", "http_response_status_code", "200"))
			if slowSum < D*obsSlow.Seconds() {
				t.Errorf("sum of the slow requests' durations %.3fs, want >= %.3fs", slowSum, D*obsSlow.Seconds())
			}
			for _, s := range side.after {
				if _, ok := s.labels["path"]; ok {
					t.Fatalf("a series is labelled by path: %s%v", s.name, s.labels)
				}
			}
		})
	}

	t.Run("health", func(t *testing.T) {
		for name, samples := range map[string][]sample{"client": cAfter, "backend": sAfter} {
			if got := sum(samples, "weft_proxy_xds_connected", nil); got != 1 {
				t.Errorf("%s: weft_proxy_xds_connected = %v, want 1", name, got)
			}
		}
		if n := sum(sAfter, "weft_proxy_config_info", nil); n != 1 {
			t.Errorf("weft_proxy_config_info = %v, want one series of 1;%s", n, describe(sAfter, "weft_proxy_config_info"))
		}
		exp := sum(sAfter, "weft_proxy_certificate_expiry_timestamp_seconds", nil)
		if left := time.Until(time.Unix(int64(exp), 0)); left < time.Hour || left > 400*24*time.Hour {
			t.Errorf("certificate expires in %v (gauge %v), want a plausible lifetime", left, exp)
		}
	})
}

// TestMetricsGRPCStatus is the regression test for a gRPC error counted as
// a success: M calls answered OK and U calls of a method the greeter does
// not implement (HTTP 200, grpc-status 12) are told apart on both sides by
// rpc_grpc_status_code.
func TestMetricsGRPCStatus(t *testing.T) {
	c := startControl(t)
	gp := freePort(t)
	greeter := startWorkload(t, c, wlOpts{service: "greeter", appPort: gp,
		cmd: []string{weftBin, "demo-app", "greeter", "--listen", addr(gp)}, waitApp: true})
	client := startClient(t, c, "client")
	cc, err := grpc.NewClient("passthrough:///greeter:80",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(connectDialer(addr(client.outbound))))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	gc := demov1.NewGreeterClient(cc)
	hello := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := gc.Hello(ctx, &demov1.HelloRequest{Name: "mesh"})
		return err
	}
	eventually(t, 15*time.Second, 100*time.Millisecond, "Hello", hello)
	scrape := func() ([]sample, []sample) {
		t.Helper()
		cs, err := client.metrics()
		if err != nil {
			t.Fatal(err)
		}
		ss, err := greeter.metrics()
		if err != nil {
			t.Fatal(err)
		}
		return cs, ss
	}
	cBefore, sBefore := scrape()
	const M, U = 3, 2
	for range M {
		if err := hello(); err != nil {
			t.Fatal(err)
		}
	}
	for range U {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := cc.Invoke(ctx, "/weft.demo.v1.Greeter/NoSuchMethod", &demov1.HelloRequest{}, &demov1.HelloReply{})
		cancel()
		if status.Code(err) != codes.Unimplemented {
			t.Fatalf("unknown method: %v, want Unimplemented", err)
		}
	}
	cAfter, sAfter := scrape()
	for _, side := range []struct {
		name          string
		before, after []sample
	}{
		{"http_client_request_duration_seconds_count", cBefore, cAfter},
		{"http_server_request_duration_seconds_count", sBefore, sAfter},
	} {
		base := map[string]string{"destination_service": "greeter.default", "source_service": "client.default", "http_response_status_code": "200"}
		for code, want := range map[string]float64{"0": M, "12": U} {
			l := map[string]string{"rpc_grpc_status_code": code}
			for k, v := range base {
				l[k] = v
			}
			if got := delta(side.before, side.after, side.name, l); got != want {
				t.Errorf("%s{rpc_grpc_status_code=%q} = %v, want %v;%s", side.name, code, got, want, describe(side.after, side.name))
			}
		}
	}
}

// TestMetricsTCP sends M bytes over an opaque TCP stream (a CONNECT tunnel
// whose first bytes are not HTTP, to a --app-protocol tcp echo app) and
// checks both proxies count one connection opened and closed and the
// bytes each way.
func TestMetricsTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	c := startControl(t)
	echo := startWorkload(t, c, wlOpts{service: "echo", appPort: ln.Addr().(*net.TCPAddr).Port, appProtocol: "tcp", cmd: []string{"sleep", "3600"}})
	client := startClient(t, c, "client")
	msg := []byte("\x01\x02opaque bytes, not HTTP\n")
	stream := func() error {
		conn, err := net.DialTimeout("tcp", addr(client.outbound), 2*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "CONNECT echo:80 HTTP/1.1\r\nHost: echo:80\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("CONNECT: %s", resp.Status)
		}
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil {
			return err
		}
		if string(got) != string(msg) {
			return fmt.Errorf("echo %q, want %q", got, msg)
		}
		return nil
	}
	eventually(t, 15*time.Second, 100*time.Millisecond, "tunnel to echo", stream)
	wantOne := func(w *workload, listener string) []sample {
		t.Helper()
		var ms []sample
		eventually(t, 5*time.Second, 50*time.Millisecond, listener+" TCP metrics", func() error {
			var err error
			if ms, err = w.metrics(); err != nil {
				return err
			}
			l := map[string]string{"listener": listener, "destination_service": "echo.default"}
			if o, c := sum(ms, "weft_tcp_connections_opened_total", l), sum(ms, "weft_tcp_connections_total", l); o < 1 || c != o {
				return fmt.Errorf("opened %v, closed %v", o, c)
			}
			return nil
		})
		return ms
	}
	before := map[string][]sample{"outbound": wantOne(client, "outbound"), "inbound": wantOne(echo, "inbound")}
	if err := stream(); err != nil {
		t.Fatal(err)
	}
	for listener, w := range map[string]*workload{"outbound": client, "inbound": echo} {
		l := map[string]string{"listener": listener, "destination_service": "echo.default"}
		eventually(t, 5*time.Second, 50*time.Millisecond, listener+" counts one more stream", func() error {
			after, err := w.metrics()
			if err != nil {
				return err
			}
			for name, want := range map[string]float64{"weft_tcp_connections_opened_total": 1, "weft_tcp_connections_total": 1} {
				if got := delta(before[listener], after, name, l); got != want {
					return fmt.Errorf("%s%v grew by %v, want %v", name, l, got, want)
				}
			}
			for _, dir := range []string{"upstream", "downstream"} {
				dl := map[string]string{"listener": listener, "destination_service": "echo.default", "direction": dir}
				if got := delta(before[listener], after, "weft_tcp_bytes_total", dl); got != float64(len(msg)) {
					return fmt.Errorf("%s bytes grew by %v, want %d", dir, got, len(msg))
				}
			}
			return nil
		})
	}
}
