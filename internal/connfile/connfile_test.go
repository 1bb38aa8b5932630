package connfile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestAddresses: a file of an older weft (one xds address) still reads,
// and a file listing every replica gives them all, round-tripped.
func TestAddresses(t *testing.T) {
	dir := t.TempDir()
	old := `{"xds": "127.0.0.1:15010", "api": "127.0.0.1:15000", "trustDomain": "weft.local", "pid": 1}`
	if err := os.WriteFile(filepath.Join(dir, ConnectionFile), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Addresses(); !slices.Equal(got, []string{"127.0.0.1:15010"}) {
		t.Errorf("old file: addresses %v", got)
	}
	c.XDSAddresses = []string{"10.0.0.1:15010", "10.0.0.2:15010", "127.0.0.1:15010"}
	if err := Write(dir, c); err != nil {
		t.Fatal(err)
	}
	c2, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := c2.Addresses(); !slices.Equal(got, c.XDSAddresses) {
		t.Errorf("replica list: addresses %v, want %v", got, c.XDSAddresses)
	}
	if got := (Connection{}).Addresses(); got != nil {
		t.Errorf("empty connection: addresses %v, want none", got)
	}
	if err := os.WriteFile(filepath.Join(dir, ConnectionFile), []byte(`{"xdsAddresses": "x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(dir); err == nil {
		t.Error("a malformed xdsAddresses field was accepted")
	}
}
