package retry

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestBodyReplay(t *testing.T) {
	const text = "hello, retried world"
	tests := []struct {
		name           string
		limit          int64
		firstRead      int // bytes the first attempt reads; -1: all
		wantReplayable bool
	}{
		{"read fully, under the limit", 64, -1, true},
		{"read partly, under the limit", 64, 5, true},
		{"not read", 64, 0, true},
		{"over the limit", 8, -1, false},
		{"exactly the limit", int64(len(text)), -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBody(io.NopCloser(strings.NewReader(text)), tt.limit)
			first := b.View()
			if tt.firstRead < 0 {
				if got, _ := io.ReadAll(first); string(got) != text {
					t.Fatalf("first attempt read %q", got)
				}
			} else if tt.firstRead > 0 {
				if _, err := io.ReadFull(first, make([]byte, tt.firstRead)); err != nil {
					t.Fatal(err)
				}
			}
			if got := b.Replayable(); got != tt.wantReplayable {
				t.Fatalf("Replayable = %v, want %v", got, tt.wantReplayable)
			}
			if !tt.wantReplayable {
				return
			}
			second := b.View()
			if _, err := first.Read(make([]byte, 1)); !errors.Is(err, errSuperseded) {
				t.Errorf("the first attempt's read after a replay: %v, want errSuperseded", err)
			}
			if got, err := io.ReadAll(second); err != nil || string(got) != text {
				t.Errorf("replay read %q, %v; want %q", got, err, text)
			}
		})
	}
}
