package api

// GatewayV1Alpha2 is the apiVersion of TCPRoute
// (sigs.k8s.io/gateway-api/apis/v1alpha2), attached to a Service (GAMMA):
// its weighted backendRefs split the opaque TCP connections to the
// service, per connection (see docs/tcp.md).
const GatewayV1Alpha2 = "gateway.networking.k8s.io/v1alpha2"
