package schedtune

import (
	"slices"
	"testing"
)

func TestTunedEnvAndAppEnv(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		tuned []string // nil: left alone
	}{
		{
			name:  "no GODEBUG",
			env:   []string{"PATH=/bin"},
			tuned: []string{"PATH=/bin", "GODEBUG=" + Setting, savedVar + "=unset"},
		},
		{
			name:  "user GODEBUG is kept",
			env:   []string{"GODEBUG=http2debug=1", "HOME=/root"},
			tuned: []string{"HOME=/root", "GODEBUG=http2debug=1," + Setting, savedVar + "=set:http2debug=1"},
		},
		{
			name:  "empty GODEBUG",
			env:   []string{"GODEBUG="},
			tuned: []string{"GODEBUG=" + Setting, savedVar + "=set:"},
		},
		{
			name: "user set schedtrace: left alone",
			env:  []string{"GODEBUG=gctrace=1, schedtrace=0"},
		},
		{
			name: "already tuned: left alone",
			env:  []string{"GODEBUG=" + Setting, savedVar + "=unset"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tunedEnv(tt.env)
			if !slices.Equal(got, tt.tuned) {
				t.Fatalf("tunedEnv = %q, want %q", got, tt.tuned)
			}
			if got == nil {
				return
			}
			// The app weft starts sees the user's environment again.
			back := AppEnv(got)
			want := slices.Clone(tt.env)
			slices.Sort(back)
			slices.Sort(want)
			if !slices.Equal(back, want) {
				t.Errorf("AppEnv = %q, want %q", back, want)
			}
		})
	}
}

func TestAppEnvUntouchedWithoutTuning(t *testing.T) {
	env := []string{"GODEBUG=x=1", "A=b"}
	if got := AppEnv(env); !slices.Equal(got, env) {
		t.Errorf("AppEnv = %q, want %q", got, env)
	}
}
