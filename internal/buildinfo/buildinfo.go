// Package buildinfo says which build of weft is running, for `weft
// version` and the control plane's /api/v1/version.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Info describes one build.
type Info struct {
	// Version is the module version ("(devel)" for a build from a
	// checkout).
	Version string `json:"version"`
	// Commit is the VCS revision, with "-dirty" if the tree was modified;
	// "" when unknown (e.g. go run or go test).
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the running binary's build.
func Get() Info {
	in := Info{Version: "(devel)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	if v := bi.Main.Version; v != "" {
		in.Version = v
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if in.Commit != "" && dirty {
		in.Commit += "-dirty"
	}
	return in
}
