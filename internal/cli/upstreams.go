package cli

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"weft.dev/weft/internal/proxy/outbound"
)

// parseUpstreams parses the --upstream flags: SERVICE[.NS]:PORT[=LOCAL_PORT].
func parseUpstreams(specs []string) ([]outbound.Upstream, error) {
	var out []outbound.Upstream
	local := map[int]string{}
	for _, s := range specs {
		u, err := parseUpstream(s)
		if err != nil {
			return nil, fmt.Errorf("--upstream %q: %w", s, err)
		}
		if u.LocalPort != 0 {
			if prev, ok := local[u.LocalPort]; ok {
				return nil, fmt.Errorf("--upstream %q: local port %d is already used by --upstream %q", s, u.LocalPort, prev)
			}
			local[u.LocalPort] = s
		}
		out = append(out, u)
	}
	return out, nil
}

func parseUpstream(s string) (outbound.Upstream, error) {
	var u outbound.Upstream
	target, localPort, hasLocal := strings.Cut(s, "=")
	name, port, ok := strings.Cut(target, ":")
	if !ok {
		return u, fmt.Errorf("want SERVICE[.NS]:PORT[=LOCAL_PORT]")
	}
	svc, ns, hasNS := strings.Cut(name, ".")
	if msgs := validation.IsDNS1123Label(svc); len(msgs) > 0 {
		return u, fmt.Errorf("service %q: %s", svc, msgs[0])
	}
	if hasNS {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			return u, fmt.Errorf("namespace %q: %s", ns, msgs[0])
		}
	}
	p, err := parsePort(port, 1)
	if err != nil {
		return u, fmt.Errorf("port: %w", err)
	}
	u.Service, u.Port = name, p
	if hasLocal {
		if u.LocalPort, err = parsePort(localPort, 0); err != nil {
			return u, fmt.Errorf("local port: %w", err)
		}
	}
	return u, nil
}

// parsePort parses a port number in [min, 65535].
func parsePort(s string, min int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number (%d-65535)", s, min)
	}
	return n, nil
}
