package api

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Load-balancing algorithms accepted by MeshConfig and DestinationPolicy.
const (
	LBRoundRobin   = "ROUND_ROBIN"
	LBRandom       = "RANDOM"
	LBLeastRequest = "LEAST_REQUEST"
)

// Mutual-TLS modes of MeshConfig spec.mtls.mode and of the Service
// annotation AnnotationMTLSMode: what an inbound listener accepts. A client
// proxy always uses mutual TLS whatever the mode.
const (
	// MTLSStrict accepts mutual TLS only (the default).
	MTLSStrict = "STRICT"
	// MTLSPermissive accepts mutual TLS and plaintext HTTP, the latter
	// with no caller identity: for migrating clients from outside the
	// mesh.
	MTLSPermissive = "PERMISSIVE"
)

// AnnotationMTLSMode on a Service overrides MeshConfig spec.mtls.mode for
// the inbound listeners of that service's workloads: STRICT or PERMISSIVE.
const AnnotationMTLSMode = "weft.dev/mtls-mode"

// Authorization actions.
const (
	ActionAllow = "ALLOW"
	ActionDeny  = "DENY"
	ActionAudit = "AUDIT"
)

// MeshConfig holds mesh-wide settings. It is cluster-scoped and there is at
// most one, named "default".
//
//	apiVersion: weft.dev/v1alpha1
//	kind: MeshConfig
//	metadata:
//	  name: default
//	spec:
//	  trustDomain: cluster.local
//	  defaults:
//	    loadBalancer: LEAST_REQUEST
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=mc
// +kubebuilder:subresource:status
type MeshConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the mesh-wide configuration.
	Spec MeshConfigSpec `json:"spec"`
	// Status is computed by the control plane when the resource is read;
	// it is never stored.
	Status *PolicyStatus `json:"status,omitempty"`
}

// MeshConfigSpec is the body of a MeshConfig.
type MeshConfigSpec struct {
	// TrustDomain is the SPIFFE trust domain of every workload identity,
	// spiffe://<trustDomain>/ns/<namespace>/sa/<service-account>. A DNS-like
	// name such as "cluster.local" (the default) or "prod.example.com".
	TrustDomain string `json:"trustDomain,omitempty"`
	// MTLS configures mutual TLS between proxies. Default: mode STRICT.
	MTLS *MTLSConfig `json:"mtls,omitempty"`
	// Defaults apply to every service that no DestinationPolicy overrides.
	Defaults *MeshDefaults `json:"defaults,omitempty"`
	// Authorization sets the mesh-wide default of AuthorizationPolicy
	// evaluation.
	Authorization *AuthorizationConfig `json:"authorization,omitempty"`
	// AccessLog sets which requests the proxies log (types_observability.go).
	AccessLog *AccessLogConfig `json:"accessLog,omitempty"`
	// Tracing sets the proxies' trace sampling (types_observability.go).
	Tracing *TracingConfig `json:"tracing,omitempty"`
	// OutboundTrafficPolicy governs non-mesh destinations (types_egress.go).
	OutboundTrafficPolicy *OutboundTrafficPolicy `json:"outboundTrafficPolicy,omitempty"`
}

// MTLSConfig configures mutual TLS between proxies.
type MTLSConfig struct {
	// Mode is STRICT (the default): plaintext to an inbound port is
	// refused; or PERMISSIVE: an inbound port also accepts plaintext HTTP
	// from outside the mesh, served with no caller identity. A Service's
	// weft.dev/mtls-mode annotation overrides it for that service. Between
	// proxies every hop is mutual TLS in either mode.
	// +kubebuilder:validation:Enum=STRICT;PERMISSIVE
	Mode string `json:"mode,omitempty"`
}

// MeshDefaults are mesh-wide defaults for traffic to every service.
type MeshDefaults struct {
	// LoadBalancer is the algorithm that picks an endpoint: P2C_EWMA
	// (the default), ROUND_ROBIN, RANDOM or LEAST_REQUEST.
	// +kubebuilder:validation:Enum=P2C_EWMA;ROUND_ROBIN;RANDOM;LEAST_REQUEST;RING_HASH;MAGLEV
	LoadBalancer string `json:"loadBalancer,omitempty"`
	// Retry switches the default retries of every service (types_retry.go).
	Retry *MeshRetryDefaults `json:"retry,omitempty"`
	// OutlierDetection replaces the default outlier detection of every
	// service without a DestinationPolicy that sets it.
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
}

// DestinationPolicy tunes how clients reach one service: load balancing,
// connection limits, outlier detection and retries.
//
//	apiVersion: weft.dev/v1alpha1
//	kind: DestinationPolicy
//	metadata:
//	  name: payments
//	spec:
//	  targetRef: {kind: Service, name: payments}
//	  loadBalancer: LEAST_REQUEST
//	  outlierDetection: {consecutive5xx: 5, interval: 10s, baseEjectionTime: 30s}
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=dp
// +kubebuilder:subresource:status
type DestinationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the policy.
	Spec DestinationPolicySpec `json:"spec"`
	// Status is computed by the control plane when the policy is read;
	// it is never stored.
	Status *PolicyStatus `json:"status,omitempty"`
}

// PolicyStatus is the status of a policy: Gateway API policy conditions
// (type Accepted, reasons Accepted and TargetNotFound).
type PolicyStatus struct {
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// DestinationPolicySpec is the body of a DestinationPolicy.
type DestinationPolicySpec struct {
	// TargetRef is the Service, in the policy's namespace, that the policy
	// applies to. Required.
	TargetRef PolicyTargetRef `json:"targetRef"`
	// LoadBalancer is the algorithm that picks an endpoint: P2C_EWMA,
	// ROUND_ROBIN, RANDOM, LEAST_REQUEST, RING_HASH or MAGLEV. Empty means
	// the MeshConfig default.
	// +kubebuilder:validation:Enum=P2C_EWMA;ROUND_ROBIN;RANDOM;LEAST_REQUEST;RING_HASH;MAGLEV
	LoadBalancer string `json:"loadBalancer,omitempty"`
	// ConsistentHash is the key of RING_HASH and MAGLEV (types_balancer.go).
	ConsistentHash *ConsistentHash `json:"consistentHash,omitempty"`
	// ConnectionPool limits connections and queued requests per client proxy.
	ConnectionPool *ConnectionPool `json:"connectionPool,omitempty"`
	// OutlierDetection ejects endpoints that keep failing.
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	// Retry retries failed requests.
	Retry *RetryPolicy `json:"retry,omitempty"`
	// AdaptiveConcurrency sheds load before the service's queue grows
	// (types_breaker.go); off unless set.
	AdaptiveConcurrency *AdaptiveConcurrency `json:"adaptiveConcurrency,omitempty"`
}

// PolicyTargetRef names the object a policy applies to.
type PolicyTargetRef struct {
	// Kind of the target. Only "Service" is supported (and the default).
	// +kubebuilder:validation:Enum=Service
	Kind string `json:"kind,omitempty"`
	// Name of the target, in the policy's namespace. Required.
	Name string `json:"name"`
}

// ConnectionPool limits the load one client proxy puts on a service.
type ConnectionPool struct {
	// MaxConnections is the most connections this client proxy opens to
	// all endpoints of the service together; a request that needs one more
	// fails fast with 503 (x-weft-reason: max-connections). 0 means no
	// limit. See docs/traffic/circuit-breaking.md.
	MaxConnections int32 `json:"maxConnections,omitempty"`
	// MaxPendingRequests is the most requests that may wait for an
	// admission slot when MaxConcurrentRequests are in flight; beyond it
	// requests fail fast with 503 (x-weft-reason: max-pending-requests).
	// 0 means none may wait.
	MaxPendingRequests int32 `json:"maxPendingRequests,omitempty"`
	// MaxConcurrentRequests is the most requests in flight from this client
	// proxy to the service; beyond it (and MaxPendingRequests) requests
	// fail fast with 503 (x-weft-reason: max-concurrent-requests). 0 means
	// no limit.
	MaxConcurrentRequests int32 `json:"maxConcurrentRequests,omitempty"`
	// MaxConcurrentRetries caps the retries in flight at once; beyond it a
	// failed attempt is returned as is. 0 means no cap (the retry budget
	// still applies).
	MaxConcurrentRetries int32 `json:"maxConcurrentRetries,omitempty"`
}

// OutlierDetection ejects an endpoint from load balancing after consecutive
// server errors, and returns it after the ejection time.
type OutlierDetection struct {
	// Consecutive5xx is how many 5xx responses (or connection failures) in a
	// row eject an endpoint; unset or 0 is off.
	Consecutive5xx *int32 `json:"consecutive5xx,omitempty"`
	// ConsecutiveGatewayErrors counts 502, 503, 504 and connection
	// failures; unset means 5, 0 is off.
	ConsecutiveGatewayErrors *int32 `json:"consecutiveGatewayErrors,omitempty"`
	// ConsecutiveConnectFailures counts failures to connect; unset means
	// 5, 0 is off.
	ConsecutiveConnectFailures *int32 `json:"consecutiveConnectFailures,omitempty"`
	// Interval: each interval an endpoint spends without being ejected
	// takes one off its ejection count ("10s" by default).
	Interval string `json:"interval,omitempty"`
	// BaseEjectionTime is how long an endpoint stays ejected the first time
	// ("30s" by default); the n-th ejection in a row lasts n times as long.
	BaseEjectionTime string `json:"baseEjectionTime,omitempty"`
	// MaxEjectionTime caps an ejection ("300s" by default).
	MaxEjectionTime string `json:"maxEjectionTime,omitempty"`
	// MaxEjectionPercent caps the share of endpoints ejected at once, 1..100
	// (unset: 50).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxEjectionPercent int32 `json:"maxEjectionPercent,omitempty"`
	// Disabled turns outlier detection off.
	Disabled bool `json:"disabled,omitempty"`
}

// RetryPolicy retries failed requests to the service; every field left out
// keeps the default (docs/traffic/retries.md).
type RetryPolicy struct {
	// Attempts is the number of retries after the first try, 0..10;
	// default 2.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	Attempts *int32 `json:"attempts,omitempty"`
	// PerTryTimeout bounds each try, a duration such as "500ms".
	PerTryTimeout string `json:"perTryTimeout,omitempty"`
	// RetryOn lists what is retried: 5xx, gateway-error (502, 503, 504),
	// reset (connection reset before a response), connect-failure,
	// retriable-4xx (409) and gRPC status names (cancelled, unknown,
	// deadline-exceeded, resource-exhausted, aborted, internal,
	// unavailable). When set it applies to every method; the default
	// retries 5xx only for requests safe to repeat.
	RetryOn []string `json:"retryOn,omitempty"`
	// Backoff is the minimum wait before a retry, doubled for each further
	// retry (up to ten times the backoff) plus up to 50% jitter; default
	// "10ms".
	Backoff string `json:"backoff,omitempty"`
	// MaxBufferedBodyBytes is how much of a request body the proxy keeps
	// to send it again, 0..16777216; default 65536. A longer body streams
	// and is not retried once any of it was sent.
	MaxBufferedBodyBytes *int32 `json:"maxBufferedBodyBytes,omitempty"`
	// Budget caps the share of retries (types_retry.go); default 20% of
	// requests plus 10 a second over 10 s.
	Budget *RetryBudget `json:"budget,omitempty"`
}

// AuthorizationPolicy allows, denies or audits requests to a service by the
// caller's identity and namespace and the request's method, path, port and
// headers. When any ALLOW policy targets a service, requests that match no
// ALLOW rule are denied; DENY policies are checked first.
//
//	apiVersion: weft.dev/v1alpha1
//	kind: AuthorizationPolicy
//	metadata:
//	  name: payments-from-orders
//	spec:
//	  targetRef: {kind: Service, name: payments}
//	  action: ALLOW
//	  rules:
//	  - from: [{identities: ["spiffe://cluster.local/ns/default/sa/orders"]}]
//	    to: [{methods: [POST], paths: ["/charge"]}]
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=authz;ap
// +kubebuilder:subresource:status
type AuthorizationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the policy.
	Spec AuthorizationPolicySpec `json:"spec"`
	// Status is computed by the control plane when the policy is read;
	// it is never stored.
	Status *PolicyStatus `json:"status,omitempty"`
}

// RootNamespace is the mesh's root namespace: an AuthorizationPolicy there
// without targetRef applies to every workload of the mesh (selector still
// narrows it).
const RootNamespace = "weft-system"

// AuthorizationPolicySpec is the body of an AuthorizationPolicy.
type AuthorizationPolicySpec struct {
	// TargetRef is the Service, in the policy's namespace, whose inbound
	// requests the policy governs. Without it the policy governs every
	// workload of its namespace (of the mesh in RootNamespace), narrowed
	// by Selector.
	TargetRef PolicyTargetRef `json:"targetRef,omitzero"`
	// Selector narrows the workloads the policy applies to by their
	// labels (app=<service>, version=<version> and --label ones).
	Selector *WorkloadSelector `json:"selector,omitempty"`
	// Action taken when a request matches a rule: ALLOW (the default),
	// DENY or AUDIT (logged and counted, never enforced).
	// +kubebuilder:validation:Enum=ALLOW;DENY;AUDIT
	Action string `json:"action,omitempty"`
	// Rules match requests; a request matches the policy if it matches any
	// rule. An ALLOW policy without rules allows nothing; a DENY policy
	// without rules denies nothing.
	Rules []AuthorizationRule `json:"rules,omitempty"`
}

// WorkloadSelector selects workloads by label.
type WorkloadSelector struct {
	// MatchLabels must all be carried by a selected workload.
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// AuthorizationRule matches a request when every non-empty part matches:
// one of From, one of To and all of When.
type AuthorizationRule struct {
	// From matches the caller; any entry may match. Empty matches any caller.
	From []RuleFrom `json:"from,omitempty"`
	// To matches the request; any entry may match. Empty matches any request.
	To []RuleTo `json:"to,omitempty"`
	// When lists extra conditions on request headers; all must hold.
	When []RuleCondition `json:"when,omitempty"`
}

// RuleFrom matches the calling workload. Set at least one field; every
// set field must match.
type RuleFrom struct {
	// Identities are caller SPIFFE IDs such as
	// "spiffe://cluster.local/ns/default/sa/orders". A trailing or leading
	// "*" matches any suffix or prefix; "*" alone any authenticated caller.
	Identities []string `json:"identities,omitempty"`
	// NotIdentities excludes callers, with the same patterns.
	NotIdentities []string `json:"notIdentities,omitempty"`
	// Namespaces are caller namespaces; "*" matches any.
	Namespaces []string `json:"namespaces,omitempty"`
	// NotNamespaces excludes caller namespaces.
	NotNamespaces []string `json:"notNamespaces,omitempty"`
	// IPBlocks are source addresses or CIDRs of the calling proxy.
	IPBlocks []string `json:"ipBlocks,omitempty"`
	// NotIPBlocks excludes source addresses or CIDRs.
	NotIPBlocks []string `json:"notIpBlocks,omitempty"`
	// RequestPrincipals are "<iss>/<sub>" of a JWT verified by a
	// RequestAuthentication ("*" any verified token).
	RequestPrincipals []string `json:"requestPrincipals,omitempty"`
	// NotRequestPrincipals excludes request principals.
	NotRequestPrincipals []string `json:"notRequestPrincipals,omitempty"`
}

// RuleTo matches the request. Set at least one field; every set field must
// match.
type RuleTo struct {
	// Methods are HTTP methods such as GET or POST (gRPC calls are POST).
	Methods []string `json:"methods,omitempty"`
	// NotMethods excludes methods.
	NotMethods []string `json:"notMethods,omitempty"`
	// Paths are normalised request paths (docs/security/authorization-policy.md):
	// exact ("/healthz"), prefix ("/api/*"), suffix ("*.json") or "*".
	Paths []string `json:"paths,omitempty"`
	// NotPaths excludes paths, with the same patterns.
	NotPaths []string `json:"notPaths,omitempty"`
	// Ports are the service ports the request arrives on, 1..65535.
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	Ports []int32 `json:"ports,omitempty"`
	// Hosts are request hosts (case-insensitive, without port), with the
	// same patterns as paths.
	Hosts []string `json:"hosts,omitempty"`
	// NotHosts excludes hosts.
	NotHosts []string `json:"notHosts,omitempty"`
}

// RuleCondition requires a request header (Header) or another attribute
// (Key) to have one of Values and none of NotValues.
type RuleCondition struct {
	// Header is the request header name, e.g. "x-tenant". Its repeated
	// fields are joined with "," (and forwarded so).
	Header string `json:"header,omitempty"`
	// Key is, instead of Header, one of "request.headers[<name>]",
	// "request.auth.claims[<name>]", "request.auth.principal",
	// "source.ip", "source.namespace", "source.principal".
	Key string `json:"key,omitempty"`
	// Values are accepted values; a trailing or leading "*" matches any
	// suffix or prefix, "*" alone requires only that it is present.
	Values []string `json:"values,omitempty"`
	// NotValues are refused values.
	NotValues []string `json:"notValues,omitempty"`
}

// AuthorizationConfig is the mesh-wide authorization setting.
type AuthorizationConfig struct {
	// DefaultAction is ALLOW (the default: a workload no ALLOW policy
	// selects accepts every caller DENY policies let through) or DENY (a
	// request no ALLOW policy allows is denied everywhere).
	// +kubebuilder:validation:Enum=ALLOW;DENY
	DefaultAction string `json:"defaultAction,omitempty"`
}

// DeepCopyObject implements runtime.Object.
func (m *MeshConfig) DeepCopyObject() runtime.Object { return jsonCopy(m) }

// DeepCopyObject implements runtime.Object.
func (p *DestinationPolicy) DeepCopyObject() runtime.Object { return jsonCopy(p) }

// DeepCopyObject implements runtime.Object.
func (p *AuthorizationPolicy) DeepCopyObject() runtime.Object { return jsonCopy(p) }

// jsonCopy deep-copies plain data types through JSON; the weft types hold
// only JSON-representable fields, so it cannot fail.
func jsonCopy[T any](in *T) *T {
	if in == nil {
		return nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic("api: deep copy: " + err.Error())
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic("api: deep copy: " + err.Error())
	}
	return out
}

var (
	_ Object = (*MeshConfig)(nil)
	_ Object = (*DestinationPolicy)(nil)
	_ Object = (*AuthorizationPolicy)(nil)
)
