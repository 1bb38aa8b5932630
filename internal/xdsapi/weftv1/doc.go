// Package weftv1 holds weft's compact xDS resource types and the CA service,
// generated from the .proto files in this directory (go generate, with
// protoc 3.21, protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.6.2; it runs
// from the module root so the generated files name their source by path).
package weftv1

//go:generate sh -c "cd ../../.. && protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative internal/xdsapi/weftv1/weft.proto internal/xdsapi/weftv1/ca.proto"

// Type URLs of the resources a weft proxy subscribes to over delta ADS.
const (
	ServiceType   = "type.googleapis.com/weft.v1.Service"
	EndpointsType = "type.googleapis.com/weft.v1.Endpoints"
	// GatewayType is subscribed to by name by gateway proxies only.
	GatewayType = "type.googleapis.com/weft.v1.Gateway"
)

// ResourceName is the xDS resource name of a service or its endpoints.
func ResourceName(name, namespace string) string { return name + "." + namespace }
