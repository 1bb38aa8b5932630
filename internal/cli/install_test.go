package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestInstallCmd(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		want    []string
	}{
		{"without --kubernetes", nil, "--kubernetes is required", nil},
		{"no replicas", []string{"--kubernetes", "--replicas", "0"}, "--replicas 0", nil},
		{"bad namespace", []string{"--kubernetes", "--namespace", "A_B"}, `namespace "A_B"`, nil},
		{"defaults", []string{"--kubernetes"}, "", []string{"kind: MutatingWebhookConfiguration", "namespace: weft-system", "replicas: 2"}},
		{"flags", []string{"--kubernetes", "--namespace", "mesh", "--replicas", "3", "--image", "example.com/weft:v9", "--no-webhook"}, "",
			[]string{"namespace: mesh", "replicas: 3", "image: example.com/weft:v9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newInstallCmd()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&bytes.Buffer{})
			cmd.SetArgs(tt.args)
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := out.String()
			for _, w := range tt.want {
				if !strings.Contains(s, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if strings.Contains(strings.Join(tt.args, " "), "--no-webhook") && strings.Contains(s, "MutatingWebhookConfiguration") {
				t.Error("--no-webhook printed a webhook configuration")
			}
		})
	}
}
