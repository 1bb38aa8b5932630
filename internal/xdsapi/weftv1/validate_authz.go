package weftv1

import (
	"fmt"
	"net/netip"
	"strings"
)

// Condition key prefixes of AuthzCondition.key; the key ends with "]".
const (
	AuthzHeaderKeyPrefix = "request.headers["
	AuthzClaimKeyPrefix  = "request.auth.claims["
)

// ParseIPBlock parses an AuthzFrom ip_blocks entry: a CIDR or a single
// address.
func ParseIPBlock(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ValidateAuthzPolicy reports whether a proxy can compile p; like
// ValidateService (which runs it on every authz_policies entry), it is
// shared by the proxy and the control plane. The error names the field.
func ValidateAuthzPolicy(p *AuthzPolicy) error {
	if p.GetName() == "" || !strings.Contains(p.GetName(), "/") {
		return fmt.Errorf("name: %q is not <namespace>/<name>", p.GetName())
	}
	if _, ok := AuthzPolicy_Action_name[int32(p.GetAction())]; !ok {
		return fmt.Errorf("action: unknown action %d", p.GetAction())
	}
	for i, r := range p.GetRules() {
		if err := validateAuthzRule(r); err != nil {
			return fmt.Errorf("rules[%d].%w", i, err)
		}
	}
	return nil
}

func validatePatterns(field string, ps []string) error {
	for i, p := range ps {
		if p == "" {
			return fmt.Errorf("%s[%d]: must not be empty", field, i)
		}
		if p != "*" && strings.Count(p, "*") > 1 || len(p) > 1 && strings.Contains(p[1:len(p)-1], "*") {
			return fmt.Errorf("%s[%d]: %q: \"*\" is allowed only alone, as a prefix or as a suffix", field, i, p)
		}
	}
	return nil
}

func validateIPs(field string, ps []string) error {
	for i, s := range ps {
		if _, err := ParseIPBlock(s); err != nil {
			return fmt.Errorf("%s[%d]: %q is not an address or CIDR", field, i, s)
		}
	}
	return nil
}

func validateAuthzRule(r *AuthzRule) error {
	for i, f := range r.GetFrom() {
		for _, c := range []struct {
			name string
			v    []string
		}{{"identities", f.GetIdentities()}, {"not_identities", f.GetNotIdentities()}, {"namespaces", f.GetNamespaces()}, {"not_namespaces", f.GetNotNamespaces()},
			{"request_principals", f.GetRequestPrincipals()}, {"not_request_principals", f.GetNotRequestPrincipals()}} {
			if err := validatePatterns(c.name, c.v); err != nil {
				return fmt.Errorf("from[%d].%w", i, err)
			}
		}
		if err := validateIPs("ip_blocks", f.GetIpBlocks()); err != nil {
			return fmt.Errorf("from[%d].%w", i, err)
		}
		if err := validateIPs("not_ip_blocks", f.GetNotIpBlocks()); err != nil {
			return fmt.Errorf("from[%d].%w", i, err)
		}
	}
	for i, t := range r.GetTo() {
		for _, c := range []struct {
			name string
			v    []string
		}{{"methods", t.GetMethods()}, {"not_methods", t.GetNotMethods()}, {"paths", t.GetPaths()}, {"not_paths", t.GetNotPaths()}, {"hosts", t.GetHosts()}, {"not_hosts", t.GetNotHosts()}} {
			if err := validatePatterns(c.name, c.v); err != nil {
				return fmt.Errorf("to[%d].%w", i, err)
			}
		}
		for j, p := range t.GetPaths() {
			if p != "*" && !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "*") {
				return fmt.Errorf("to[%d].paths[%d]: %q must start with / or *", i, j, p)
			}
		}
		for j, p := range t.GetPorts() {
			if p == 0 || p > 65535 {
				return fmt.Errorf("to[%d].ports[%d]: %d out of range", i, j, p)
			}
		}
	}
	for i, c := range r.GetWhen() {
		if err := validateAuthzCondition(c); err != nil {
			return fmt.Errorf("when[%d].%w", i, err)
		}
	}
	return nil
}

func validateAuthzCondition(c *AuthzCondition) error {
	k := c.GetKey()
	switch {
	case k == "source.ip":
		if err := validateIPs("values", c.GetValues()); err != nil {
			return err
		}
		return validateIPs("not_values", c.GetNotValues())
	case k == "source.namespace", k == "source.principal", k == "request.auth.principal":
	case strings.HasPrefix(k, AuthzHeaderKeyPrefix) && strings.HasSuffix(k, "]") && len(k) > len(AuthzHeaderKeyPrefix)+1,
		strings.HasPrefix(k, AuthzClaimKeyPrefix) && strings.HasSuffix(k, "]") && len(k) > len(AuthzClaimKeyPrefix)+1:
	default:
		return fmt.Errorf("key: unknown key %q (request.headers[<name>], request.auth.claims[<name>], request.auth.principal, source.ip, source.namespace, source.principal)", k)
	}
	if len(c.GetValues())+len(c.GetNotValues()) == 0 {
		return fmt.Errorf("values: set values or not_values")
	}
	if err := validatePatterns("values", c.GetValues()); err != nil {
		return err
	}
	return validatePatterns("not_values", c.GetNotValues())
}
