package saidentity

import (
	"errors"
	"fmt"
)

// Reason says why a token was refused.
type Reason string

// Reasons of a Refusal.
const (
	// ReasonUnauthenticated: the API server did not authenticate the
	// token (bad signature, unknown key, deleted service account or bound
	// object, wrong audience on API servers that check it here).
	ReasonUnauthenticated Reason = "unauthenticated"
	// ReasonAudience: authenticated, but for none of the wanted audiences.
	ReasonAudience Reason = "audience"
	// ReasonNotServiceAccount: the token's user is not a service account.
	ReasonNotServiceAccount Reason = "not_service_account"
	// ReasonName: the namespace or service account is not a DNS-1123
	// label, so it cannot be a SPIFFE path segment.
	ReasonName Reason = "invalid_name"
	// ReasonPodBinding: malformed pod-bound claims.
	ReasonPodBinding Reason = "pod_binding"
	// ReasonExpired: the token's exp claim has passed.
	ReasonExpired Reason = "expired"
	// ReasonServiceAccountGone: the service account was deleted.
	ReasonServiceAccountGone Reason = "service_account_gone"
)

// Refusal is a token that was checked and refused.
type Refusal struct {
	Reason Reason
	Err    error
}

func (e *Refusal) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Refusal) Unwrap() error { return e.Err }

func refuse(r Reason, format string, args ...any) error {
	return &Refusal{Reason: r, Err: fmt.Errorf(format, args...)}
}

// ReasonOf is the Reason of a *Refusal in err's chain, or "" if err is not
// a refusal (the token could not be checked).
func ReasonOf(err error) Reason {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}
