package demo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// breakable are the demo's services the dashboard's "break" button can
// make fail, through a fail rate file their apps read every second.
var breakable = []string{"backend"}

// breakFiles creates the demo's break dir, with a fail rate file of 0 (not
// broken) per breakable service, and returns the dir.
func breakFiles(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "break")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the demo's break dir: %w", err)
	}
	for _, s := range breakable {
		if err := os.WriteFile(filepath.Join(dir, s), []byte("0\n"), 0o644); err != nil {
			return "", fmt.Errorf("creating the demo's break file: %w", err)
		}
	}
	return dir, nil
}

// dashboardLink asks the control plane, through `weft dashboard`, for a
// login link that works once within the hour.
func dashboardLink(ctx context.Context, exe, dataDir string) (string, error) {
	out, err := exec.CommandContext(ctx, exe, "--data-dir", dataDir, "dashboard", "--login-ttl", "1h").Output()
	if err != nil {
		return "", fmt.Errorf("weft dashboard: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
