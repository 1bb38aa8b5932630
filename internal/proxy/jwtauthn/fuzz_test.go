package jwtauthn

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// FuzzAuthenticate feeds arbitrary Authorization values to a verifier: it
// must never panic, and must either refuse with an *Error, pass a value
// that is not a bearer token, or accept only a token that verifies (which
// random input cannot produce).
func FuzzAuthenticate(f *testing.F) {
	keys := newTestKeys(f)
	v, err := Compile([]Rule{{Policy: "p", Issuer: testIssuer, JWKS: keys.jwks, OutputClaimToHeaders: []ClaimHeader{{Header: "x-user", Claim: "sub"}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci50ZXN0In0.")
	f.Add("Bearer a.b.c")
	f.Add("Basic YTpi")
	f.Fuzz(func(t *testing.T, auth string) {
		h := http.Header{"Authorization": {auth}, "X-User": {"forged"}}
		p, err := v.Authenticate(h, time.Now(), nil)
		if h.Get("X-User") == "forged" {
			t.Fatal("forged claim header kept")
		}
		var ae *Error
		switch {
		case err != nil && !errors.As(err, &ae):
			t.Fatalf("error of type %T: %v", err, err)
		case err != nil && (ae.Result == "" || ae.Reason == ""):
			t.Fatalf("error without result or reason: %+v", ae)
		case p != nil:
			t.Fatalf("random input accepted: %+v", p)
		}
	})
}
