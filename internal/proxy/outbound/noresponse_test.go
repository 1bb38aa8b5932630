package outbound

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"weft.dev/weft/internal/proxy/identity"
)

// TestNoResponseTriesAnotherEndpoint: an endpoint whose proxy takes a
// request and closes the connection without a byte of response (a peer
// ending its drain at that moment) costs no safe request — the outbound
// sends it to another endpoint — while a request that is not safe to repeat
// is answered 502 and reaches the closing endpoint exactly once.
func TestNoResponseTriesAnotherEndpoint(t *testing.T) {
	m := newMesh(t)
	m.addService(svc("api"))
	// The closing peer: mTLS as api, reads one request, closes.
	ln := listen(t)
	var seen atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	tlsCfg := m.ca.Source(t, "default", "api").ServerTLS(identity.ALPNHTTP1)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				tc := tls.Server(c, tlsCfg)
				defer tc.Close()
				req, err := http.ReadRequest(bufio.NewReader(tc))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				seen.Add(1)
			})
		}
	})
	m.addEndpoint("api", ln.Addr().String(), m.ca.ID("default", "api").String())
	m.addWorkload(t, "api", startApp(t, echoApp("api")))
	m.commit(t)
	m.startOutbound(t, nil)

	// Round robin over both endpoints: half of the GETs go first to the
	// closing one.
	for i := range 6 {
		if code, body, _ := m.get(t, "http://api/"); code != 200 {
			t.Fatalf("GET %d: %d %q, want 200 via the live endpoint", i, code, body)
		}
	}
	if n := seen.Load(); n == 0 {
		t.Fatalf("no GET reached the closing endpoint; the test proves nothing")
	}
	// POSTs are not repeated: each reaches one endpoint once.
	var bad int
	for i := range 6 {
		before := seen.Load()
		resp, err := m.client.Post("http://api/", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := seen.Load() - before; got > 0 {
			bad++
			if resp.StatusCode != http.StatusBadGateway || got != 1 {
				t.Errorf("POST %d to the closing endpoint: status %d after %d attempts there, want 502 after 1", i, resp.StatusCode, got)
			}
		} else if resp.StatusCode != 200 {
			t.Errorf("POST %d via the live endpoint: status %d", i, resp.StatusCode)
		}
	}
	if bad == 0 {
		t.Errorf("no POST went to the closing endpoint; the test proves nothing")
	}
}
