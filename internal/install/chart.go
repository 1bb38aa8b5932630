package install

//go:generate go run ./chartcrds ../../charts/weft/crds

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"

	"weft.dev/weft/internal/control/kube/crd"
)

// ChartCRDs returns the files of the Helm chart's crds directory, keyed by
// file name: package crd's embedded CRDs, as they are.
func ChartCRDs() (map[string][]byte, error) {
	files, err := crd.Files()
	if err != nil {
		return nil, fmt.Errorf("reading the CRDs: %w", err)
	}
	out := make(map[string][]byte, len(files))
	for p, b := range files {
		name := path.Base(p)
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("two CRD files named %s", name)
		}
		out[name] = b
	}
	return out, nil
}

// WriteChartCRDs replaces the *.yaml files of dir with ChartCRDs.
func WriteChartCRDs(dir string) error {
	files, err := ChartCRDs()
	if err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("removing %s: %w", f, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), files[n], 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", n, err)
		}
	}
	return nil
}
