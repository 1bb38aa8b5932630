package buildinfo

import (
	"runtime"
	"testing"
)

func TestGet(t *testing.T) {
	in := Get()
	// A test binary has no module version and no VCS stamp.
	if in.Version != "(devel)" || in.GoVersion != runtime.Version() || in.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("Get() = %+v", in)
	}
}
