package api

import (
	"strings"
	"testing"
)

// TestValidateRetryErrors checks that every bad retry or timeout field is
// refused with its path.
func TestValidateRetryErrors(t *testing.T) {
	const hr = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: web}]\n"
	const dp = "apiVersion: weft.dev/v1alpha1\nkind: DestinationPolicy\nmetadata: {name: p}\nspec:\n  targetRef: {name: web}\n"
	tests := []struct{ name, in, want string }{
		{"hr attempts zero", hr + "  rules: [{retry: {attempts: 0}}]\n", `spec.rules[0].retry.attempts: must be between 1 and 10`},
		{"hr code 600", hr + "  rules: [{retry: {codes: [503, 600]}}]\n", `spec.rules[0].retry.codes[1]: must be an HTTP status code between 400 and 599`},
		{"hr code 399", hr + "  rules: [{retry: {codes: [399]}}]\n", `spec.rules[0].retry.codes[0]: must be an HTTP status code between 400 and 599`},
		{"hr backoff syntax", hr + "  rules: [{retry: {backoff: 1.5s}}]\n", `spec.rules[0].retry.backoff: invalid duration "1.5s"`},
		{"hr backoff long", hr + "  rules: [{retry: {backoff: 2m}}]\n", `spec.rules[0].retry.backoff: must be at most 1m`},
		{"hr backend request syntax", hr + "  rules: [{timeouts: {backendRequest: \"10\"}}]\n", `spec.rules[0].timeouts.backendRequest: invalid duration "10"`},
		{"hr backend request over request", hr + "  rules: [{timeouts: {request: 100ms, backendRequest: 200ms}}]\n", `spec.rules[0].timeouts.backendRequest: must not be longer than timeouts.request (100ms)`},
		{"hr request huge", hr + "  rules: [{timeouts: {request: 99999h}}]\n", `spec.rules[0].timeouts.request: must be at most 1000h0m0s`},
		{"dp attempts negative", dp + "  retry: {attempts: -1}\n", `spec.retry.attempts: must be between 0 and 10`},
		{"dp grpc name", dp + "  retry: {retryOn: [UNAVAILABLE]}\n", `spec.retry.retryOn[0]: must be one of`},
		{"dp backoff", dp + "  retry: {backoff: 0s}\n", `spec.retry.backoff: must be between 1ms and 1m0s, got 0s`},
		{"dp per try sub-ms", dp + "  retry: {perTryTimeout: 1500us}\n", `spec.retry.perTryTimeout: must be a whole number of milliseconds`},
		{"dp body", dp + "  retry: {maxBufferedBodyBytes: 16777217}\n", `spec.retry.maxBufferedBodyBytes: must be between 0 and 16777216`},
		{"dp budget percent", dp + "  retry: {budget: {percent: 101}}\n", `spec.retry.budget.percent: must be between 0 and 100`},
		{"dp budget floor", dp + "  retry: {budget: {minRetriesPerSecond: -1}}\n", `spec.retry.budget.minRetriesPerSecond: must be between 0 and 100000`},
		{"dp budget window", dp + "  retry: {budget: {window: 500ms}}\n", `spec.retry.budget.window: must be between 1s and 1m0s, got 500ms`},
		{"dp budget unknown", dp + "  retry: {budget: {ratio: 2}}\n", `spec.retry.budget.ratio: unknown field`},
		{"dp concurrent retries", dp + "  connectionPool: {maxConnections: 1, maxConcurrentRetries: -2}\n", `spec.connectionPool.maxConcurrentRetries: must not be negative`},
		{"mesh retry", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec:\n  defaults: {retry: {enabled: maybe}}\n", `spec.defaults.retry.enabled`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}

// TestRetryFieldsSupported checks that the retry and timeout fields are no
// longer refused as not enforced.
func TestRetryFieldsSupported(t *testing.T) {
	in := `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - timeouts: {request: 1s, backendRequest: 300ms}
    retry: {attempts: 2, codes: [503], backoff: 20ms}
---
apiVersion: weft.dev/v1alpha1
kind: DestinationPolicy
metadata: {name: web}
spec:
  targetRef: {name: web}
  retry:
    attempts: 3
    retryOn: [gateway-error, unavailable]
    budget: {percent: 10, minRetriesPerSecond: 5, window: 5s}
    maxBufferedBodyBytes: 1024
`
	objs, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := CheckSupported(o); err != nil {
			t.Errorf("%s %s: %v", KindOf(o), o.GetName(), err)
		}
	}
}
