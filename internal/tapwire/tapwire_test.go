package tapwire

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		q       string
		want    Filter
		wantErr string
	}{
		{"", Filter{}, ""},
		{"path=/api&method=post&status=5xx&bodies=true", Filter{Path: "/api", Method: "POST", Status: "5xx", Bodies: true}, ""},
		{"status=503", Filter{Status: "503"}, ""},
		{"path=api", Filter{}, "path"},
		{"status=5x", Filter{}, "status"},
		{"status=9xx", Filter{}, "status"},
		{"status=50a", Filter{}, "status"},
		{"bodies=maybe", Filter{}, "bodies"},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.q)
		got, err := ParseFilter(q)
		if tt.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("%q: error %v, want one about %s", tt.q, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: %+v, %v; want %+v", tt.q, got, err, tt.want)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	e := &Event{Method: "GET", Path: "/api/orders", Status: 503}
	tests := []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Path: "/api"}, true},
		{Filter{Path: "/web"}, false},
		{Filter{Method: "GET"}, true},
		{Filter{Method: "POST"}, false},
		{Filter{Status: "5xx"}, true},
		{Filter{Status: "503"}, true},
		{Filter{Status: "4xx"}, false},
		{Filter{Status: "500"}, false},
	}
	for _, tt := range tests {
		if got := tt.f.Match(e); got != tt.want {
			t.Errorf("%+v: Match = %v, want %v", tt.f, got, tt.want)
		}
	}
}
