package tokens

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// sharedStore is a Persistence several Stores (replicas) share, with a
// watch and a single-key read, as the etcd store offers.
type sharedStore struct {
	mu       sync.Mutex
	m        map[string][]byte
	watchers []func(string, []byte)
	// watchDelay holds watch events back, as a slow watch would.
	watchDelay time.Duration
}

func (s *sharedStore) PutBlob(key string, val []byte) error {
	s.mu.Lock()
	s.m[key] = append([]byte(nil), val...)
	ws := slices.Clone(s.watchers)
	s.mu.Unlock()
	for _, fn := range ws {
		fn(key, val)
	}
	return nil
}

func (s *sharedStore) GetBlob(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key], nil
}

func (s *sharedStore) BlobsWithPrefix(prefix string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range s.m {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out, nil
}

func (s *sharedStore) WatchBlobs(ctx context.Context, prefix string, fn func(string, []byte)) error {
	s.mu.Lock()
	for k, v := range s.m {
		if strings.HasPrefix(k, prefix) {
			fn(k, v)
		}
	}
	// Events reach fn in order, each watchDelay after it happened.
	type event struct {
		at  time.Time
		key string
		val []byte
	}
	events := make(chan event, 100)
	s.watchers = append(s.watchers, func(k string, v []byte) {
		if strings.HasPrefix(k, prefix) {
			events <- event{time.Now(), k, v}
		}
	})
	s.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-events:
			time.Sleep(time.Until(e.at.Add(s.watchDelay)))
			fn(e.key, e.val)
		}
	}
}

// TestTokensAcrossReplicas: a token created on replica A is accepted by
// replica B at once (read from the store before the watch delivers it),
// and a revocation on B is refused by A once the watch delivers it; a
// malformed record in the store is ignored, not trusted.
func TestTokensAcrossReplicas(t *testing.T) {
	st := &sharedStore{m: map[string][]byte{}, watchDelay: 200 * time.Millisecond}
	a, err := Open(st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, r := range []*Store{a, b} {
		wg.Go(func() { r.Follow(ctx, st) })
	}
	defer func() { cancel(); wg.Wait() }()

	tok, secret, err := a.Create(Spec{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(secret); err != nil {
		t.Fatalf("replica B refused a token replica A just created: %v", err)
	}
	if _, err := b.Active(tok.ID); err != nil {
		t.Fatalf("replica B: token not active: %v", err)
	}
	// The wrong secret for a known ID is refused on either replica.
	id, sec, _ := Parse(secret)
	wrong := "A" + sec[1:]
	if sec[0] == 'A' {
		wrong = "B" + sec[1:]
	}
	for name, r := range map[string]*Store{"A": a, "B": b} {
		if _, err := r.Authenticate(id + "." + wrong); !errors.Is(err, ErrUnknown) {
			t.Errorf("replica %s: wrong secret: %v, want ErrUnknown", name, err)
		}
	}

	if _, err := b.Revoke(tok.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := a.Authenticate(secret)
		if errors.Is(err, ErrRevoked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica A still accepts a token revoked on B: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A record whose ID does not match its key is not trusted.
	if err := st.PutBlob(blobPrefix+"0123456789abcdef", []byte(`{"id":"other","secretHash":"AAAA"}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := a.Active("0123456789abcdef"); !errors.Is(err, ErrUnknown) {
		t.Errorf("a malformed record was trusted: %v", err)
	}
}
