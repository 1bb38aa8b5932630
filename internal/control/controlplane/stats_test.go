package controlplane

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestNewStatsOptions(t *testing.T) {
	for _, tt := range []struct {
		name    string
		opts    StatsOptions
		wantErr string
	}{
		{name: "default"},
		{name: "5s", opts: StatsOptions{Interval: 5 * time.Second}},
		{name: "prometheus", opts: StatsOptions{Prometheus: "http://127.0.0.1:9090"}},
		{name: "too slow", opts: StatsOptions{Interval: 30 * time.Second}, wantErr: "at most 10s"},
		{name: "negative", opts: StatsOptions{Interval: -time.Second}, wantErr: "more than 0"},
		{name: "not a URL", opts: StatsOptions{Prometheus: "prometheus:9090"}, wantErr: "want an http(s)://host[:port] URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newStats(tt.opts, nil, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("newStats(%+v) = %v, want %q", tt.opts, err, tt.wantErr)
			}
		})
	}
}
