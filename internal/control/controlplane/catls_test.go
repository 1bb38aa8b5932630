package controlplane

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/control/ca"
)

// blobs is an in-memory ca.Persistence.
type blobs map[string][]byte

func (b blobs) GetBlob(k string) ([]byte, error) { return b[k], nil }
func (b blobs) PutBlob(k string, v []byte) error { b[k] = v; return nil }

// TestRotateHandler: the root-rotation endpoint needs the admin token, takes
// only GET and POST, starts one rotation (the bundle then holds both roots)
// and refuses a second one while the first runs, changing nothing.
func TestRotateHandler(t *testing.T) {
	authority, err := ca.New(context.Background(), blobs{}, "cluster.local", nil)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := newCATLS(authority, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h := authed("admin-secret", cat.rotateHandler(time.Hour))
	do := func(method, token string) (int, ca.RotationStatus, string) {
		req := httptest.NewRequest(method, "/api/v1/ca/rotation", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var st ca.RotationStatus
		_ = json.Unmarshal(rec.Body.Bytes(), &st)
		return rec.Code, st, rec.Body.String()
	}
	before := authority.Status()

	for _, tt := range []struct {
		name, method, token string
		want                int
	}{
		{"no token", http.MethodPost, "", http.StatusUnauthorized},
		{"wrong token", http.MethodPost, "guess", http.StatusUnauthorized},
		{"wrong method", http.MethodDelete, "admin-secret", http.StatusMethodNotAllowed},
	} {
		if code, _, body := do(tt.method, tt.token); code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.want)
		}
	}
	if got := authority.Status(); strings.Join(got.Bundle, ",") != strings.Join(before.Bundle, ",") || got.Phase != before.Phase {
		t.Fatalf("a refused call changed the CA: %+v, was %+v", got, before)
	}

	code, st, body := do(http.MethodPost, "admin-secret")
	if code != http.StatusOK || len(st.Bundle) != 2 || st.Signing != before.Signing {
		t.Fatalf("POST: %d %s; want 200, two roots in the bundle and the old root still signing", code, body)
	}
	if code, _, body := do(http.MethodPost, "admin-secret"); code != http.StatusConflict {
		t.Fatalf("second POST during a rotation: %d %s, want 409", code, body)
	}
	if code, got, _ := do(http.MethodGet, "admin-secret"); code != http.StatusOK || strings.Join(got.Bundle, ",") != strings.Join(st.Bundle, ",") {
		t.Fatalf("GET after the refused POST: %d %+v, want the rotation unchanged %+v", code, got, st)
	}
}
