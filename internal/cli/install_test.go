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
		not     []string
	}{
		{"without --kubernetes", nil, "--kubernetes is required", nil, nil},
		{"no replicas", []string{"--kubernetes", "--replicas", "0"}, "--replicas 0", nil, nil},
		{"bad namespace", []string{"--kubernetes", "--namespace", "A_B"}, `namespace "A_B"`, nil, nil},
		{"defaults", []string{"--kubernetes"}, "", []string{"kind: MutatingWebhookConfiguration", "kind: ValidatingWebhookConfiguration",
			"name: weft-seal-key", "namespace: weft-system", "replicas: 2", "--admission-listen"}, nil},
		{"flags", []string{"--kubernetes", "--namespace", "mesh", "--replicas", "3", "--image", "example.com/weft:v9", "--no-webhook"}, "",
			[]string{"namespace: mesh", "replicas: 3", "image: example.com/weft:v9", "kind: ValidatingWebhookConfiguration"}, []string{"MutatingWebhookConfiguration"}},
		{"no validation", []string{"--kubernetes", "--no-validation"}, "", []string{"kind: MutatingWebhookConfiguration"},
			[]string{"ValidatingWebhookConfiguration", "--admission-listen", "https-admission"}},
		{"upgrade", []string{"--kubernetes", "--upgrade"}, "", []string{"kind: Deployment", "name: weft-webhook-tls"}, []string{"name: weft-seal-key"}},
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
			for _, n := range tt.not {
				if strings.Contains(s, n) {
					t.Errorf("output has %q", n)
				}
			}
		})
	}
}
