package inbound

import "net/http"

// identityHeaders are the request headers through which the inbound tells
// the app who called, in lower case, and the mesh-internal ones the app
// never sees (x-weft-route, see routelabel.go). Only the inbound sets
// them: whatever a caller sent under these names is removed first.
var identityHeaders = [...]string{"x-forwarded-client-cert", "x-weft-route"}

// stripIdentityHeaders removes every header whose name, case-folded and
// with '_' read as '-', is an identity header: frameworks that map '_' to
// '-' (CGI, many Python and Ruby servers) would read X_Forwarded_Client_Cert
// as the real one.
func stripIdentityHeaders(h http.Header) {
	for k := range h {
		if isIdentityHeader(k) {
			delete(h, k)
		}
	}
}

func isIdentityHeader(k string) bool {
	for _, id := range identityHeaders {
		if len(k) == len(id) && foldsTo(k, id) {
			return true
		}
	}
	return false
}

// foldsTo reports whether k equals lower (lower-case, same length) ignoring
// ASCII case and reading '_' as '-'.
func foldsTo(k, lower string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
