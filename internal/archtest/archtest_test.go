package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Deps       []string
	Name       string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "weft.dev/weft/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// TestDependencyDirection: the proxy never depends on the control plane and
// vice versa; they share only API types. Leaf packages depend on neither.
func TestDependencyDirection(t *testing.T) {
	const (
		control = "weft.dev/weft/internal/control/"
		proxy   = "weft.dev/weft/internal/proxy/"
		cli     = "weft.dev/weft/internal/cli"
	)
	rules := []struct {
		from, forbidden string
	}{
		{proxy, control},
		{control, proxy},
		{proxy, cli},
		{control, cli},
		{"weft.dev/weft/internal/api", proxy},
		{"weft.dev/weft/internal/api", control},
		{"weft.dev/weft/internal/xdsapi", "weft.dev/weft/internal/"},
	}
	pkgs := listPackages(t)
	if len(pkgs) < 10 {
		t.Fatalf("only %d packages listed", len(pkgs))
	}
	for _, p := range pkgs {
		for _, r := range rules {
			if !strings.HasPrefix(p.ImportPath, r.from) {
				continue
			}
			for _, d := range p.Deps {
				if strings.HasPrefix(d, r.forbidden) && !strings.HasPrefix(d, r.from) {
					t.Errorf("%s depends on %s (forbidden: %s… must not import %s…)", p.ImportPath, d, r.from, r.forbidden)
				}
			}
		}
	}
}

// TestPackageDocs: every package has a doc comment.
func TestPackageDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no package doc comment", p.ImportPath)
		}
	}
}
