package apiserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"weft.dev/weft/internal/control/store"
	"weft.dev/weft/internal/control/tokens"
)

func TestTokensAPI(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "weft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts, err := tokens.Open(st, tokens.Options{})
	if err != nil {
		t.Fatal(err)
	}
	existing, _, err := ts.Create(tokens.Spec{Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewTokens(ts, token))
	defer srv.Close()

	tests := []struct {
		name, method, path, body, tok string
		wantCode                      int
		want                          string // substring of the body
	}{
		{name: "no admin token", method: "GET", path: "/api/v1/tokens", wantCode: http.StatusUnauthorized, want: "admin token"},
		{name: "wrong admin token", method: "POST", path: "/api/v1/tokens", body: `{"namespace":"shop"}`, tok: "nope", wantCode: http.StatusUnauthorized},
		{name: "list", method: "GET", path: "/api/v1/tokens", tok: token, wantCode: http.StatusOK, want: `"id": "` + existing.ID + `"`},
		{name: "create", method: "POST", path: "/api/v1/tokens", body: `{"namespace":"shop","serviceAccount":"orders","ttl":"1h"}`, tok: token, wantCode: http.StatusCreated, want: `"secret": "`},
		{name: "create in weft-system", method: "POST", path: "/api/v1/tokens", body: `{"namespace":"weft-system"}`, tok: token, wantCode: http.StatusBadRequest, want: "control plane's own namespace"},
		{name: "unknown field", method: "POST", path: "/api/v1/tokens", body: `{"namespace":"shop","admin":true}`, tok: token, wantCode: http.StatusBadRequest, want: "unknown field"},
		{name: "not JSON", method: "POST", path: "/api/v1/tokens", body: `namespace: [`, tok: token, wantCode: http.StatusBadRequest, want: "decoding token spec"},
		{name: "too large", method: "POST", path: "/api/v1/tokens", body: `{"description":"` + strings.Repeat("x", 70<<10) + `"}`, tok: token, wantCode: http.StatusRequestEntityTooLarge},
		{name: "revoke", method: "POST", path: "/api/v1/tokens/" + existing.ID + "/revoke", tok: token, wantCode: http.StatusOK, want: `"revokedAt": "`},
		{name: "revoke unknown", method: "POST", path: "/api/v1/tokens/ffffffffffffffff/revoke", tok: token, wantCode: http.StatusNotFound, want: "no such token"},
		{name: "delete is not an endpoint", method: "DELETE", path: "/api/v1/tokens/" + existing.ID, tok: token, wantCode: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, srv, tt.method, tt.path, tt.body, tt.tok)
			if code != tt.wantCode || !strings.Contains(body, tt.want) {
				t.Fatalf("%s %s = %d %s, want %d containing %q", tt.method, tt.path, code, body, tt.wantCode, tt.want)
			}
			if tt.method == "GET" && strings.Contains(body, "ecret") {
				t.Errorf("list shows secrets or hashes: %s", body)
			}
			if tt.name == "create" {
				var c CreatedToken
				if err := json.Unmarshal([]byte(body), &c); err != nil {
					t.Fatal(err)
				}
				if got, err := ts.Authenticate(c.Secret); err != nil || got.ServiceAccount != "orders" {
					t.Errorf("created token does not authenticate: %+v, %v", got, err)
				}
			}
		})
	}
}
