package seal_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"weft.dev/weft/internal/control/ca"
	"weft.dev/weft/internal/control/seal"
)

func sealer(t *testing.T, b byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(bytes.Repeat([]byte{b}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	s, other := sealer(t, 1), sealer(t, 2)
	secret := []byte("-----BEGIN PRIVATE KEY-----")
	b, err := s.Seal("ca/root.pem", secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, secret) || !seal.IsSealed(b) {
		t.Fatalf("sealed value shows the secret or is not marked sealed: %q", b)
	}
	got, err := s.Open("ca/root.pem", b)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	tampered := bytes.Clone(b)
	tampered[len(tampered)-1] ^= 1
	tests := []struct {
		name, key string
		val       []byte
		with      *seal.Sealer
		wantErr   error
		wantMsg   string
	}{
		{"another key", "ca/root.pem", b, other, seal.ErrWrongKey, s.Fingerprint()},
		{"tampered", "ca/root.pem", tampered, s, nil, "does not open"},
		{"moved to another store key", "ca/next.pem", b, s, nil, "does not open"},
		{"not sealed", "ca/root.pem", secret, s, seal.ErrNotSealed, "unsealed"},
		{"truncated", "ca/root.pem", b[:20], s, nil, "malformed"},
	}
	for _, tt := range tests {
		_, err := tt.with.Open(tt.key, tt.val)
		if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantMsg) {
			t.Errorf("%s: Open error %v, want %v containing %q", tt.name, err, tt.wantErr, tt.wantMsg)
		}
	}
	if _, err := seal.New(make([]byte, 16)); err == nil {
		t.Error("a 16-byte key was accepted")
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "ca-seal.key")
	k1, created, err := seal.LoadOrCreateKey(path)
	if err != nil || !created || len(k1) != seal.KeySize {
		t.Fatalf("first load: %d bytes, created %v, %v", len(k1), created, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	k2, created, err := seal.LoadOrCreateKey(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("second load: created %v, same %v, %v", created, bytes.Equal(k1, k2), err)
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("not hex\n"), 0o600)
	if _, _, err := seal.LoadOrCreateKey(bad); err == nil || !strings.Contains(err.Error(), "hex") {
		t.Errorf("malformed key file: %v", err)
	}
}

// sharedStore is a store of several replicas: CreateBlob is atomic.
type sharedStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *sharedStore) GetBlob(k string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k], nil
}

func (s *sharedStore) PutBlob(k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = v
	return nil
}

func (s *sharedStore) CreateBlob(k string, v []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[k]; ok {
		return cur, nil
	}
	s.m[k] = v
	return v, nil
}

// TestReplicasShareOneRoot: CAs of replicas starting at the same time over
// one store end up with one root; the key is stored sealed; a replica
// with another key file refuses to start, saying so.
func TestReplicasShareOneRoot(t *testing.T) {
	st := &sharedStore{m: map[string][]byte{}}
	s := sealer(t, 7)
	const n = 5
	cas := make([]*ca.CA, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cas[i], errs[i] = ca.New(context.Background(), &seal.Blobs{Store: st, Sealer: s, Prefix: "ca/"}, "weft.local", nil)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		if !cas[i].Bundle()[0].Equal(cas[0].Bundle()[0]) {
			t.Fatalf("replica %d has another root than replica 0", i)
		}
	}
	raw := st.m["ca/root.pem"]
	if !seal.IsSealed(raw) || bytes.Contains(raw, []byte("PRIVATE KEY")) {
		t.Errorf("the root is stored unsealed: %.60q", raw)
	}
	_, err := ca.New(context.Background(), &seal.Blobs{Store: st, Sealer: sealer(t, 8), Prefix: "ca/"}, "weft.local", nil)
	if !errors.Is(err, seal.ErrWrongKey) || !strings.Contains(err.Error(), "same key file") {
		t.Errorf("a replica with another key: %v, want ErrWrongKey telling every replica needs the same key file", err)
	}
}
