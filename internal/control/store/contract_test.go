package store_test

import (
	"path/filepath"
	"testing"

	"weft.dev/weft/internal/control/store"
	"weft.dev/weft/internal/control/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.Open(filepath.Join(t.TempDir(), "weft.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
