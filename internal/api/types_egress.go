package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// KindExternalService is the kind name of ExternalService.
const KindExternalService = "ExternalService"

// Outbound traffic policy modes of MeshConfig spec.outboundTrafficPolicy.mode.
const (
	// OutboundAllowAny passes traffic for any non-mesh host through (the
	// default).
	OutboundAllowAny = "ALLOW_ANY"
	// OutboundRegistryOnly refuses traffic for a host that is neither a
	// mesh service nor declared by an ExternalService.
	OutboundRegistryOnly = "REGISTRY_ONLY"
)

// External port protocols and TLS modes of ExternalService.
const (
	ExternalHTTP  = "HTTP"
	ExternalHTTPS = "HTTPS"
	ExternalTLS   = "TLS"
	ExternalTCP   = "TCP"
	// TLSOriginate makes the proxy speak TLS to the external host for
	// the plain HTTP the app sends.
	TLSOriginate = "ORIGINATE"
)

// Limits of ExternalService.
const (
	MaxExternalHosts = 64
	MaxExternalPorts = 16
	// MaxCACertificatesBytes bounds spec.tls.caCertificates.
	MaxCACertificatesBytes = 64 << 10
)

// OutboundTrafficPolicy is MeshConfig spec.outboundTrafficPolicy: what a
// sidecar does with traffic for a host outside the mesh.
type OutboundTrafficPolicy struct {
	// Mode is ALLOW_ANY (the default) or REGISTRY_ONLY.
	// +kubebuilder:validation:Enum=ALLOW_ANY;REGISTRY_ONLY
	Mode string `json:"mode,omitempty"`
	// EgressGateway is the egress gateway of every ExternalService that
	// names none in its spec.egressGateway.
	EgressGateway *EgressGatewayRef `json:"egressGateway,omitempty"`
}

// EgressGatewayRef names the mesh service of an egress gateway.
type EgressGatewayRef struct {
	// Name is the service's name (required).
	Name string `json:"name"`
	// Namespace is the service's namespace (default "default").
	Namespace string `json:"namespace,omitempty"`
}

// ExternalService declares hosts outside the mesh that workloads may call.
// With MeshConfig spec.outboundTrafficPolicy.mode REGISTRY_ONLY they are
// the only non-mesh destinations the sidecars let through; in either mode
// calls to them get per-host metrics and access logs (destination_service
// is the ExternalService's name) and, with tls.mode ORIGINATE, the proxy
// speaks TLS to the host for the plain HTTP the app sends.
//
//	apiVersion: weft.dev/v1alpha1
//	kind: ExternalService
//	metadata:
//	  name: payments-api
//	spec:
//	  hosts: [api.payments.example.com, "*.cdn.example.com"]
//	  ports: [{number: 443, protocol: HTTPS}]
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=es;se
// +kubebuilder:subresource:status
type ExternalService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the body.
	Spec ExternalServiceSpec `json:"spec"`
	// Status is computed by the control plane when the resource is read;
	// it is never stored.
	Status *PolicyStatus `json:"status,omitempty"`
}

// ExternalServiceSpec is the body of an ExternalService.
type ExternalServiceSpec struct {
	// Hosts are DNS names, exact ("api.example.com") or a wildcard of one
	// or more leading labels ("*.example.com", which does not match
	// "example.com" itself). At least one; "*" alone is refused.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Hosts []string `json:"hosts"`
	// Ports the hosts are reached on; empty allows any port.
	// +kubebuilder:validation:MaxItems=16
	Ports []ExternalPort `json:"ports,omitempty"`
	// TLS originates TLS from the proxy; see ExternalTLSConfig.
	TLS *ExternalTLSConfig `json:"tls,omitempty"`
	// EgressGateway names a mesh service in the ExternalService's
	// namespace whose workloads run `weft run --egress`: the callers'
	// sidecars send plain HTTP requests for the hosts to it over mutual
	// TLS, and it makes the call to the outside (originating TLS when tls
	// asks for it). CONNECT tunnels to the hosts are then refused.
	EgressGateway string `json:"egressGateway,omitempty"`
}

// ExternalPort is one port of an ExternalService.
type ExternalPort struct {
	// Number is the port, 1-65535.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Number int32 `json:"number"`
	// Protocol is HTTP, HTTPS, TLS or TCP (default TCP: anything).
	// +kubebuilder:validation:Enum=HTTP;HTTPS;TLS;TCP
	Protocol string `json:"protocol,omitempty"`
}

// ExternalTLSConfig is TLS origination: the app sends plain HTTP
// (http://api.example.com/...) and its sidecar opens a TLS connection to
// the host, verifying the server certificate against caCertificates (or the
// system roots), for SNI sni (or the host). A handshake or verification
// failure is a 502 with x-weft-reason: tls-origination: never a plaintext
// fallback.
type ExternalTLSConfig struct {
	// Mode is ORIGINATE.
	// +kubebuilder:validation:Enum=ORIGINATE
	Mode string `json:"mode"`
	// CACertificates are PEM certificates the server's chain must lead to;
	// empty uses the system roots.
	CACertificates string `json:"caCertificates,omitempty"`
	// SNI is the server name sent and verified; default the request's host.
	SNI string `json:"sni,omitempty"`
	// InsecureSkipVerify must be false: weft never originates unverified
	// TLS (the field exists so that asking for it is a clear error).
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// DeepCopyObject implements runtime.Object.
func (x *ExternalService) DeepCopyObject() runtime.Object { return jsonCopy(x) }

var _ Object = (*ExternalService)(nil)
