package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"leader changed", fmt.Errorf("etcd store: reading: %w", rpctypes.ErrLeaderChanged), true},
		{"no leader", rpctypes.ErrNoLeader, true},
		{"unavailable", status.Error(codes.Unavailable, "member gone"), true},
		{"wrapped unavailable", fmt.Errorf("x: %w", status.Error(codes.Unavailable, "member gone")), true},
		{"deadline", context.DeadlineExceeded, false},
		{"permission", rpctypes.ErrPermissionDenied, false},
		{"other", errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := transient(tc.err); got != tc.want {
				t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
