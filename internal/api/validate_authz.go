package api

import (
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Default fills in defaults: action ALLOW and, when a targetRef is set,
// its kind Service.
func (a *AuthorizationPolicy) Default() {
	if a.Spec.Action == "" {
		a.Spec.Action = ActionAllow
	}
	if a.Spec.TargetRef.Name != "" && a.Spec.TargetRef.Kind == "" {
		a.Spec.TargetRef.Kind = KindService
	}
}

// Validate checks the AuthorizationPolicy and names every offending field.
func (a *AuthorizationPolicy) Validate() error { return Validate(a) }

func validateAuthorizationConfig(e *errs, p fieldPath, c *AuthorizationConfig) {
	if c == nil {
		return
	}
	switch c.DefaultAction {
	case "", ActionAllow, ActionDeny:
	default:
		e.add(p.child("defaultAction"), "must be ALLOW or DENY, got %q", c.DefaultAction)
	}
}

func (a *AuthorizationPolicy) validate(e *errs) {
	p := fieldPath("spec")
	if a.Spec.TargetRef != (PolicyTargetRef{}) {
		validateTargetRef(e, p.child("targetRef"), a.Spec.TargetRef)
		if a.Spec.Selector != nil {
			e.add(p.child("selector"), "set targetRef or selector, not both")
		}
	}
	if s := a.Spec.Selector; s != nil {
		for k, v := range s.MatchLabels {
			for _, msg := range validation.IsQualifiedName(k) {
				e.add(p.child("selector").child("matchLabels"), "key %q: %s", k, msg)
			}
			for _, msg := range validation.IsValidLabelValue(v) {
				e.add(p.child("selector").child("matchLabels"), "value of %q: %s", k, msg)
			}
		}
	}
	switch a.Spec.Action {
	case "", ActionAllow, ActionDeny, ActionAudit:
	default:
		e.add(p.child("action"), "must be ALLOW, DENY or AUDIT, got %q", a.Spec.Action)
	}
	for i, r := range a.Spec.Rules {
		rp := p.child("rules").index(i)
		for j, f := range r.From {
			validateRuleFrom(e, rp.child("from").index(j), f)
		}
		for j, t := range r.To {
			validateRuleTo(e, rp.child("to").index(j), t)
		}
		for j, w := range r.When {
			validateCondition(e, rp.child("when").index(j), w)
		}
	}
}

func validateRuleFrom(e *errs, fp fieldPath, f RuleFrom) {
	if len(f.Identities)+len(f.NotIdentities)+len(f.Namespaces)+len(f.NotNamespaces)+len(f.IPBlocks)+len(f.NotIPBlocks)+len(f.RequestPrincipals)+len(f.NotRequestPrincipals) == 0 {
		e.add(fp, "set identities, notIdentities, namespaces, notNamespaces, ipBlocks, notIpBlocks, requestPrincipals or notRequestPrincipals")
	}
	for k, id := range f.Identities {
		validateIdentity(e, fp.child("identities").index(k), id)
	}
	for k, id := range f.NotIdentities {
		validateIdentity(e, fp.child("notIdentities").index(k), id)
	}
	for field, nss := range map[string][]string{"namespaces": f.Namespaces, "notNamespaces": f.NotNamespaces} {
		for k, ns := range nss {
			if ns == "*" {
				continue
			}
			for _, msg := range validation.IsDNS1123Label(strings.Trim(ns, "*")) {
				e.add(fp.child(field).index(k), "%s", msg)
			}
		}
	}
	for field, ips := range map[string][]string{"ipBlocks": f.IPBlocks, "notIpBlocks": f.NotIPBlocks} {
		for k, ip := range ips {
			if !validIPBlock(ip) {
				e.add(fp.child(field).index(k), "must be an IP address or CIDR such as 10.0.0.0/8, got %q", ip)
			}
		}
	}
	for field, ps := range map[string][]string{"requestPrincipals": f.RequestPrincipals, "notRequestPrincipals": f.NotRequestPrincipals} {
		for k, pr := range ps {
			validatePattern(e, fp.child(field).index(k), pr)
		}
	}
}

func validIPBlock(s string) bool {
	if strings.Contains(s, "/") {
		_, err := netip.ParsePrefix(s)
		return err == nil
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// validatePattern checks an exact, "*", "prefix*" or "*suffix" pattern.
func validatePattern(e *errs, p fieldPath, s string) {
	switch {
	case s == "":
		e.add(p, "must not be empty")
	case s != "*" && strings.Contains(strings.TrimPrefix(strings.TrimSuffix(s, "*"), "*"), "*"),
		strings.HasPrefix(s, "*") && strings.HasSuffix(s, "*") && s != "*":
		e.add(p, "\"*\" is allowed only alone, at the start or at the end, got %q", s)
	}
}

func validateRuleTo(e *errs, tp fieldPath, t RuleTo) {
	if len(t.Methods)+len(t.NotMethods)+len(t.Paths)+len(t.NotPaths)+len(t.Ports)+len(t.Hosts)+len(t.NotHosts) == 0 {
		e.add(tp, "set methods, notMethods, paths, notPaths, ports, hosts or notHosts")
	}
	for field, ms := range map[string][]string{"methods": t.Methods, "notMethods": t.NotMethods} {
		for k, m := range ms {
			if !slices.Contains(httpMethods, m) {
				e.add(tp.child(field).index(k), "must be an upper-case HTTP method (%s), got %q", strings.Join(httpMethods, ", "), m)
			}
		}
	}
	for field, ps := range map[string][]string{"paths": t.Paths, "notPaths": t.NotPaths} {
		for k, path := range ps {
			if path != "*" && !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "*") {
				e.add(tp.child(field).index(k), "must start with \"/\", be \"*\" or a suffix \"*.json\", got %q", path)
				continue
			}
			validatePattern(e, tp.child(field).index(k), path)
		}
	}
	for k, port := range t.Ports {
		if port < 1 || port > 65535 {
			e.add(tp.child("ports").index(k), "must be between 1 and 65535")
		}
	}
	for field, hs := range map[string][]string{"hosts": t.Hosts, "notHosts": t.NotHosts} {
		for k, h := range hs {
			validatePattern(e, tp.child(field).index(k), h)
		}
	}
}

// conditionKeys are the RuleCondition keys other than headers and claims.
var conditionKeys = []string{"request.auth.principal", "source.ip", "source.namespace", "source.principal"}

func validateCondition(e *errs, wp fieldPath, w RuleCondition) {
	switch {
	case w.Header != "" && w.Key != "":
		e.add(wp, "set header or key, not both")
	case w.Header != "":
		if !validHeaderName(w.Header) {
			e.add(wp.child("header"), "invalid header name %q", w.Header)
		}
	case w.Key == "":
		e.add(wp.child("header"), "required (or key)")
	case slices.Contains(conditionKeys, w.Key):
		if w.Key == "source.ip" {
			for field, vs := range map[string][]string{"values": w.Values, "notValues": w.NotValues} {
				for k, v := range vs {
					if !validIPBlock(v) {
						e.add(wp.child(field).index(k), "must be an IP address or CIDR, got %q", v)
					}
				}
			}
		}
	default:
		name, ok := bracketed(w.Key, "request.headers[")
		if ok && !validHeaderName(name) {
			e.add(wp.child("key"), "invalid header name %q", name)
		}
		if !ok {
			name, ok = bracketed(w.Key, "request.auth.claims[")
		}
		if !ok || name == "" {
			e.add(wp.child("key"), "must be request.headers[<name>], request.auth.claims[<name>] or one of %s, got %q", strings.Join(conditionKeys, ", "), w.Key)
		}
	}
	if len(w.Values)+len(w.NotValues) == 0 {
		e.add(wp.child("values"), "at least one value is required (\"*\" matches any)")
	}
	if w.Key != "source.ip" {
		for k, v := range w.Values {
			validatePattern(e, wp.child("values").index(k), v)
		}
		for k, v := range w.NotValues {
			validatePattern(e, wp.child("notValues").index(k), v)
		}
	}
}

func bracketed(key, prefix string) (string, bool) {
	if !strings.HasPrefix(key, prefix) || !strings.HasSuffix(key, "]") {
		return "", false
	}
	return key[len(prefix) : len(key)-1], true
}
