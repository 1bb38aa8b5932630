package main

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// varWeftTelemetry is weft with all of its telemetry on, as issue #11's
// rerun asks: metrics (on in every weft variant), an access log line per
// request on both proxies (MeshConfig spec.accessLog.mode all, to the
// sidecars' log files) and tracing at 1% (spec.tracing.sampling 0.01)
// exported over OTLP/gRPC to otlpSink (spec.tracing.otlpEndpoint).
const varWeftTelemetry = "weft-telemetry"

// telemetryMeshConfig is the MeshConfig of varWeftTelemetry; %s is the
// OTLP sink's address.
const telemetryMeshConfig = `apiVersion: weft.dev/v1alpha1
kind: MeshConfig
metadata:
  name: default
spec:
  accessLog:
    mode: all
  tracing:
    sampling: 0.01
    otlpEndpoint: http://%s
`

// otlpSink is an OTLP/gRPC trace collector that counts the spans it gets
// and discards them: the cost measured is the proxies' (sampling,
// batching, export), not a collector's.
type otlpSink struct {
	collectortrace.UnimplementedTraceServiceServer
	addr  string
	srv   *grpc.Server
	spans atomic.Int64
}

// startOTLPSink serves an otlpSink on a free loopback port.
func startOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("OTLP sink: %w", err)
	}
	s := &otlpSink{addr: ln.Addr().String(), srv: grpc.NewServer()}
	collectortrace.RegisterTraceServiceServer(s.srv, s)
	go s.srv.Serve(ln)
	return s, nil
}

// Export implements the OTLP trace service.
func (s *otlpSink) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	n := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	s.spans.Add(int64(n))
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (s *otlpSink) stop() { s.srv.Stop() }
