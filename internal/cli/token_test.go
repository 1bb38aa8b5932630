package cli

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/control/apiserver"
	"weft.dev/weft/internal/control/tokens"
)

// TestTokenOutput prints a created token and a token table with fixed
// times.
func TestTokenOutput(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	list := []tokens.Token{
		{ID: "0123456789abcdef", Namespace: "default", Description: "default token (join-token in the data dir)", Created: now.Add(-72 * time.Hour)},
		{ID: "fedcba9876543210", Namespace: "shop", ServiceAccount: "orders", Services: []string{"orders", "orders-v2"},
			Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("fd00::/64")},
			Created:   now.Add(-5 * time.Minute), Expires: now.Add(time.Hour)},
		{ID: "00000000000000aa", Namespace: "shop", Created: now.Add(-3 * time.Hour), RevokedAt: now.Add(-time.Hour)},
		{ID: "00000000000000bb", Namespace: "batch", Created: now.Add(-30 * time.Hour), Expires: now.Add(-6 * time.Hour)},
	}
	var out, errOut bytes.Buffer
	tokenPrintCreated(&out, &errOut, apiserver.CreatedToken{Token: list[1], Secret: "fedcba9876543210.SECRET"})
	out.WriteString("---- stderr:\n")
	out.Write(errOut.Bytes())
	out.WriteString("---- list:\n")
	if err := tokenPrintTable(&out, list, now); err != nil {
		t.Fatal(err)
	}
	apiTestGolden(t, "token.txt", out.String())
}

func TestTokenCmd(t *testing.T) {
	g, _ := apiTestControlPlane(t)
	secret, errOut, err := apiTestRun(t, g, newTokenCmd, "create", "--namespace", "shop", "--service-account", "orders",
		"--service", "orders", "--address", "10.0.0.7/24", "--ttl", "1h", "--description", "ci")
	if err != nil {
		t.Fatal(err)
	}
	secret = strings.TrimSpace(secret)
	id, _, err := tokens.Parse(secret)
	if err != nil {
		t.Fatalf("create printed %q on stdout, not a token: %v", secret, err)
	}
	for _, want := range []string{"Created join token " + id, "namespace shop", "service account orders", "services orders", "10.0.0.0/24", "shown only this once"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("create stderr does not contain %q:\n%s", want, errOut)
		}
	}
	js, _, err := apiTestRun(t, g, newTokenCmd, "create", "-n", "batch", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var created apiserver.CreatedToken
	if err := json.Unmarshal([]byte(js), &created); err != nil || created.Token.Namespace != "batch" || !strings.HasPrefix(created.Secret, created.Token.ID+".") {
		t.Errorf("create -o json = %s (%v)", js, err)
	}

	tests := []struct {
		args    []string
		want    []string // substrings of stdout
		wantErr string
	}{
		{args: []string{"list"}, want: []string{"ID", "SERVICE ACCOUNT", id, "shop", "orders", "10.0.0.0/24", "active", "ci", created.Token.ID}},
		{args: []string{"list", "-o", "json"}, want: []string{`"id": "` + id + `"`, `"serviceAccount": "orders"`, `"expires": "`}},
		{args: []string{"revoke", id}, want: []string{"token " + id + " revoked"}},
		{args: []string{"list"}, want: []string{"revoked"}},
		{args: []string{"list", "-o", "json"}, want: []string{`"revokedAt": "`}},
		{args: []string{"revoke", "ffffffffffffffff"}, wantErr: "no such token"},
		{args: []string{"create"}, wantErr: `required flag(s) "namespace" not set`},
		{args: []string{"create", "-n", "weft-system"}, wantErr: "control plane's own namespace"},
		{args: []string{"create", "-n", "shop", "--address", "0.0.0.0/0"}, wantErr: "allows every address"},
		{args: []string{"create", "-n", "shop", "--ttl", "-1h"}, wantErr: "--ttl: -1h0m0s is negative"},
		{args: []string{"list", "-o", "wide"}, wantErr: "--output: must be table or json"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, _, err := apiTestRun(t, g, newTokenCmd, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not contain %q:\n%s", w, out)
				}
			}
			// Secrets are printed by create alone.
			if _, s, _ := tokens.Parse(secret); strings.Contains(out, s) || strings.Contains(out, "secret") {
				t.Errorf("output shows a secret:\n%s", out)
			}
		})
	}
}
