package xdsgen_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// randomFault returns a FaultInjection for TestAcceptedCompiles, valid or
// not, at the edges of what the API accepts.
func randomFault(r *rand.Rand, ns string) string {
	var parts []string
	if r.IntN(2) == 0 {
		parts = append(parts, fmt.Sprintf("delay: {fixedDelay: %s, percentage: %s}", pick(r, "1ms", "1h", "200ms", "0s", "61m", "1500us"), pick(r, "0", "100", "0.0001", "12.5", "100.5", "-1")))
	}
	if r.IntN(2) == 0 {
		parts = append(parts, fmt.Sprintf("abort: {%s, percentage: %s}", pick(r, "httpStatus: 400", "httpStatus: 599", "grpcStatus: UNAUTHENTICATED", "httpStatus: 200", "grpcStatus: OK", "httpStatus: 503, grpcStatus: UNAVAILABLE"), pick(r, "20", "100", "0")))
	}
	if r.IntN(3) == 0 {
		parts = append(parts, fmt.Sprintf("match: {headers: [{name: %q, value: v}]}", pick(r, "x-a", "", "bad name")))
	}
	return fmt.Sprintf("apiVersion: weft.dev/v1alpha1\nkind: FaultInjection\nmetadata: {name: %s, namespace: %s}\nspec: {%s}\n", pick(r, "f1", "f2"), ns, strings.Join(parts, ", "))
}

// randomFilters returns the filters line of a rule for
// TestAcceptedCompiles: ExtensionRefs and RequestMirrors, valid or not.
func randomFilters(r *rand.Rand) string {
	var fs []string
	for range r.IntN(3) {
		if r.IntN(2) == 0 {
			fs = append(fs, fmt.Sprintf("{type: ExtensionRef, extensionRef: {group: %s, kind: %s, name: %s}}", pick(r, "weft.dev", "weft.dev", "example.com"), pick(r, "FaultInjection", "FaultInjection", "Chaos"), pick(r, "f1", "f2", "nosuch")))
			continue
		}
		share := pick(r, "", ", percent: 0", ", percent: 100", ", percent: 101", ", fraction: {numerator: 1, denominator: 3}", ", fraction: {numerator: 4, denominator: 3}", ", percent: 5, fraction: {numerator: 1}")
		fs = append(fs, fmt.Sprintf("{type: RequestMirror, requestMirror: {backendRef: {name: %s%s}%s}}", pick(r, "a", "b", "nosuch", `""`), pick(r, "", ", namespace: shop", ", port: 0"), share))
	}
	if len(fs) == 0 {
		return ""
	}
	return "    filters: [" + strings.Join(fs, ", ") + "]\n"
}
