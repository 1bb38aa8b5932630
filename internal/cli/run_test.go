package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppEnvDropsSecrets(t *testing.T) {
	in := []string{
		"PATH=/usr/bin",
		"WEFT_JOIN_TOKEN=0123456789abcdef.secret",
		"WEFT_ADMIN_TOKEN=admin",
		"weft_join_token=lower-case too",
		"WEFT_JOIN_TOKEN_FILE=/not/a/secret/name",
		"WEFT_DATA_DIR=/var/lib/weft",
		"HOME=/home/u",
	}
	want := []string{"PATH=/usr/bin", "WEFT_JOIN_TOKEN_FILE=/not/a/secret/name", "WEFT_DATA_DIR=/var/lib/weft", "HOME=/home/u"}
	if diff := cmp.Diff(want, appEnv(in)); diff != "" {
		t.Errorf("appEnv (-want +got):\n%s", diff)
	}
}
