package observe

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRequestID(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		keep bool
	}{
		{"absent", http.Header{}, false},
		{"propagated", http.Header{"X-Request-Id": {"abc-123"}}, true},
		{"too long", http.Header{"X-Request-Id": {strings.Repeat("a", 200)}}, false},
		{"control bytes", http.Header{"X-Request-Id": {"a\x01b"}}, false},
		{"two values", http.Header{"X-Request-Id": {"a", "b"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.h.Get("X-Request-Id")
			id := RequestID(tt.h)
			if tt.keep && id != before {
				t.Errorf("id %q, want the caller's %q", id, before)
			}
			if !tt.keep && (len(id) != 32 || id == before) {
				t.Errorf("id %q, want a new 32-hex-digit one", id)
			}
			if got := tt.h.Values("X-Request-Id"); len(got) != 1 || got[0] != id {
				t.Errorf("header %v, want [%s]", got, id)
			}
		})
	}
	if NewRequestID() == NewRequestID() {
		t.Error("two IDs equal")
	}
}

func TestNote(t *testing.T) {
	ctx := context.Background()
	Note(ctx, "retry", "ignored") // no record: nothing, no panic
	if Tapped(ctx) {
		t.Error("Tapped without a record")
	}
	rec := &Record{}
	ctx = WithRecord(ctx, rec)
	Note(ctx, "retry", "one")
	Note(ctx, "outlier", "two")
	got := rec.Decisions()
	if !Tapped(ctx) || len(got) != 2 || got[1] != (Decision{Stage: "outlier", Detail: "two"}) {
		t.Errorf("decisions %v", got)
	}
	if (*Record)(nil).Decisions() != nil {
		t.Error("nil record has decisions")
	}
}

func TestFailed(t *testing.T) {
	tests := []struct {
		status int
		grpc   string
		want   bool
	}{
		{200, "", false}, {404, "", false}, {500, "", true}, {503, "", true}, {0, "", true},
		{200, "0", false}, {200, "5", false}, {200, "12", true}, {200, "14", true}, {200, "_OTHER", true},
	}
	for _, tt := range tests {
		if got := Failed(tt.status, tt.grpc); got != tt.want {
			t.Errorf("Failed(%d, %q) = %v, want %v", tt.status, tt.grpc, got, tt.want)
		}
	}
}

func TestMillisJSON(t *testing.T) {
	b, err := json.Marshal(Millis(1234567 * time.Nanosecond))
	if err != nil || string(b) != "1.235" {
		t.Fatalf("%s, %v", b, err)
	}
	var m Millis
	if err := json.Unmarshal([]byte("2.5"), &m); err != nil || time.Duration(m) != 2500*time.Microsecond {
		t.Errorf("%v, %v", time.Duration(m), err)
	}
}
