package trace

import (
	"encoding/binary"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// ratioSampler samples the share ratio() of trace IDs, read for every new
// trace so that a MeshConfig change applies at once (the decision is the
// SDK's TraceIDRatioBased one: the low 63 bits of the ID against the
// ratio).
type ratioSampler struct {
	ratio func() float64
}

// ShouldSample implements sdktrace.Sampler.
func (s ratioSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	ts := oteltrace.SpanContextFromContext(p.ParentContext).TraceState()
	r := s.ratio()
	bound := uint64(r * (1 << 63))
	if r >= 1 || binary.BigEndian.Uint64(p.TraceID[8:16])>>1 < bound {
		return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Tracestate: ts}
	}
	return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: ts}
}

// Description implements sdktrace.Sampler.
func (s ratioSampler) Description() string { return "weft.ratio(mesh or environment)" }

// sampling returns the ratio to sample new traces at: the mesh's when
// mesh reports one, else def.
func sampling(mesh func() (float64, bool), def float64) func() float64 {
	return func() float64 {
		if mesh != nil {
			if r, ok := mesh(); ok {
				return r
			}
		}
		return def
	}
}
