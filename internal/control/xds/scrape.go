package xds

import (
	"net"
	"net/netip"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// scrapeAddress returns the admin address a proxy reported in its node
// metadata ("admin") if the control plane can scrape it safely, else "".
// A proxy's admin listener has no authentication and listens on loopback,
// so only a loopback address reported over a stream that itself comes over
// loopback — a proxy on this machine — qualifies: a remote proxy cannot
// point the control plane's scrapes at a local port it does not own by a
// claim the control plane cannot check.
func scrapeAddress(node *corev3.Node, from netip.Addr) string {
	admin := node.GetMetadata().GetFields()["admin"].GetStringValue()
	host, _, err := net.SplitHostPort(admin)
	if err != nil || !from.Unmap().IsLoopback() {
		return ""
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return ""
	}
	return admin
}
