// Package demov1 holds the demo Greeter gRPC service, generated from demo.proto.
package demov1

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative demo.proto
