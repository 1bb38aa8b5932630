package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestSidecarDrainFlags: the startup and drain flags have their documented
// defaults and refuse values that cannot work, naming the flag.
func TestSidecarDrainFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"--drain-timeout", "0"}, wantErr: "--drain-timeout"},
		{args: []string{"--drain-quiet", "-1s"}, wantErr: "--drain-quiet"},
		{args: []string{"--drain-quiet", "6s"}, wantErr: "longer than --drain-timeout"},
		{args: []string{"--startup-timeout", "-1s"}, wantErr: "--startup-timeout"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := &sidecarFlags{}
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			f.register(fs, [3]int{})
			if err := fs.Parse(append([]string{"--service", "web"}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			_, err := f.options(&globalFlags{dataDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("options() = %v, want an error naming %q", err, tt.wantErr)
			}
		})
	}
	f := &sidecarFlags{}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	f.register(fs, [3]int{})
	if f.startupTimeout != time.Minute || f.drainTimeout != 5*time.Second || f.drainQuiet != time.Second {
		t.Errorf("defaults: startup %v, drain %v, quiet %v; want 1m, 5s, 1s", f.startupTimeout, f.drainTimeout, f.drainQuiet)
	}
}
