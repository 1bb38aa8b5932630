package controlplane

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/control/store"
	"weft.dev/weft/internal/control/tokens"
)

func TestEnsureJoinToken(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name string
		// file is the join-token file before the start ("" none); "known"
		// and "revoked" stand for a token of the store.
		file        string
		wantKept    bool
		wantUsable  bool
		wantDefault bool
	}{
		{name: "first start", wantUsable: true, wantDefault: true},
		{name: "known token", file: "known", wantKept: true, wantUsable: true},
		{name: "revoked token stays revoked", file: "revoked", wantKept: true},
		{name: "old unscoped token", file: strings.Repeat("A", 43) + "\n", wantUsable: true, wantDefault: true},
		{name: "token of another control plane", file: "0123456789abcdef." + strings.Repeat("B", 43), wantUsable: true, wantDefault: true},
		{name: "garbage", file: "not a token", wantUsable: true, wantDefault: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := store.Open(filepath.Join(dir, connfile.StoreFile))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			ts, err := tokens.Open(st, tokens.Options{})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, connfile.JoinTokenFile)
			before := tt.file
			switch tt.file {
			case "known", "revoked":
				tok, secret, err := ts.Create(tokens.Spec{Namespace: "shop"})
				if err != nil {
					t.Fatal(err)
				}
				if tt.file == "revoked" {
					if _, err := ts.Revoke(tok.ID); err != nil {
						t.Fatal(err)
					}
				}
				before = secret + "\n"
			}
			if before != "" {
				if err := os.WriteFile(path, []byte(before), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := ensureJoinToken(ts, dir, log); err != nil {
				t.Fatal(err)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if kept := string(after) == before; kept != tt.wantKept {
				t.Errorf("file kept = %v, want %v (before %q, after %q)", kept, tt.wantKept, before, after)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
			tok, err := ts.Authenticate(string(after))
			if usable := err == nil; usable != tt.wantUsable {
				t.Fatalf("token usable = %v (%v), want %v", usable, err, tt.wantUsable)
			}
			if tt.wantDefault && (tok.Namespace != "default" || tok.ServiceAccount != "" || len(tok.Services) != 0 || !tok.Expires.IsZero()) {
				t.Errorf("default token = %+v, want namespace default, anything in it, no expiry", tok)
			}
			// A restart keeps whatever the first start left.
			if err := ensureJoinToken(ts, dir, log); err != nil {
				t.Fatal(err)
			}
			if again, _ := os.ReadFile(path); string(again) != string(after) {
				t.Errorf("restart rewrote the join token")
			}
		})
	}
}
