package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// saTokenPath is where docs/kubernetes/identity.md mounts the projected
// service-account token of audience weft.
const saTokenPath = "/var/run/secrets/weft.dev/token"

// checkSATokenFile validates --sa-token-file: it excludes --token-file and
// must hold a token now (the sidecar reads it again at every certificate
// request). It returns the current token.
func checkSATokenFile(path, tokenFile string) (string, error) {
	if tokenFile != "" {
		return "", errors.New("--sa-token-file and --token-file exclude each other: a control plane with --identity kubernetes takes service-account tokens only")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--sa-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("--sa-token-file %s is empty", path)
	}
	return tok, nil
}
