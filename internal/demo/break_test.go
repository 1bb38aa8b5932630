package demo

import (
	"slices"
	"testing"
)

func TestBreakService(t *testing.T) {
	ws := func() []*workload {
		return []*workload{
			{service: "backend", version: "v1", app: []string{"backend", "--fail-rate", "0.05"}},
			{service: "backend", version: "v2", app: []string{"backend", "--fail-rate", "0.2"}},
			{service: "frontend", app: []string{"frontend"}},
		}
	}
	for _, tt := range []struct {
		service string
		want    [][]string
	}{
		{"", [][]string{{"backend", "--fail-rate", "0.05"}, {"backend", "--fail-rate", "0.2"}, {"frontend"}}},
		{"backend", [][]string{{"backend", "--fail-rate", "0.5"}, {"backend", "--fail-rate", "0.5"}, {"frontend"}}},
		{"frontend", [][]string{{"backend", "--fail-rate", "0.05"}, {"backend", "--fail-rate", "0.2"}, {"frontend", "--fail-rate", "0.5"}}},
	} {
		w := ws()
		breakService(w, tt.service)
		for i := range w {
			if !slices.Equal(w[i].app, tt.want[i]) {
				t.Errorf("--break %q: %s args %q, want %q", tt.service, w[i].service, w[i].app, tt.want[i])
			}
		}
	}
}
