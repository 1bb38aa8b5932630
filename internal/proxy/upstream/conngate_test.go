package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
)

// countGate is a ConnGate with a fixed capacity.
type countGate struct{ open, max, closed int }

func (g *countGate) OpenConn() error {
	if g.open >= g.max {
		return errFull
	}
	g.open++
	return nil
}

func (g *countGate) CloseConn() { g.open--; g.closed++ }

var errFull = errors.New("full")

func pipeTLS(t *testing.T) *tls.Conn {
	a, b := net.Pipe()
	t.Cleanup(func() { b.Close() })
	return tls.Client(a, &tls.Config{InsecureSkipVerify: true})
}

// TestGatedDial checks the connection gate of the dial path: a reservation
// per connection, released once when it closes or when the dial fails; a
// refusal returned as is without dialling; no gate, no wrapping.
func TestGatedDial(t *testing.T) {
	g := &countGate{max: 1}
	ctx := context.WithValue(context.Background(), ConnGateKey{}, ConnGate(g))
	dials := 0
	dial := func() (*tls.Conn, error) { dials++; return pipeTLS(t), nil }

	c, err := gatedDial(ctx, dial)
	if err != nil || g.open != 1 {
		t.Fatalf("first dial: %v, open %d", err, g.open)
	}
	if _, ok := c.(interface{ NetConn() net.Conn }); !ok {
		t.Error("gated connection hides NetConn (idleAlive needs it)")
	}
	if _, err := gatedDial(ctx, dial); !errors.Is(err, errFull) || dials != 1 {
		t.Fatalf("over the gate: err %v after %d dials, want the gate's error and no dial", err, dials)
	}
	c.Close()
	c.Close()
	if g.open != 0 || g.closed != 1 {
		t.Errorf("after two Close: open %d, released %d times; want 0 and 1", g.open, g.closed)
	}

	failing := func() (*tls.Conn, error) { return nil, errors.New("refused") }
	if c, err := gatedDial(ctx, failing); err == nil || c != nil || g.open != 0 {
		t.Errorf("failed dial: conn %v err %v, open %d; want nil, an error, 0", c, err, g.open)
	}

	c, err = gatedDial(context.Background(), dial)
	if _, ok := c.(*tls.Conn); err != nil || !ok {
		t.Errorf("without a gate: %T %v, want the *tls.Conn itself", c, err)
	}
	if c, err := gatedDial(context.Background(), failing); err == nil || c != nil {
		t.Errorf("failed dial without a gate: %v %v, want a nil net.Conn", c, err)
	}
}
