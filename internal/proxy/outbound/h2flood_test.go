package outbound

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"weft.dev/weft/internal/proxy/identity"
)

// TestRapidResetOnListeners: on every HTTP/2 listener (outbound h2c, h2
// inside a CONNECT tunnel, inbound h2 over mTLS) a rapid-reset flood ends
// with GOAWAY(ENHANCE_YOUR_CALM), counted in weft_proxy_h2_abuse_total.
func TestRapidResetOnListeners(t *testing.T) {
	m := newMesh(t)
	m.addService(svc("orders"))
	inAddr := m.addWorkload(t, "orders", startApp(t, echoApp("orders")))
	m.commit(t)
	m.startOutbound(t, nil)

	for _, tc := range []struct {
		listener string
		dial     func(t *testing.T) net.Conn
	}{
		{"outbound", func(t *testing.T) net.Conn {
			c, err := net.Dial("tcp", m.proxyURL.Host)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"outbound-tunnel", func(t *testing.T) net.Conn {
			c, err := dialConnect(context.Background(), m.proxyURL.Host, "orders:80")
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"inbound", func(t *testing.T) net.Conn {
			src := m.ca.Source(t, "default", "web")
			c, err := tls.Dial("tcp", inAddr, src.ClientTLS(m.ca.ID("default", "orders"), identity.ALPNHTTP2))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
	} {
		t.Run(tc.listener, func(t *testing.T) {
			c := tc.dial(t)
			defer c.Close()
			bw := bufio.NewWriterSize(c, 64<<10)
			fr := http2.NewFramer(bw, nil)
			var hb bytes.Buffer
			enc := hpack.NewEncoder(&hb)
			for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "orders"}, {":path", "/"}} {
				enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			var wg sync.WaitGroup
			wg.Go(func() {
				io.WriteString(bw, http2.ClientPreface)
				fr.WriteSettings()
				for i := uint32(0); i < 20000; i++ {
					if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2*i + 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}) != nil ||
						fr.WriteRSTStream(2*i+1, http2.ErrCodeCancel) != nil {
						return
					}
				}
				bw.Flush()
			})
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			rfr := http2.NewFramer(io.Discard, c)
			var goAway *http2.GoAwayFrame
			var err error
			for goAway == nil && err == nil {
				var f http2.Frame
				if f, err = rfr.ReadFrame(); err == nil {
					goAway, _ = f.(*http2.GoAwayFrame)
				}
			}
			c.Close()
			wg.Wait()
			if goAway == nil || goAway.ErrCode != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("GOAWAY %v (read error %v), want GOAWAY ENHANCE_YOUR_CALM", goAway, err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for abuseCount(t, m, tc.listener, "rapid_reset") != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("weft_proxy_h2_abuse_total{listener=%q,reason=\"rapid_reset\"} = %v, want 1", tc.listener, abuseCount(t, m, tc.listener, "rapid_reset"))
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// abuseCount is weft_proxy_h2_abuse_total{listener,reason}.
func abuseCount(t *testing.T, m *testMesh, listener, reason string) float64 {
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "weft_proxy_h2_abuse_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["listener"] == listener && labels["reason"] == reason {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}
