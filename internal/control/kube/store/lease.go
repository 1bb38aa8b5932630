package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Leased keys: each replica that writes one holds a coordination.k8s.io
// Lease named weft-replica-<hash of its ID> in the system namespace and
// renews it every third of the TTL. Its leased keys are blob Secrets
// labelled with the hash and owned by the Lease. Every replica sweeps: a
// Lease not renewed for its duration is expired, and the sweeper deletes
// its keys, then the Lease. (Kubernetes' garbage collector would also
// delete the keys once the Lease is deleted, through the owner reference,
// but the sweep does not depend on it.) A replica that stops cleanly
// deletes its keys and Lease itself.

// leaseState is this replica's Lease.
type leaseState struct {
	name  string
	label string
	uid   types.UID
	stop  context.CancelFunc
	done  chan struct{}
}

// PutLeased stores val under key for as long as this replica renews its
// Lease: after it stops, the key disappears within about one and a half
// LeaseTTL (the TTL plus a sweep period).
func (s *Store) PutLeased(ctx context.Context, key string, val []byte) error {
	l, err := s.ensureLease(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	return s.putBlob(ctx, key, val, l)
}

// DeleteLeased deletes a key stored with PutLeased.
func (s *Store) DeleteLeased(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	return s.deleteBlob(ctx, key)
}

func (s *Store) leaseSeconds() int32 {
	return int32(max(1, (s.opts.LeaseTTL+time.Second-1)/time.Second))
}

// ensureLease creates this replica's Lease on first use and starts
// renewing it.
func (s *Store) ensureLease(ctx context.Context) (*leaseState, error) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if s.lease != nil {
		return s.lease, nil
	}
	if s.ctx.Err() != nil {
		return nil, errors.New("store closed")
	}
	label := replicaLabel(s.replica)
	l := &leaseState{name: "weft-replica-" + label, label: label, done: make(chan struct{})}
	uid, err := s.writeLease(ctx, l.name)
	if err != nil {
		return nil, err
	}
	l.uid = uid
	rctx, stop := context.WithCancel(s.ctx)
	l.stop = stop
	s.lease = l
	go s.renewLoop(rctx, l)
	return l, nil
}

// writeLease creates or renews the Lease name, returning its UID.
func (s *Store) writeLease(ctx context.Context, name string) (types.UID, error) {
	leases := s.kube.CoordinationV1().Leases(s.opts.SystemNamespace)
	now := metav1.NewMicroTime(time.Now())
	secs := s.leaseSeconds()
	for attempt := 1; ; attempt++ {
		cur, err := leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			l := &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.opts.SystemNamespace,
					Labels:      map[string]string{LabelReplicaLease: "true", "app.kubernetes.io/managed-by": "weft"},
					Annotations: map[string]string{AnnotationReplicaID: s.replica}},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: &s.replica, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
			}
			out, err := leases.Create(ctx, l, metav1.CreateOptions{FieldManager: FieldManager})
			if apierrors.IsAlreadyExists(err) && attempt < maxWriteAttempts {
				continue
			}
			if err != nil {
				return "", fmt.Errorf("creating replica lease %s: %w", name, hint(err))
			}
			return out.UID, nil
		}
		if err != nil {
			return "", fmt.Errorf("reading replica lease %s: %w", name, hint(err))
		}
		cur.Spec.HolderIdentity = &s.replica
		cur.Spec.LeaseDurationSeconds = &secs
		cur.Spec.RenewTime = &now
		out, err := leases.Update(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager})
		if apierrors.IsConflict(err) && attempt < maxWriteAttempts {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("renewing replica lease %s: %w", name, hint(err))
		}
		return out.UID, nil
	}
}

func (s *Store) renewLoop(ctx context.Context, l *leaseState) {
	defer close(l.done)
	t := time.NewTicker(max(s.opts.LeaseTTL/3, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, s.opts.LeaseTTL/3+time.Second)
		uid, err := s.writeLease(rctx, l.name)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("renewing the replica lease failed; leased keys vanish if it stays failed", "lease", l.name, "err", err)
			}
			continue
		}
		if uid != l.uid {
			// Another replica found the Lease expired and swept it:
			// the keys it owned are gone and their owners must write
			// them again.
			s.log.Warn("the replica lease had expired and was recreated", "lease", l.name)
			s.leaseMu.Lock()
			l.uid = uid
			s.leaseMu.Unlock()
		}
	}
}

// releaseLease deletes this replica's leased keys and its Lease.
func (s *Store) releaseLease() error {
	s.leaseMu.Lock()
	l := s.lease
	s.lease = nil
	s.leaseMu.Unlock()
	if l == nil {
		return nil
	}
	l.stop()
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.WriteTimeout)
	defer cancel()
	err := s.deleteReplicaKeys(ctx, l.label, time.Time{})
	if derr := s.kube.CoordinationV1().Leases(s.opts.SystemNamespace).Delete(ctx, l.name, metav1.DeleteOptions{}); derr != nil && !apierrors.IsNotFound(derr) {
		err = errors.Join(err, fmt.Errorf("deleting replica lease %s: %w", l.name, derr))
	}
	return err
}

// deleteReplicaKeys deletes the leased keys of replica label created
// before (zero: all of them).
func (s *Store) deleteReplicaKeys(ctx context.Context, label string, before time.Time) error {
	s.mu.Lock()
	var names []string
	for _, e := range s.blobs.byKey {
		if e.replica == label && (before.IsZero() || e.created.Time.Before(before)) {
			names = append(names, e.name)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, n := range names {
		if err := s.kube.CoreV1().Secrets(s.opts.SystemNamespace).Delete(ctx, n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting leased key %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// sweepLoop deletes the leased keys of replicas whose Lease expired.
func (s *Store) sweepLoop(ctx context.Context) {
	t := time.NewTicker(max(s.opts.LeaseTTL/2, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.sweep(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("sweeping expired replicas' leased keys", "err", err)
		}
	}
}

// sweep runs one sweep at now.
func (s *Store) sweep(ctx context.Context, now time.Time) error {
	leases := s.kube.CoordinationV1().Leases(s.opts.SystemNamespace)
	list, err := leases.List(ctx, metav1.ListOptions{LabelSelector: LabelReplicaLease + "=true"})
	if err != nil {
		return fmt.Errorf("listing replica leases: %w", hint(err))
	}
	own := replicaLabel(s.replica)
	alive := map[string]bool{own: true}
	var errs []error
	for _, l := range list.Items {
		label, ok := strings.CutPrefix(l.Name, "weft-replica-")
		if !ok || label == "" {
			continue
		}
		if label == own || !leaseExpired(&l, now) {
			alive[label] = true
			continue
		}
		s.log.Info("replica lease expired; deleting its leased keys", "lease", l.Name, "replica", l.Annotations[AnnotationReplicaID])
		if err := s.deleteReplicaKeys(ctx, label, time.Time{}); err != nil {
			errs = append(errs, err)
			continue
		}
		rv := l.ResourceVersion
		// Only the expired version: a replica that renewed meanwhile keeps
		// its Lease.
		err := leases.Delete(ctx, l.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, fmt.Errorf("deleting expired lease %s: %w", l.Name, err))
		}
	}
	// Leased keys of a replica with no Lease at all (deleted by hand, or a
	// sweep that stopped half way), old enough not to be racing the
	// Lease's creation.
	s.mu.Lock()
	orphans := map[string]bool{}
	for _, e := range s.blobs.byKey {
		if e.replica != "" && !alive[e.replica] {
			orphans[e.replica] = true
		}
	}
	s.mu.Unlock()
	for label := range orphans {
		if err := s.deleteReplicaKeys(ctx, label, now.Add(-s.opts.LeaseTTL)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// leaseExpired reports whether l was not renewed within its duration.
func leaseExpired(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return true
	}
	return l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second).Before(now)
}
