package saidentity

import (
	"context"
	"fmt"

	"weft.dev/weft/internal/control/ca"
)

// CA adapts a to the CA's credential hook (ca.ServiceOptions.ServiceAccounts):
// refusals stay refusals, any other error wraps ca.ErrCredentialUnavailable.
func (a *Authenticator) CA() ca.ServiceAccountAuthenticator { return caAuth{a} }

type caAuth struct{ a *Authenticator }

var _ ca.ServiceAccountAuthenticator = caAuth{}

func (c caAuth) AuthenticateServiceAccount(ctx context.Context, token string) (ca.ServiceAccount, error) {
	id, err := c.a.Authenticate(ctx, token)
	if err != nil {
		return ca.ServiceAccount{}, unavailable(err)
	}
	return ca.ServiceAccount{Namespace: id.Namespace, Name: id.ServiceAccount, Expires: id.Expires}, nil
}

func (c caAuth) ServiceAccountExists(ctx context.Context, ns, name string) error {
	return unavailable(c.a.ServiceAccountExists(ctx, ns, name))
}

// unavailable marks an error that is not a refusal as "could not check".
func unavailable(err error) error {
	if err == nil || ReasonOf(err) != "" {
		return err
	}
	return fmt.Errorf("%w: %w", ca.ErrCredentialUnavailable, err)
}
