package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// KindFaultInjection is the kind name of FaultInjection.
const KindFaultInjection = "FaultInjection"

// Limits of FaultInjection.
const (
	// MaxFaultDelay bounds spec.delay.fixedDelay.
	MaxFaultDelay = "1h"
	// MaxFaultHeaderMatches bounds spec.match.headers.
	MaxFaultHeaderMatches = 16
)

// FaultInjection delays or aborts a share of the requests of the HTTPRoute
// and GRPCRoute rules that reference it with an ExtensionRef filter
// (group weft.dev, kind FaultInjection, a name in the route's namespace).
// The client-side proxy injects the fault before the request leaves it, so
// the destination never sees an aborted request.
//
//	apiVersion: weft.dev/v1alpha1
//	kind: FaultInjection
//	metadata:
//	  name: flaky-backend
//	spec:
//	  delay: {fixedDelay: 200ms, percentage: 10}
//	  abort: {httpStatus: 503, percentage: 20}
//	  match:
//	    headers: [{name: x-chaos, value: "on"}]
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=fi
// +kubebuilder:subresource:status
type FaultInjection struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the body.
	Spec FaultInjectionSpec `json:"spec"`
	// Status is computed by the control plane when the resource is read;
	// it is never stored.
	Status *PolicyStatus `json:"status,omitempty"`
}

// FaultInjectionSpec is the body of a FaultInjection. Set delay, abort or
// both; a request first draws its delay, then its abort, independently.
type FaultInjectionSpec struct {
	// Delay holds a share of requests back before forwarding them.
	Delay *FaultDelay `json:"delay,omitempty"`
	// Abort answers a share of requests with an error instead of
	// forwarding them.
	Abort *FaultAbort `json:"abort,omitempty"`
	// Match narrows the requests faults apply to; without it every request
	// of the rule may get a fault.
	Match *FaultMatch `json:"match,omitempty"`
}

// FaultDelay delays requests by a fixed time.
type FaultDelay struct {
	// FixedDelay is the delay, a duration such as "200ms" (greater than 0,
	// at most 1h). The delay ends early when the client goes away or the
	// route's timeouts.request expires (then 504).
	FixedDelay string `json:"fixedDelay"`
	// Percentage of requests delayed, 0 to 100, fractions allowed (0.5 is
	// one request in 200). Omitted means 100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percentage *float64 `json:"percentage,omitempty"`
}

// FaultAbort answers requests with an error. Set exactly one of httpStatus
// and grpcStatus.
type FaultAbort struct {
	// HTTPStatus is the HTTP status answered, 400 to 599. A gRPC call gets
	// the gRPC status a proxy maps it to (503 is UNAVAILABLE).
	// +kubebuilder:validation:Minimum=400
	// +kubebuilder:validation:Maximum=599
	HTTPStatus int32 `json:"httpStatus,omitempty"`
	// GRPCStatus is the gRPC status answered to gRPC calls, by its
	// canonical name ("UNAVAILABLE", "RESOURCE_EXHAUSTED", ...; not "OK"):
	// HTTP 200 with grpc-status and grpc-message and no body. A plain HTTP
	// request gets the HTTP status the gRPC status corresponds to (e.g.
	// UNAVAILABLE: 503).
	GRPCStatus string `json:"grpcStatus,omitempty"`
	// Percentage of requests aborted, 0 to 100, fractions allowed. Omitted
	// means 100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percentage *float64 `json:"percentage,omitempty"`
}

// FaultMatch selects the requests faults apply to.
type FaultMatch struct {
	// Headers must all be present with exactly these values (header names
	// are case-insensitive), at most 16.
	// +kubebuilder:validation:MaxItems=16
	Headers []FaultHeaderMatch `json:"headers,omitempty"`
}

// FaultHeaderMatch requires a request header to have a value.
type FaultHeaderMatch struct {
	// Name of the header. Required.
	Name string `json:"name"`
	// Value the header must have, exactly.
	Value string `json:"value"`
}

// GRPCCodes are the gRPC status codes by canonical name, as FaultAbort
// grpcStatus spells them.
var GRPCCodes = map[string]uint32{
	"CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
	"ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
	"ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
	"DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}

// DeepCopyObject implements runtime.Object.
func (f *FaultInjection) DeepCopyObject() runtime.Object { return jsonCopy(f) }

var _ Object = (*FaultInjection)(nil)
