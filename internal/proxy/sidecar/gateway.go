package sidecar

import (
	"context"
	"log/slog"

	"weft.dev/weft/internal/proxy/gateway"
	"weft.dev/weft/internal/proxy/outbound"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/proxy/xdsclient"
	"weft.dev/weft/internal/xdsapi/weftv1"
	"weft.dev/weft/internal/xdsmeta"
)

// GatewayOptions make a proxy an ingress gateway (`weft gateway`): it
// serves the listeners of the Gateway named like its service, in its
// namespace, and forwards what they accept through its outbound pipeline.
type GatewayOptions struct {
	// Address is the host the Gateway's listeners bind ("" is every
	// interface).
	Address string
}

// gatewayResource is the name of the Gateway resource the proxy
// subscribes to, "" when it is no gateway.
func gatewayResource(opts Options, w xdsmeta.Workload) string {
	if opts.Gateway == nil {
		return ""
	}
	return weftv1.ResourceName(w.Service, w.Namespace)
}

// serveGateway serves the Gateway's listeners until ctx ends; it returns
// at once for a proxy that is no gateway.
func serveGateway(ctx context.Context, opts Options, xc *xdsclient.Client, out *outbound.Listener, m *telemetry.Metrics, log *slog.Logger) error {
	if opts.Gateway == nil {
		return nil
	}
	return gateway.Serve(ctx, gateway.Options{
		Logger:        log.With("component", "gateway"),
		Source:        xc,
		Forwarder:     out,
		Address:       opts.Gateway.Address,
		Limits:        opts.HTTP.head(),
		HeaderTimeout: opts.HTTP.HeaderTimeout,
		Rejected:      func(reason string) { m.HTTPRejected("gateway", reason) },
	})
}
