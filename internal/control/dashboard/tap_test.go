package dashboard

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/control/xds"
	"weft.dev/weft/internal/proxy/observe"
	"weft.dev/weft/internal/proxy/tap"
)

// tapMesh is a test mesh whose backend-1 proxy has a real tap hub behind a
// loopback admin listener.
func tapMesh(t *testing.T, opts Options) (*testMesh, *tap.Hub) {
	t.Helper()
	hub := tap.NewHub(nil)
	admin := httptest.NewServer(hub)
	t.Cleanup(admin.Close)
	connected := time.Now().Add(-time.Minute)
	opts.Proxies = func() []xds.ProxyStatus {
		return []xds.ProxyStatus{
			{ID: "backend-1", Service: "backend", Namespace: "default", Identity: "spiffe://cluster.local/ns/default/sa/backend",
				Admin: strings.TrimPrefix(admin.URL, "http://"), Connected: connected, Acked: map[string]string{"type.googleapis.com/weft.v1.Service": "7"}},
			{ID: "remote-1", Service: "remote", Namespace: "default", Connected: connected},
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	opts.Context = ctx
	m := startTestMesh(t, opts)
	t.Cleanup(cancel) // before the server closes: it waits for the streams
	return m, hub
}

// sse reads a tap stream's events (type and data) in the background.
type sse struct {
	resp   *http.Response
	events chan [2]string
}

func openTap(t *testing.T, m *testMesh, cookie, path string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", m.srv.URL+path, nil)
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := m.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	s := &sse{resp: resp, events: make(chan [2]string, 64)}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return s
	}
	go func() {
		defer close(s.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var typ string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				s.events <- [2]string{typ, line[6:]}
			}
		}
	}()
	return s
}

// next returns the next event of type typ within d.
func (s *sse) next(t *testing.T, typ string, d time.Duration) string {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e, ok := <-s.events:
			if !ok {
				t.Fatalf("stream ended before a %q event", typ)
			}
			if e[0] == typ {
				return e[1]
			}
		case <-deadline:
			t.Fatalf("no %q event within %v", typ, d)
		}
	}
}

// TestTapRelay: the relay streams the proxies' tap events, with the
// filters applied by the proxy, only to a signed-in same-origin session;
// refuses bad filters, services it cannot tap, and a session's stream past
// MaxTapStreams; ends an idle stream.
func TestTapRelay(t *testing.T) {
	m, hub := tapMesh(t, Options{TapIdleTimeout: 300 * time.Millisecond})
	cookie := m.session(t)

	for _, tc := range []struct {
		name, path, cookie string
		want               int
	}{
		{"no session", "/dashboard/api/tap/backend", "", http.StatusUnauthorized},
		{"bad filter", "/dashboard/api/tap/backend?status=5zz", cookie, http.StatusBadRequest},
		{"unknown service", "/dashboard/api/tap/nobody", cookie, http.StatusNotFound},
		{"proxy on another machine", "/dashboard/api/tap/remote", cookie, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s := openTap(t, m, tc.cookie, tc.path); s.resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", s.resp.StatusCode, tc.want)
			}
		})
	}

	s := openTap(t, m, cookie, "/dashboard/api/tap/backend?status=5xx")
	if s.resp.StatusCode != http.StatusOK || s.resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tap stream: %s %q", s.resp.Status, s.resp.Header.Get("Content-Type"))
	}
	if got := s.next(t, "open", 2*time.Second); got != `{"proxies":1}` {
		t.Errorf("open event %s", got)
	}
	// The relay subscribes to the proxy soon after; publish until it does.
	deadline := time.Now().Add(3 * time.Second)
	for !hub.Active() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	hub.Publish(&observe.Event{Side: "server", Path: "/ok", Status: 200})
	hub.Publish(&observe.Event{Side: "server", Path: "/fail", Status: 503, Route: "default/backend-api/0"})
	if got := s.next(t, "tap", 2*time.Second); !strings.Contains(got, `"path":"/fail"`) || !strings.Contains(got, `"route":"default/backend-api/0"`) {
		t.Errorf("first tap event %s, want the 503 only", got)
	}

	// A second stream fits, a third does not.
	s2 := openTap(t, m, cookie, "/dashboard/api/tap/backend")
	if s2.resp.StatusCode != http.StatusOK {
		t.Fatalf("second stream: %s", s2.resp.Status)
	}
	if s3 := openTap(t, m, cookie, "/dashboard/api/tap/backend"); s3.resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("third stream of a session: %s, want 429", s3.resp.Status)
	}
	// Idle, both end, and free their slots.
	if got := s.next(t, "end", 3*time.Second); !strings.Contains(got, "idle") {
		t.Errorf("end event %s, want idle", got)
	}
	s2.next(t, "end", 3*time.Second)
	eventuallyOK(t, 2*time.Second, func() bool {
		s4 := openTap(t, m, cookie, "/dashboard/api/tap/backend")
		if s4.resp.StatusCode == http.StatusOK {
			s4.resp.Body.Close()
		}
		return s4.resp.StatusCode == http.StatusOK
	})
}

func eventuallyOK(t *testing.T, d time.Duration, f func() bool) {
	t.Helper()
	for end := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if f() {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("not true within %v", d)
		}
	}
}
