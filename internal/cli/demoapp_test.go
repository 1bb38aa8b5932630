package cli

import "testing"

func TestDemoListenAddr(t *testing.T) {
	tests := []struct {
		name, flag, env, want string
		wantErr               bool
	}{
		{name: "default port", want: "127.0.0.1:8081"},
		{name: "env port", env: "7000", want: "127.0.0.1:7000"},
		{name: "flag wins over env", flag: "0.0.0.0:9000", env: "7000", want: "0.0.0.0:9000"},
		{name: "bare port", flag: "9001", want: "127.0.0.1:9001"},
		{name: "bad flag", flag: "nope", wantErr: true},
		{name: "bad env", env: "x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WEFT_APP_PORT", tt.env)
			got, err := demoListenAddr(tt.flag, 8081)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("demoListenAddr(%q) with WEFT_APP_PORT=%q = %q, %v; want %q (error %v)", tt.flag, tt.env, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDemoAppCmd(t *testing.T) {
	cmd := newDemoAppCmd()
	for _, sub := range []string{"backend", "greeter", "frontend", "load"} {
		c, _, err := cmd.Find([]string{sub})
		if err != nil || c.Name() != sub {
			t.Errorf("subcommand %q: %v", sub, err)
		}
	}
	c, _, _ := cmd.Find([]string{"backend"})
	for _, fl := range []string{"listen", "version", "fail-rate", "slow-rate", "service"} {
		if c.Flags().Lookup(fl) == nil {
			t.Errorf("backend lacks --%s", fl)
		}
	}
}
