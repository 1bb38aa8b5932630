// Package weftv1 holds weft's compact xDS resource types and the CA service,
// generated from the .proto files in this directory (see generate.go).
package weftv1

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative weft.proto ca.proto

// Type URLs of the resources a weft proxy subscribes to over delta ADS.
const (
	ServiceType   = "type.googleapis.com/weft.v1.Service"
	EndpointsType = "type.googleapis.com/weft.v1.Endpoints"
)

// ResourceName is the xDS resource name of a service or its endpoints.
func ResourceName(name, namespace string) string { return name + "." + namespace }
