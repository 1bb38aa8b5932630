package upstream

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestUpgradeType(t *testing.T) {
	for _, tc := range []struct {
		conn, upgrade, want string
	}{
		{"Upgrade", "websocket", "websocket"},
		{"keep-alive, upgrade", "TLS/1.2", "TLS/1.2"},
		{"Upgrade, HTTP2-Settings", "h2c", ""}, // served as HTTP/1.1
		{"keep-alive", "websocket", ""},        // Upgrade not named by Connection
		{"", "websocket", ""},
		{"Upgrade", "", ""},
	} {
		h := http.Header{}
		if tc.conn != "" {
			h.Set("Connection", tc.conn)
		}
		if tc.upgrade != "" {
			h.Set("Upgrade", tc.upgrade)
		}
		if got := upgradeType(h); got != tc.want {
			t.Errorf("Connection %q Upgrade %q: upgradeType = %q, want %q", tc.conn, tc.upgrade, got, tc.want)
		}
	}
}

// TestForwarderUpgrade relays a 101 and the bytes after it both ways, and
// refuses a 101 to a protocol the client did not ask for.
func TestForwarderUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name       string
		switchTo   string
		wantStatus int
	}{
		{"echo", "echo", http.StatusSwitchingProtocols},
		{"other protocol", "other", http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Upgrade") != "echo" || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
					http.Error(w, "no upgrade asked", http.StatusUpgradeRequired)
					return
				}
				c, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					return
				}
				defer c.Close()
				brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + tc.switchTo + "\r\n\r\n")
				brw.Flush()
				io.Copy(c, brw)
			}))
			defer backend.Close()
			bu, _ := url.Parse(backend.URL)
			status := make(chan int, 1)
			f := &Forwarder{
				Transport: &http.Transport{},
				Rewrite:   func(out *http.Request) { out.URL.Scheme, out.URL.Host = "http", bu.Host },
				ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
					http.Error(w, err.Error(), http.StatusBadGateway)
				},
			}
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sw := NewStatusWriter(w)
				f.ServeHTTP(observer{sw}, r) // as the tap wraps it
				status <- sw.Status
				sw.Release()
			}))
			defer proxy.Close()
			c, err := net.Dial("tcp", strings.TrimPrefix(proxy.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantStatus != http.StatusSwitchingProtocols {
				return
			}
			io.WriteString(c, " and late")
			want := "early and late"
			got := make([]byte, len(want))
			if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
				t.Fatalf("echo %q, %v; want %q", got, err, want)
			}
			c.Close() // ends the relay and the handler
			if s := <-status; s != http.StatusSwitchingProtocols {
				t.Errorf("StatusWriter recorded %d, want 101", s)
			}
		})
	}
}

// observer wraps a ResponseWriter as observers do (tap's captureWriter).
type observer struct{ http.ResponseWriter }

func (w observer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
