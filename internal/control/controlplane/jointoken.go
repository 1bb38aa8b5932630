package controlplane

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/control/tokens"
)

// defaultTokenSpec is the scope of the join token `weft control` writes
// into its data dir for the one-machine quick start: any service and
// service account of namespace "default", no extra addresses, no expiry.
var defaultTokenSpec = tokens.Spec{
	Namespace:   tokens.DefaultNamespace,
	Description: "default token (" + connfile.JoinTokenFile + " in the data dir)",
}

// ensureJoinToken makes sure the join-token file in dir holds a token that
// ts knows, creating a default token on first start. A token that was
// revoked or has expired is kept (revocation must survive a restart; delete
// the file to get a new default token); a token ts does not know, or one
// in the old unscoped format, is replaced.
func ensureJoinToken(ts *tokens.Store, dir string, log *slog.Logger) error {
	if cur, err := connfile.ReadToken(dir, connfile.JoinTokenFile); err == nil && cur != "" {
		_, err := ts.Authenticate(cur)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, tokens.ErrRevoked), errors.Is(err, tokens.ErrExpired):
			log.Warn("the join token in the data dir cannot be used; delete the file to get a new default token at the next start", "file", filepath.Join(dir, connfile.JoinTokenFile), "err", err)
			return nil
		case errors.Is(err, tokens.ErrOldFormat):
			log.Warn("replacing the unscoped join token of an older weft with a scoped default token; proxies elsewhere that use the old token must get a new one (weft token create)", "file", filepath.Join(dir, connfile.JoinTokenFile))
		default:
			log.Warn("the join token in the data dir is not known to this control plane; writing a new default token", "file", filepath.Join(dir, connfile.JoinTokenFile), "err", err)
		}
	}
	t, secret, err := ts.Create(defaultTokenSpec)
	if err != nil {
		return fmt.Errorf("creating the default join token: %w", err)
	}
	if err := connfile.WriteFileAtomic(filepath.Join(dir, connfile.JoinTokenFile), []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", connfile.JoinTokenFile, err)
	}
	log.Info("wrote the default join token", "id", t.ID, "namespace", t.Namespace, "file", filepath.Join(dir, connfile.JoinTokenFile))
	return nil
}
