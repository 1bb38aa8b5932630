package cli

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestTransparentFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // error substring; "" for none
	}{
		{"off", nil, ""},
		{"exclusions without transparent", []string{"--exclude-ports", "22"}, "need --transparent"},
		{"bad port", []string{"--transparent", "--exclude-ports", "0"}, "--exclude-ports: 0 is not a port"},
		{"bad cidr", []string{"--transparent", "--exclude-cidrs", "10.0.0.0/33"}, "--exclude-cidrs:"},
		{"ipv6 cidr", []string{"--transparent", "--exclude-cidrs", "fd00::/8"}, "not IPv4"},
		{"bad listener port", []string{"--transparent", "--transparent-port", "70000"}, "--transparent-port: 70000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f transparentFlags
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			f.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			tr, err := f.options()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("options: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("options: %v, want an error with %q", err, tc.want)
			case tc.want == "" && tr != nil:
				t.Fatalf("options = %+v without --transparent", tr)
			}
		})
	}
}
