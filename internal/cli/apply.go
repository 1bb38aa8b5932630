package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/apiserver"
)

func newApplyCmd(g *globalFlags) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|- ...",
		Short: "Create or update configuration from YAML or JSON files",
		Long: `Apply sends every file named to the control plane as one all-or-nothing
change: the control plane checks all their objects first, and if any object in
any file is invalid, nothing is stored and the error names the file, the
document, the object and the field. A directory applies its *.yaml, *.yml and
*.json files; "-" reads standard input.`,
		Example: "  weft apply -f routes.yaml\n  weft apply -f config/ -f policy.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("no input: pass -f FILE, -f DIR or -f -")
			}
			var paths []string
			for _, f := range files {
				p, err := applyPaths(f)
				if err != nil {
					return err
				}
				paths = append(paths, p...)
			}
			req := apiserver.FilesRequest{Files: make([]apiserver.File, 0, len(paths))}
			for _, p := range paths {
				var (
					content []byte
					err     error
				)
				if p == "-" {
					content, err = io.ReadAll(cmd.InOrStdin())
				} else {
					content, err = os.ReadFile(p)
				}
				if err != nil {
					return fmt.Errorf("reading %s: %w", p, err)
				}
				req.Files = append(req.Files, apiserver.File{Name: applyName(p), Content: string(content)})
			}
			c, err := g.apiClient()
			if err != nil {
				return err
			}
			changes, err := c.applyFiles(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("nothing applied: %w", err)
			}
			for _, ch := range changes {
				fmt.Fprintln(cmd.OutOrStdout(), applyChangeLine(ch))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file or directory to apply, or - for stdin (repeatable)")
	return cmd
}

// applyPaths expands one -f argument: a directory becomes its config files
// in name order.
func applyPaths(f string) ([]string, error) {
	if f == "-" {
		return []string{f}, nil
	}
	st, err := os.Stat(f)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{f}, nil
	}
	entries, err := os.ReadDir(f)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			out = append(out, filepath.Join(f, e.Name()))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no *.yaml, *.yml or *.json files", f)
	}
	slices.Sort(out)
	return out, nil
}

// applyFiles sends files to be applied together, all-or-nothing.
func (c *apiClient) applyFiles(ctx context.Context, req apiserver.FilesRequest) ([]apiserver.Change, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var resp apiserver.ApplyResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/apply/files", body, &resp); err != nil {
		return nil, err
	}
	return resp.Changes, nil
}

func applyName(p string) string {
	if p == "-" {
		return "<stdin>"
	}
	return p
}

// applyChangeLine renders "httproute.gateway.networking.k8s.io/web configured".
func applyChangeLine(ch apiserver.Change) string {
	res := strings.ToLower(ch.Kind)
	if info, ok := api.LookupKind(ch.Kind); ok {
		res = info.Qualified()
	}
	return res + "/" + ch.Name + " " + ch.Action
}
