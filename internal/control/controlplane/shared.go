package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"time"

	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/control/ca"
	"weft.dev/weft/internal/control/seal"
	"weft.dev/weft/internal/control/store"
)

// adminTokenBlobKey keeps the admin token replicas share, sealed.
const adminTokenBlobKey = "admin/token"

// replicated is what a control plane on a store several replicas share
// (etcd, Kubernetes) adds to one on the embedded file: the CA root and the
// admin token live in the store, sealed with the key every replica is
// given, so that a proxy or an operator may use any replica.
type replicated struct {
	shared store.Shared
	// caBlobs is the CA's persistence: the store, sealing ca/.
	caBlobs *seal.Blobs
	// secrets seals admin/.
	secrets *seal.Blobs
}

// openReplicated returns nil, nil when st is not shared.
func openReplicated(st store.Store, opts Options, log *slog.Logger) (*replicated, error) {
	sh, ok := st.(store.Shared)
	if !ok {
		return nil, nil
	}
	blobs, ok := st.(seal.Store)
	if !ok {
		return nil, fmt.Errorf("store %T is shared but keeps no blobs", st)
	}
	if opts.SealKeyFile == "" {
		return nil, errors.New("--seal-key-file is required with a store several replicas share (etcd, kubernetes): " +
			"every replica needs the same key to open the CA root and admin token kept in the store")
	}
	key, created, err := seal.LoadOrCreateKey(opts.SealKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--seal-key-file: %w", err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		return nil, fmt.Errorf("--seal-key-file %s: %w", opts.SealKeyFile, err)
	}
	if created {
		log.Warn("created a new seal key: give every other replica a copy of it before starting them",
			"file", opts.SealKeyFile, "fingerprint", sealer.Fingerprint())
	} else {
		log.Info("seal key loaded", "file", opts.SealKeyFile, "fingerprint", sealer.Fingerprint(), "replica", sh.ReplicaID())
	}
	return &replicated{
		shared:  sh,
		caBlobs: &seal.Blobs{Store: blobs, Sealer: sealer, Prefix: "ca/"},
		secrets: &seal.Blobs{Store: blobs, Sealer: sealer, Prefix: "admin/"},
	}, nil
}

// caPersistence is where the CA keeps its root: sealed in the shared store,
// else the store as it is.
func (r *replicated) caPersistence(st store.Store) ca.Persistence {
	if r == nil {
		return st
	}
	return r.caBlobs
}

// adminToken is the admin token of the mesh: the one the replicas share
// (the first replica to start creates it), written to the data dir's
// token file so that the CLI on this machine finds it; without a shared
// store, the data dir's own.
func (r *replicated) adminToken(dir string) (string, error) {
	if r == nil {
		return ensureToken(dir, connfile.AdminTokenFile)
	}
	fresh, err := ca.NewToken()
	if err != nil {
		return "", err
	}
	stored, err := r.secrets.CreateBlob(adminTokenBlobKey, []byte(fresh))
	if err != nil {
		if errors.Is(err, seal.ErrWrongKey) {
			return "", fmt.Errorf("opening the shared admin token: %w (every replica needs the same --seal-key-file)", err)
		}
		return "", fmt.Errorf("creating the shared admin token: %w", err)
	}
	tok := string(bytes.TrimSpace(stored))
	if tok == "" {
		return "", fmt.Errorf("the shared admin token %q in the store is empty", adminTokenBlobKey)
	}
	if cur, err := connfile.ReadToken(dir, connfile.AdminTokenFile); err == nil && cur == tok {
		return tok, nil
	}
	if err := connfile.WriteFileAtomic(filepath.Join(dir, connfile.AdminTokenFile), []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", connfile.AdminTokenFile, err)
	}
	return tok, nil
}

// replicaID is this replica's ID, or "" without a shared store.
func (r *replicated) replicaID() string {
	if r == nil {
		return ""
	}
	return r.shared.ReplicaID()
}

// replicasPrefix holds one leased key per live replica: its xDS address.
const replicasPrefix = "replicas/"

// advertise publishes this replica's xDS address (leased: it goes with
// the replica) and keeps the connection file's XDSAddresses listing every
// live replica's, so that a proxy started from this data dir can fail over
// to any of them. An address with an unspecified host (0.0.0.0:15010) is
// not dialable elsewhere and is published only as --advertise-xds names
// it.
func (r *replicated) advertise(ctx context.Context, dir string, conn connfile.Connection, advertised string, log *slog.Logger) {
	self := advertised
	if self == "" {
		if host, _, err := net.SplitHostPort(conn.XDS); err == nil && !net.ParseIP(host).IsUnspecified() {
			self = conn.XDS
		}
	}
	id := r.shared.ReplicaID()
	if self == "" {
		log.Warn("xDS listens on an unspecified address: not advertising it to the other replicas' connection files (set --advertise-xds)", "listen", conn.XDS)
	} else {
		for ctx.Err() == nil {
			err := r.shared.PutLeased(ctx, replicasPrefix+id, []byte(self))
			if err == nil {
				break
			}
			log.Warn("advertising this replica's xDS address; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	addrs := map[string]string{}
	var last []string
	for ctx.Err() == nil {
		err := r.shared.WatchBlobs(ctx, replicasPrefix, func(key string, val []byte) {
			if val == nil {
				delete(addrs, key)
			} else {
				addrs[key] = string(val)
			}
			list := []string{conn.XDS}
			for _, a := range addrs {
				if a != self && !slices.Contains(list, a) {
					list = append(list, a)
				}
			}
			slices.Sort(list[1:])
			if slices.Equal(list, last) {
				return
			}
			last = list
			c := conn
			c.XDSAddresses = list
			if err := connfile.Write(dir, c); err != nil {
				log.Warn("writing the connection file with the replicas' addresses", "err", err)
			}
		})
		if ctx.Err() != nil {
			return
		}
		log.Warn("watching the other replicas' addresses; restarting the watch", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// followRotations adopts the CA root rotations other replicas start: on
// every change the store reports under the CA's blobs (the watch's first
// listing included) it asks authority to follow the stored rotation, which
// is idempotent. The watch is restarted if it fails.
func (r *replicated) followRotations(ctx context.Context, authority *ca.CA, log *slog.Logger) {
	changed := make(chan struct{}, 1)
	go func() {
		for ctx.Err() == nil {
			err := r.shared.WatchBlobs(ctx, r.caBlobs.Prefix, func(string, []byte) {
				select {
				case changed <- struct{}{}:
				default:
				}
			})
			if ctx.Err() != nil {
				return
			}
			log.Warn("watching the CA's blobs for root rotations; restarting the watch", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			if _, err := authority.FollowRotation(); err != nil {
				log.Error("following a root rotation another replica started", "err", err)
			}
		}
	}
}
