package cli

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestVersionCmd(t *testing.T) {
	g := statTestPlane(t, "[]")
	norm := strings.NewReplacer(runtime.Version(), "GOVERSION", runtime.GOOS+"/"+runtime.GOARCH, "PLATFORM")
	var all strings.Builder
	for _, tt := range []struct {
		args []string
		g    *globalFlags
	}{
		{nil, g},
		{[]string{"-o", "json"}, g},
		{[]string{"--client"}, g},
		{nil, &globalFlags{dataDir: filepath.Join(t.TempDir(), "none")}},
	} {
		out, _, err := apiTestRun(t, tt.g, newVersionCmd, tt.args...)
		if err != nil {
			t.Fatal(err)
		}
		all.WriteString("$ weft version " + strings.Join(tt.args, " ") + "\n" + norm.Replace(out) + "\n")
	}
	out := all.String()
	// The data dir of the last case is a temporary path.
	if i := strings.Index(out, "no control plane found"); i >= 0 {
		out = out[:i] + "no control plane found: ...\n"
	}
	apiTestGolden(t, "version.txt", out)
}
