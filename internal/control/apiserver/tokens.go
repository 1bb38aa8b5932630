package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"weft.dev/weft/internal/control/tokens"
)

// maxTokenRequestBytes bounds the body of POST /api/v1/tokens.
const maxTokenRequestBytes = 64 << 10

// TokenList answers GET /api/v1/tokens. Secrets are never listed.
type TokenList struct {
	Items []tokens.Token `json:"items"`
}

// CreatedToken answers POST /api/v1/tokens: the token and, this once, the
// string to present ("<id>.<secret>").
type CreatedToken struct {
	Token  tokens.Token `json:"token"`
	Secret string       `json:"secret"`
}

// NewTokens returns the handler of the join-token endpoints. Every request
// must carry "Authorization: Bearer <adminToken>". The store logs
// every creation and revocation.
//
//	GET  /api/v1/tokens              list (no secrets)
//	POST /api/v1/tokens              body: tokens.Spec as JSON; answers CreatedToken
//	POST /api/v1/tokens/{id}/revoke  revoke; answers the token
func NewTokens(ts *tokens.Store, adminToken string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/tokens", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, TokenList{Items: ts.List()})
	})
	mux.HandleFunc("POST /api/v1/tokens", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTokenRequestBytes))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, "reading request: "+err.Error())
			return
		}
		var spec tokens.Spec
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil {
			writeError(w, http.StatusBadRequest, "decoding token spec: "+err.Error())
			return
		}
		t, secret, err := ts.Create(spec)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, CreatedToken{Token: t, Secret: secret})
	})
	mux.HandleFunc("POST /api/v1/tokens/{id}/revoke", func(w http.ResponseWriter, r *http.Request) {
		t, err := ts.Revoke(r.PathValue("id"))
		if errors.Is(err, tokens.ErrNotFound) {
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, t)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no API endpoint "+r.Method+" "+r.URL.Path)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Authorized(r, adminToken) {
			writeError(w, http.StatusUnauthorized, "missing or wrong admin token (see the admin-token file in the control plane's data dir, or set WEFT_ADMIN_TOKEN)")
			return
		}
		mux.ServeHTTP(w, r)
	})
}
