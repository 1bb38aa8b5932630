package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestTransparentPreinstalledFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // error substring; "" for none
	}{
		{"preinstalled", []string{"--transparent", "--transparent-preinstalled", "--transparent-port", "15002"}, ""},
		{"without --transparent", []string{"--transparent-preinstalled"}, "need --transparent"},
		{"without a port", []string{"--transparent", "--transparent-preinstalled"}, "needs --transparent-port"},
		{"with exclusions", []string{"--transparent", "--transparent-preinstalled", "--transparent-port", "15002", "--exclude-ports", "22"}, "belong to the step that installed the rules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f transparentFlags
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			f.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			tr, err := f.options()
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("options: %v, want an error with %q", err, tc.want)
				}
				return
			}
			// No root and no iptables needed: nothing is installed.
			if err != nil {
				t.Fatalf("options: %v", err)
			}
			if tr == nil || !tr.Preinstalled || tr.Listen != "127.0.0.1:15002" {
				t.Fatalf("options = %+v, want preinstalled on 127.0.0.1:15002", tr)
			}
		})
	}
}

func TestTransparentInitFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no service", []string{"--namespace", "shop"}, "Namespace and Service are required"},
		{"bad cidr", []string{"--namespace", "shop", "--service", "s", "--exclude-cidrs", "nope"}, "--exclude-cidrs:"},
		{"ipv6 cidr", []string{"--namespace", "shop", "--service", "s", "--exclude-cidrs", "fd00::/8"}, "not IPv4"},
		{"bad port", []string{"--namespace", "shop", "--service", "s", "--outbound-port", "0"}, "outbound port 0 is not a port"},
		{"root proxy", []string{"--namespace", "shop", "--service", "s", "--proxy-uid", "0"}, "--proxy-uid: 0 would leave"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newTransparentInitCmd()
			cmd.SetArgs(tc.args)
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one with %q", err, tc.want)
			}
		})
	}
}
