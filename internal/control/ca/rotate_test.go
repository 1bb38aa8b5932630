package ca

import (
	"context"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// TestRootRotation: the new root is trusted at once, signs after one phase,
// and is alone after two; the rotation survives a restart; a second rotation
// while one runs is refused.
func TestRootRotation(t *testing.T) {
	c, st := newTestCA(t, "weft.local")
	now := time.Now()
	c.now = func() time.Time { return now }
	oldRoot := c.Bundle()[0]
	sign := func(c *CA) string {
		t.Helper()
		chain, _, err := c.SignCSR(makeCSR(t, newKey(t), csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/web"}}), time.Hour, testGrant)
		if err != nil {
			t.Fatal(err)
		}
		td := spiffeid.RequireTrustDomainFromString("weft.local")
		if _, _, err := x509svid.Verify(chain, x509bundle.FromX509Authorities(td, c.Bundle()), x509svid.WithTime(c.now())); err != nil {
			t.Fatalf("leaf does not verify against the bundle: %v", err)
		}
		for _, r := range c.Bundle() {
			if chain[0].CheckSignatureFrom(r) == nil {
				return r.SerialNumber.Text(16)
			}
		}
		return ""
	}
	if _, err := c.Rotate(time.Hour); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	st1 := c.Status()
	if st1.Phase != PhaseDistribute || len(st1.Bundle) != 2 || st1.Signing != oldRoot.SerialNumber.Text(16) {
		t.Fatalf("after rotate: %+v, want both roots, the old one signing", st1)
	}
	if got := sign(c); got != st1.Signing {
		t.Errorf("signed by %s in the distribute phase, want the old root %s", got, st1.Signing)
	}
	if _, err := c.Rotate(time.Hour); err == nil {
		t.Error("second Rotate during a rotation accepted")
	}

	// A restart in the middle keeps the rotation.
	c2, err := New(context.Background(), st, "weft.local", nil)
	if err != nil {
		t.Fatal(err)
	}
	c2.now = func() time.Time { return now.Add(90 * time.Minute) }
	st2 := c2.Status()
	if st2.Phase != PhaseSwitch || len(st2.Bundle) != 2 || st2.Signing != st1.Bundle[1] {
		t.Fatalf("after one phase: %+v, want both roots, the new one %s signing", st2, st1.Bundle[1])
	}
	if got := sign(c2); got != st1.Bundle[1] {
		t.Errorf("signed by %s after the switch, want the new root", got)
	}
	if got := c2.IssuedRoot("spiffe://weft.local/ns/default/sa/web"); got != st1.Bundle[1] {
		t.Errorf("IssuedRoot = %q, want the new root %s", got, st1.Bundle[1])
	}
	if sc, err := c2.ServerCertificate([]string{"weft-control"}, nil); err != nil || sc.Leaf.CheckSignatureFrom(c2.Bundle()[0]) != nil {
		t.Errorf("serving certificate not from the new root: %v", err)
	}

	c2.now = func() time.Time { return now.Add(150 * time.Minute) }
	if st3 := c2.Status(); st3.Phase != PhaseNone || len(st3.Bundle) != 1 || st3.Bundle[0] != st1.Bundle[1] {
		t.Fatalf("after two phases: %+v, want the new root alone", st3)
	}
	// The next rotation starts from the new root.
	if st4, err := c2.Rotate(time.Hour); err != nil || st4.Signing != st1.Bundle[1] || len(st4.Bundle) != 2 {
		t.Fatalf("Rotate after a finished rotation: %+v, %v", st4, err)
	}
	// A restart after a finished rotation loads the new root as the root.
	later := now.Add(10 * time.Hour)
	st.PutBlob(nextBlobKey, nil)
	c3, err := New(context.Background(), st, "weft.local", nil)
	if err != nil {
		t.Fatal(err)
	}
	c3.now = func() time.Time { return later }
	if b := c3.Bundle(); len(b) != 1 || b[0].SerialNumber.Text(16) != st1.Bundle[1] {
		t.Errorf("after restart: bundle %d roots, want the rotated root alone", len(b))
	}
}

// TestRotateExternalRefused: an external CA is rotated in its own PKI.
func TestRotateExternalRefused(t *testing.T) {
	root := issue(t, nil, nil)
	c, err := NewExternal(context.Background(), External{Cert: root.certPEM(), Key: root.keyPEM(t)}, "weft.local", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rotate(time.Hour); err == nil {
		t.Error("Rotate on an external CA accepted")
	}
}

// TestFollowRotation: two replicas share one Persistence. A rotation
// started on one is adopted by the other on FollowRotation, with the same
// schedule; following it again changes nothing; the next rotation, started
// on the follower after the first finished, is followed back.
func TestFollowRotation(t *testing.T) {
	a, st := newTestCA(t, "weft.local")
	b, err := New(context.Background(), st, "weft.local", nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	a.now, b.now = clock, clock
	if ok, err := b.FollowRotation(); ok || err != nil {
		t.Fatalf("FollowRotation without a rotation = %v, %v; want false, nil", ok, err)
	}
	stA, err := a.Rotate(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := b.FollowRotation(); !ok || err != nil {
		t.Fatalf("FollowRotation after a's Rotate = %v, %v; want true, nil", ok, err)
	}
	if ok, _ := b.FollowRotation(); ok {
		t.Error("following the same rotation twice adopted it again")
	}
	same := func(when string) {
		t.Helper()
		sa, sb := a.Status(), b.Status()
		if sa.Phase != sb.Phase || sa.Signing != sb.Signing || len(sa.Bundle) != len(sb.Bundle) || !sa.SigningSwitch.Equal(sb.SigningSwitch) {
			t.Fatalf("%s: a %+v, b %+v; want the same", when, sa, sb)
		}
		for i := range sa.Bundle {
			if sa.Bundle[i] != sb.Bundle[i] {
				t.Fatalf("%s: bundles %v and %v", when, sa.Bundle, sb.Bundle)
			}
		}
	}
	same("distributing")
	if b.Status().NewRoot != stA.NewRoot {
		t.Fatalf("b follows new root %s, a rotates to %s", b.Status().NewRoot, stA.NewRoot)
	}
	now = now.Add(90 * time.Minute)
	same("signing with the new root")
	now = now.Add(time.Hour)
	same("old root dropped")

	// b starts the next rotation; a follows it from the root it signs with.
	stB, err := b.Rotate(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if stB.Signing != stA.NewRoot {
		t.Fatalf("second rotation replaces %s, want the first rotation's root %s", stB.Signing, stA.NewRoot)
	}
	if ok, err := a.FollowRotation(); !ok || err != nil {
		t.Fatalf("a FollowRotation of b's rotation = %v, %v", ok, err)
	}
	same("second rotation")
}
