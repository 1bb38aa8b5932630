package cli

import (
	"bytes"
	"testing"
	"time"

	"weft.dev/weft/internal/api"
)

// TestGetFaultTable prints FaultInjections: delay, abort (HTTP or gRPC
// status) with their shares, and the header matches.
func TestGetFaultTable(t *testing.T) {
	objs, err := api.Decode([]byte(`apiVersion: weft.dev/v1alpha1
kind: FaultInjection
metadata: {name: flaky}
spec:
  delay: {fixedDelay: 200ms, percentage: 12.5}
  abort: {httpStatus: 503, percentage: 20}
  match: {headers: [{name: x-chaos, value: "on"}]}
---
apiVersion: weft.dev/v1alpha1
kind: FaultInjection
metadata: {name: down}
spec:
  abort: {grpcStatus: UNAVAILABLE}
`))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := api.LookupKind(api.KindFaultInjection)
	var out bytes.Buffer
	if err := getPrintTable(&out, info, objs, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	want := "NAMESPACE   NAME    DELAY         ABORT              MATCH HEADERS   AGE\n" +
		"default     flaky   200ms 12.5%   503 20%            1               <unknown>\n" +
		"default     down    <none>        UNAVAILABLE 100%   0               <unknown>\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}
