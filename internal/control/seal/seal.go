// Package seal encrypts the secrets control-plane replicas keep in a
// shared store (the CA's signing key): AES-256-GCM under a key every
// replica reads from a file of its own, so that whoever can read the
// store (an etcd backup, a member's disk) cannot sign certificates without
// the key file too. Each sealed value names its key by a fingerprint, so a
// replica with another key refuses to start with an error saying so
// instead of failing on garbage.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of a sealing key: AES-256.
const KeySize = 32

// magic starts every sealed value: version, then the key's fingerprint.
const magic = "weft-sealed-v1:"

// ErrWrongKey is returned (wrapped) when a value was sealed with another
// key than the Sealer's.
var ErrWrongKey = errors.New("sealed with a different key")

// ErrNotSealed is returned (wrapped) when a value that should be sealed
// is not.
var ErrNotSealed = errors.New("stored unsealed")

// Sealer seals and opens values with one key.
type Sealer struct {
	aead cipher.AEAD
	fp   string
}

// New returns a Sealer for key, which must be KeySize bytes.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	sum := sha256.Sum256(append([]byte("weft seal key fingerprint\x00"), key...))
	return &Sealer{aead: aead, fp: hex.EncodeToString(sum[:8])}, nil
}

// Fingerprint names the key without revealing it.
func (s *Sealer) Fingerprint() string { return s.fp }

// Seal encrypts val for the store key it is kept under (bound to it: a
// sealed value copied to another key does not open).
func (s *Sealer) Seal(storeKey string, val []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out := []byte(magic + s.fp + ":")
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, val, []byte(storeKey)), nil
}

// IsSealed reports whether b is a sealed value.
func IsSealed(b []byte) bool { return bytes.HasPrefix(b, []byte(magic)) }

// Open decrypts a value Seal made for storeKey. A value sealed with
// another key is ErrWrongKey, naming both fingerprints; one that is not
// sealed is ErrNotSealed.
func (s *Sealer) Open(storeKey string, b []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(b, []byte(magic))
	if !ok {
		return nil, fmt.Errorf("%q: %w", storeKey, ErrNotSealed)
	}
	fp, body, ok := bytes.Cut(rest, []byte(":"))
	if !ok {
		return nil, fmt.Errorf("%q: malformed sealed value", storeKey)
	}
	if string(fp) != s.fp {
		return nil, fmt.Errorf("%q: %w (key %s; this replica's key is %s): every replica needs the same key file", storeKey, ErrWrongKey, fp, s.fp)
	}
	n := s.aead.NonceSize()
	if len(body) < n {
		return nil, fmt.Errorf("%q: malformed sealed value", storeKey)
	}
	val, err := s.aead.Open(nil, body[:n], body[n:], []byte(storeKey))
	if err != nil {
		return nil, fmt.Errorf("%q: the sealed value does not open with key %s (tampered with, or moved from another key)", storeKey, s.fp)
	}
	return val, nil
}

// LoadOrCreateKey reads the key file at path (hex, one line), creating it
// with a new random key (mode 0600) if it does not exist. created reports
// whether it did.
func LoadOrCreateKey(path string) (key []byte, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != KeySize {
			return nil, false, fmt.Errorf("seal key file %s: want %d bytes as hex on one line", path, KeySize)
		}
		return key, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("seal key file: %w", err)
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("seal key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("seal key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("seal key file: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("seal key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("seal key file: %w", err)
	}
	return key, true, nil
}
