package apps

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCallerFromXFCC(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"envoy", `By=spiffe://weft.local/ns/default/sa/backend;Hash=abc123;URI=spiffe://weft.local/ns/default/sa/frontend`, "spiffe://weft.local/ns/default/sa/frontend"},
		{"uri only", "URI=spiffe://td/ns/a/sa/b", "spiffe://td/ns/a/sa/b"},
		{"lowercase key and spaces", " uri = spiffe://td/ns/a/sa/b ", "spiffe://td/ns/a/sa/b"},
		{"quoted subject with separators", `By=spiffe://td/ns/a/sa/s;Subject="CN=x,O=a;b";URI=spiffe://td/ns/a/sa/c`, "spiffe://td/ns/a/sa/c"},
		{"escaped quote", `Subject="a\"b,c";URI="spiffe://td/ns/a/sa/c"`, "spiffe://td/ns/a/sa/c"},
		{"last element wins", "URI=spiffe://td/ns/a/sa/first,URI=spiffe://td/ns/a/sa/second", "spiffe://td/ns/a/sa/second"},
		{"last element without uri", "URI=spiffe://td/ns/a/sa/first,By=spiffe://td/ns/a/sa/x", ""},
		{"not spiffe", "URI=https://example.com/x", ""},
		{"no uri", "By=spiffe://td/ns/a/sa/x;Hash=1", ""},
		{"garbage", `;;,,"=`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, CallerFromXFCC(tt.in)); diff != "" {
				t.Errorf("CallerFromXFCC(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func FuzzCallerFromXFCC(f *testing.F) {
	f.Add(`By=spiffe://td/ns/a/sa/s;Subject="CN=x,O=a;b";URI=spiffe://td/ns/a/sa/c`)
	f.Add(`URI="spiffe://td/\"x"`)
	f.Fuzz(func(t *testing.T, in string) {
		got := CallerFromXFCC(in)
		if got != "" && !strings.HasPrefix(got, "spiffe://") {
			t.Errorf("CallerFromXFCC(%q) = %q, not a spiffe URI", in, got)
		}
	})
}
