package xds

import (
	"net/netip"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestScrapeAddress(t *testing.T) {
	loop, remote := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.7")
	tests := []struct {
		name  string
		admin string
		from  netip.Addr
		want  string
	}{
		{"local proxy, loopback admin", "127.0.0.1:15000", loop, "127.0.0.1:15000"},
		{"IPv6 loopback", "[::1]:15000", netip.MustParseAddr("::1"), "[::1]:15000"},
		{"mapped loopback stream", "127.0.0.1:1", netip.MustParseAddr("::ffff:127.0.0.1"), "127.0.0.1:1"},
		{"remote proxy claiming a loopback admin", "127.0.0.1:15000", remote, ""},
		{"local proxy, non-loopback admin", "192.0.2.7:15000", loop, ""},
		{"a name, not an IP", "localhost:15000", loop, ""},
		{"no port", "127.0.0.1", loop, ""},
		{"none", "", loop, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md, _ := structpb.NewStruct(map[string]any{"admin": tt.admin})
			if got := scrapeAddress(&corev3.Node{Metadata: md}, tt.from); got != tt.want {
				t.Errorf("scrapeAddress(%q from %s) = %q, want %q", tt.admin, tt.from, got, tt.want)
			}
		})
	}
}
