package ca

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// nextBlobKey holds a root rotation in progress: the new root's certificate
// (with the rotation's start and phase length as PEM headers) and key. An
// empty value means no rotation.
const nextBlobKey = "ca/next.pem"

// Rotation phases, as Status reports them.
const (
	PhaseNone = "none"
	// PhaseDistribute: the bundle holds both roots, the old one signs.
	// Every proxy picks the new root up with its next certificate.
	PhaseDistribute = "distributing"
	// PhaseSwitch: the new root signs; the bundle still holds both.
	PhaseSwitch = "signing-with-new"
)

// rotation is a root rotation in progress; immutable.
type rotation struct {
	// old is the root being replaced, next its successor.
	old     *x509.Certificate
	oldKey  crypto.Signer
	next    *x509.Certificate
	nextKey crypto.Signer
	started time.Time
	// phase is how long each phase lasts: at least the longest workload
	// certificate lifetime, so that every live proxy has renewed (and
	// received the new bundle, then a certificate from the new root)
	// before the next phase begins.
	phase time.Duration
}

// signer is what signs at now: the old root, then the new one.
func (c *CA) signer(now time.Time) (*x509.Certificate, crypto.Signer) {
	r := c.rot.Load()
	switch {
	case r == nil:
		return c.root, c.rootKey
	case now.Before(r.started.Add(r.phase)):
		return r.old, r.oldKey
	default:
		return r.next, r.nextKey
	}
}

// bundleAt is the trust bundle at now, the signing root first.
func (c *CA) bundleAt(now time.Time) []*x509.Certificate {
	r := c.rot.Load()
	switch {
	case r == nil:
		return append([]*x509.Certificate(nil), c.bundle...)
	case now.Before(r.started.Add(r.phase)):
		return []*x509.Certificate{r.old, r.next}
	case now.Before(r.started.Add(2 * r.phase)):
		return []*x509.Certificate{r.next, r.old}
	default:
		return []*x509.Certificate{r.next}
	}
}

// RotationStatus describes a root rotation.
type RotationStatus struct {
	// Phase is PhaseNone, PhaseDistribute or PhaseSwitch.
	Phase string `json:"phase"`
	// Started is when weft ca rotate ran (zero without a rotation).
	Started time.Time `json:"started,omitzero"`
	// SigningSwitch is when the new root starts signing, OldDropped when
	// the old root leaves the bundle.
	SigningSwitch time.Time `json:"signingSwitch,omitzero"`
	OldDropped    time.Time `json:"oldDropped,omitzero"`
	// Signing is the serial (hex) of the root that signs now; Bundle the
	// serials of the roots trusted now.
	Signing string   `json:"signing"`
	Bundle  []string `json:"bundle"`
	// NewRoot is the serial (hex) of the new root while a rotation runs.
	NewRoot string `json:"newRoot,omitempty"`
}

// Status describes the roots and the rotation in progress.
func (c *CA) Status() RotationStatus {
	now := c.now()
	cert, _ := c.signer(now)
	st := RotationStatus{Phase: PhaseNone, Signing: cert.SerialNumber.Text(16)}
	for _, b := range c.bundleAt(now) {
		st.Bundle = append(st.Bundle, b.SerialNumber.Text(16))
	}
	if r := c.rot.Load(); r != nil && now.Before(r.started.Add(2*r.phase)) {
		st.Started, st.SigningSwitch, st.OldDropped = r.started, r.started.Add(r.phase), r.started.Add(2*r.phase)
		st.Phase, st.NewRoot = PhaseDistribute, r.next.SerialNumber.Text(16)
		if !now.Before(st.SigningSwitch) {
			st.Phase = PhaseSwitch
		}
	}
	return st
}

// Rotate starts a root rotation: a new self-signed root joins the trust
// bundle at once; after phase it signs every new certificate (the old root
// still trusted); after another phase the old root leaves the bundle. phase
// must be at least the workload certificate lifetime. A rotation in
// progress, or an external CA (rotated by its own PKI), is an error.
func (c *CA) Rotate(phase time.Duration) (RotationStatus, error) {
	if c.p == nil {
		return RotationStatus{}, errors.New("ca: the CA is an external intermediate (--ca-cert); rotate it in its PKI and restart with the new files")
	}
	if phase <= 0 {
		return RotationStatus{}, errors.New("ca: rotation phase must be positive")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if st := c.Status(); st.Phase != PhaseNone {
		return st, fmt.Errorf("ca: a root rotation is in progress (%s since %s; the old root leaves the bundle at %s)",
			st.Phase, st.Started.Format(time.RFC3339), st.OldDropped.Format(time.RFC3339))
	}
	cur, curKey := c.signer(now)
	if c.rot.Load() != nil {
		// A finished rotation: its new root is the root from now on.
		blob, err := encodeRoot(cur, curKey)
		if err != nil {
			return RotationStatus{}, fmt.Errorf("ca: encoding root: %w", err)
		}
		if err := c.p.PutBlob(rootBlobKey, blob); err != nil {
			return RotationStatus{}, fmt.Errorf("ca: storing root: %w", err)
		}
	}
	next, key, err := newRoot(c.td, now)
	if err != nil {
		return RotationStatus{}, fmt.Errorf("ca: creating root: %w", err)
	}
	r := &rotation{old: cur, oldKey: curKey, next: next, nextKey: key, started: now, phase: phase}
	blob, err := encodeRotation(r)
	if err != nil {
		return RotationStatus{}, err
	}
	if err := c.p.PutBlob(nextBlobKey, blob); err != nil {
		return RotationStatus{}, fmt.Errorf("ca: storing new root: %w", err)
	}
	c.rot.Store(r)
	c.logger.Info("root rotation started", "new_root", next.SerialNumber.Text(16), "old_root", cur.SerialNumber.Text(16),
		"signing_switch", now.Add(phase), "old_dropped", now.Add(2*phase))
	return c.Status(), nil
}

// collapse makes a finished rotation's new root the stored root. It runs
// before the CA is shared.
func (c *CA) collapse(r *rotation) error {
	blob, err := encodeRoot(r.next, r.nextKey)
	if err != nil {
		return fmt.Errorf("ca: encoding root: %w", err)
	}
	if err := c.p.PutBlob(rootBlobKey, blob); err != nil {
		return fmt.Errorf("ca: storing root: %w", err)
	}
	if err := c.p.PutBlob(nextBlobKey, []byte{}); err != nil {
		return fmt.Errorf("ca: clearing finished rotation: %w", err)
	}
	c.root, c.rootKey, c.bundle = r.next, r.nextKey, []*x509.Certificate{r.next}
	return nil
}

// loadRotation restores a stored rotation; a finished one is collapsed.
func (c *CA) loadRotation() error {
	blob, err := c.p.GetBlob(nextBlobKey)
	if err != nil {
		return fmt.Errorf("ca: loading rotation: %w", err)
	}
	if len(blob) == 0 {
		return nil
	}
	r, err := decodeRotation(blob)
	if err != nil {
		return fmt.Errorf("ca: decoding stored rotation %q: %w", nextBlobKey, err)
	}
	if err := checkRoot(r.next, c.td); err != nil {
		return fmt.Errorf("ca: stored new root: %w", err)
	}
	if !c.now().Before(r.started.Add(2 * r.phase)) {
		return c.collapse(r)
	}
	r.old, r.oldKey = c.root, c.rootKey
	c.rot.Store(r)
	return nil
}

func encodeRotation(r *rotation) ([]byte, error) {
	blob, err := encodeRoot(r.next, r.nextKey)
	if err != nil {
		return nil, fmt.Errorf("ca: encoding new root: %w", err)
	}
	b, rest := pem.Decode(blob)
	b.Headers = map[string]string{"Started": r.started.UTC().Format(time.RFC3339Nano), "Phase": r.phase.String()}
	return append(pem.EncodeToMemory(b), rest...), nil
}

func decodeRotation(blob []byte) (*rotation, error) {
	cert, key, err := decodeRoot(blob)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(blob)
	started, err := time.Parse(time.RFC3339Nano, b.Headers["Started"])
	if err != nil {
		return nil, fmt.Errorf("Started header: %w", err)
	}
	phase, err := time.ParseDuration(b.Headers["Phase"])
	if err != nil || phase <= 0 {
		return nil, fmt.Errorf("Phase header %q: %w", b.Headers["Phase"], err)
	}
	return &rotation{next: cert, nextKey: key, started: started, phase: phase}, nil
}

// FollowRotation adopts a rotation that another replica sharing the
// CA's Persistence started, as Rotate would have here: the stored new
// root joins the bundle and signs on the same schedule, and the root that
// signs here now becomes the one it replaces. It reports whether it
// adopted one; a stored rotation it already follows, or none, changes
// nothing. Call it when the store says the rotation's blob changed.
func (c *CA) FollowRotation() (bool, error) {
	if c.p == nil {
		return false, nil // an external CA does not rotate here
	}
	blob, err := c.p.GetBlob(nextBlobKey)
	if err != nil {
		return false, fmt.Errorf("ca: loading rotation: %w", err)
	}
	if len(blob) == 0 {
		return false, nil
	}
	r, err := decodeRotation(blob)
	if err != nil {
		return false, fmt.Errorf("ca: decoding stored rotation %q: %w", nextBlobKey, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.rot.Load(); cur != nil && cur.next.Equal(r.next) && cur.started.Equal(r.started) {
		return false, nil
	}
	if err := checkRoot(r.next, c.td); err != nil {
		return false, fmt.Errorf("ca: stored new root: %w", err)
	}
	r.old, r.oldKey = c.signer(c.now())
	if r.old.Equal(r.next) {
		return false, nil // this replica already signs with it
	}
	c.rot.Store(r)
	c.logger.Info("following the root rotation another replica started", "new_root", r.next.SerialNumber.Text(16),
		"old_root", r.old.SerialNumber.Text(16), "signing_switch", r.started.Add(r.phase), "old_dropped", r.started.Add(2*r.phase))
	return true, nil
}
