package authz

import (
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "/admin", want: "/admin"},
		{in: "//admin", want: "/admin"},
		{in: "/a//b///c", want: "/a/b/c"},
		{in: "/a/../admin", want: "/admin"},
		{in: "/../../admin", want: "/admin"},
		{in: "/./admin", want: "/admin"},
		{in: "/admin/.", want: "/admin/"},
		{in: "/a/b/..", want: "/a/"},
		{in: "/%2Fadmin", want: "/admin"},
		{in: "/x%2F..%2Fadmin", want: "/admin"},
		{in: "/%5Cadmin", want: "/admin"},
		{in: "/\\admin", want: "/admin"},
		{in: "/x/%2e%2e/admin", want: "/admin"},
		{in: "/x/%2E%2E/admin", want: "/admin"},
		{in: "/%61dmin", want: "/admin"},
		{in: "/admin;param", want: "/admin"},
		{in: "/admin;a=b/x", want: "/admin/x"},
		{in: "/admin#frag", want: "/admin"},
		{in: "/admin/", want: "/admin/"},
		{in: "/", want: "/"},
		{in: "", want: "/"},
		{in: "admin", want: "/admin"},
		{in: "/.well-known/x", want: "/.well-known/x"},
		{in: "/a..b", want: "/a..b"},
		{in: "/%00admin", bad: true},
		{in: "/%zz", bad: true},
		{in: "/%2", bad: true},
	}
	for _, tt := range tests {
		got, err := NormalizePath(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("NormalizePath(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		// Idempotent: what is forwarded normalises to itself.
		if again, _ := NormalizePath(got); again != got {
			t.Errorf("NormalizePath(%q) = %q, not a fixed point (%q)", got, again, got)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port uint32
	}{
		{"Web.Shop:8080", "web.shop", 8080},
		{"WEB.shop.", "web.shop", 0},
		{"[::1]:80", "[::1]", 80},
		{"[::1]", "[::1]", 0},
		{"web:x", "web", 0},
	}
	for _, tt := range tests {
		if h, p := NormalizeHost(tt.in); h != tt.host || p != tt.port {
			t.Errorf("NormalizeHost(%q) = %q, %d; want %q, %d", tt.in, h, p, tt.host, tt.port)
		}
	}
}
