package xds

import (
	"maps"
	"slices"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/xdsgen"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// publishGateways regenerates every Gateway resource of cfg (a mesh has
// few) and hands the cache those that changed or went away.
func (s *Server) publishGateways(cfg *api.Set) {
	next := xdsgen.Gateways(cfg)
	if s.publishedGateways == nil {
		s.publishedGateways = map[string]*weftv1.Gateway{}
	}
	changed := map[string]types.Resource{}
	var removed []string
	for name, g := range next {
		if old, ok := s.publishedGateways[name]; !ok || !proto.Equal(old, g) {
			changed[name] = g
			s.publishedGateways[name] = g
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.publishedGateways)) {
		if _, ok := next[name]; !ok {
			removed = append(removed, name)
			delete(s.publishedGateways, name)
		}
	}
	if len(changed)+len(removed) == 0 {
		return
	}
	s.revs.next(weftv1.GatewayType) // revision.go
	if err := s.gateways.UpdateResources(changed, removed); err != nil {
		s.opts.Logger.Error("updating gateways", "err", err)
	}
}

// checkGatewaySubscription refuses a subscription to Gateway resources
// other than the one named like the proxy's own service: a gateway's
// resource carries its TLS private keys, so only the proxy that
// registered as that gateway may read it.
func (s *streams) checkGatewaySubscription(st *stream, req *discoveryv3.DeltaDiscoveryRequest) error {
	if req.GetTypeUrl() != weftv1.GatewayType {
		return nil
	}
	s.mu.Lock()
	own := weftv1.ResourceName(st.status.Service, st.status.Namespace)
	s.mu.Unlock()
	if len(req.GetResourceNamesSubscribe()) == 0 && req.GetResponseNonce() == "" {
		// A first request without names is a wildcard subscription.
		s.srv.refuse("gateway_scope", st.caller, status.Errorf(codes.PermissionDenied, "wildcard gateway subscription"))
		return status.Errorf(codes.PermissionDenied, "xds: subscribe to Gateway resources by name: a proxy registered as %s may read only %q", own, own)
	}
	for _, name := range req.GetResourceNamesSubscribe() {
		if name != own {
			s.srv.refuse("gateway_scope", st.caller, status.Errorf(codes.PermissionDenied, "gateway resource %q is not the proxy's own (%q)", name, own))
			return status.Errorf(codes.PermissionDenied, "xds: a proxy registered as %s may read only the Gateway resource %q, not %q", own, own, name)
		}
	}
	return nil
}

// GatewayProgrammed reports whether a proxy registered as service name in
// namespace is connected and acknowledged its Gateway resource without
// rejecting it since.
func (s *Server) GatewayProgrammed(name, namespace string) bool {
	for _, p := range s.Proxies() {
		if p.Service == name && p.Namespace == namespace && p.Acked[weftv1.GatewayType] != "" && p.Nacked[weftv1.GatewayType] == "" {
			return true
		}
	}
	return false
}
