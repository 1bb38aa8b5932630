package api

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// KindRequestAuthentication is the kind name of RequestAuthentication.
const KindRequestAuthentication = "RequestAuthentication"

// Defaults and limits of RequestAuthentication.
const (
	// DefaultJWTHeader is the header a token is read from when a rule sets
	// no fromHeaders.
	DefaultJWTHeader = "Authorization"
	// DefaultJWTPrefix is the prefix stripped from DefaultJWTHeader.
	DefaultJWTPrefix = "Bearer "
	// MaxJWTRules bounds the rules of one RequestAuthentication.
	MaxJWTRules = 16
	// MaxInlineJWKSBytes bounds an inline JWKS document.
	MaxInlineJWKSBytes = 64 << 10
	// MaxClockSkew bounds spec.jwtRules[].clockSkew.
	MaxClockSkew = "5m"
)

// RequestAuthentication declares which JSON Web Tokens the server-side
// proxy of a service accepts. A request carrying a token in one of a rule's
// headers must present a token that is valid for one rule (signature from
// the rule's JWKS, issuer, audience, exp/nbf within the clock skew), or it
// gets 401. A request without any token is NOT refused by
// RequestAuthentication alone, as in Istio: require a principal with an
// AuthorizationPolicy (from.requestPrincipals) to refuse it.
//
//	apiVersion: weft.dev/v1alpha1
//	kind: RequestAuthentication
//	metadata:
//	  name: orders-jwt
//	spec:
//	  targetRef: {kind: Service, name: orders}
//	  jwtRules:
//	  - issuer: https://issuer.example.com
//	    audiences: [orders]
//	    jwksUri: https://issuer.example.com/.well-known/jwks.json
//	    outputClaimToHeaders: [{header: x-user, claim: sub}]
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=ra
// +kubebuilder:subresource:status
type RequestAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the body.
	Spec RequestAuthenticationSpec `json:"spec"`
	// Status is computed by the control plane when the resource is read;
	// it is never stored.
	Status *PolicyStatus `json:"status,omitempty"`
}

// RequestAuthenticationSpec is the body of a RequestAuthentication.
type RequestAuthenticationSpec struct {
	// TargetRef is the Service, in the resource's namespace, whose inbound
	// requests are authenticated. Required.
	TargetRef PolicyTargetRef `json:"targetRef"`
	// JWTRules are the accepted token issuers, 1..16. A token is accepted
	// when it is valid for the rule whose issuer matches its "iss" claim.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	JWTRules []JWTRule `json:"jwtRules"`
}

// JWTRule describes one accepted token issuer (Istio's JWTRule field names).
type JWTRule struct {
	// Issuer must equal the token's "iss" claim. Required.
	Issuer string `json:"issuer"`
	// Audiences: when set, the token's "aud" claim must contain one of
	// them. Empty accepts any audience.
	Audiences []string `json:"audiences,omitempty"`
	// JWKS is an inline JSON Web Key Set document. Set exactly one of jwks
	// and jwksUri.
	JWKS string `json:"jwks,omitempty"`
	// JWKSURI is where the proxy fetches the key set: an https:// URL
	// (verified TLS, cached and refreshed) or a file:// path on the proxy's
	// host for air-gapped use.
	JWKSURI string `json:"jwksUri,omitempty"`
	// FromHeaders lists where the token is read from; default
	// "Authorization" with prefix "Bearer ".
	FromHeaders []JWTHeader `json:"fromHeaders,omitempty"`
	// ForwardOriginalToken keeps the token header on the request to the
	// application. Default false: the proxy strips it.
	ForwardOriginalToken bool `json:"forwardOriginalToken,omitempty"`
	// OutputClaimToHeaders copies verified claims into request headers
	// (any header of that name sent by the caller is removed first).
	OutputClaimToHeaders []ClaimToHeader `json:"outputClaimToHeaders,omitempty"`
	// ClockSkew is the tolerance applied to exp and nbf, a duration up to
	// 5m; default 60s.
	ClockSkew string `json:"clockSkew,omitempty"`
}

// JWTHeader names a request header a token is read from.
type JWTHeader struct {
	// Name of the header, e.g. "Authorization" or "x-jwt". Required.
	Name string `json:"name"`
	// Prefix stripped before the token, e.g. "Bearer ".
	Prefix string `json:"prefix,omitempty"`
}

// ClaimToHeader copies one verified claim into a request header.
type ClaimToHeader struct {
	// Header is the request header set to the claim's value.
	Header string `json:"header"`
	// Claim is the top-level claim name, e.g. "sub" or "email". String,
	// number and boolean claims are copied; a list of strings is joined
	// with ",".
	Claim string `json:"claim"`
}

// DeepCopyObject implements runtime.Object.
func (r *RequestAuthentication) DeepCopyObject() runtime.Object { return jsonCopy(r) }

var _ Object = (*RequestAuthentication)(nil)
