package cli

import (
	"regexp"
	"strings"
	"testing"
)

func TestTopCmd(t *testing.T) {
	g := statTestPlane(t, "[]")
	clock := regexp.MustCompile(`\d\d:\d\d:\d\d|"time": "[^"]*"`)
	var all strings.Builder
	for _, args := range [][]string{
		{"--once"},
		{"--once", "backend"},
		{"--once", "--limit", "2", "-o", "json"},
	} {
		out, _, err := apiTestRun(t, g, newTopCmd, args...)
		if err != nil {
			t.Fatalf("top %v: %v", args, err)
		}
		all.WriteString("$ weft top " + strings.Join(args, " ") + "\n" + clock.ReplaceAllString(out, "TIME") + "\n")
	}
	apiTestGolden(t, "top.txt", all.String())
	if _, _, err := apiTestRun(t, g, newTopCmd, "--once", "--interval", "0s"); err == nil {
		t.Error("top --interval 0s succeeded")
	}
}
