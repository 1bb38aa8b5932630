package authz

import (
	"fmt"
	"net/netip"
	"net/textproto"
	"strings"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// strMatch is one compiled string pattern.
type strMatch struct {
	kind  byte // '=' exact, '*' any, 'p' prefix, 's' suffix
	value string
}

func compileStr(p string, fold bool) strMatch {
	if fold {
		p = strings.ToLower(p)
	}
	switch {
	case p == "*":
		return strMatch{kind: '*'}
	case strings.HasSuffix(p, "*"):
		return strMatch{kind: 'p', value: p[:len(p)-1]}
	case strings.HasPrefix(p, "*"):
		return strMatch{kind: 's', value: p[1:]}
	}
	return strMatch{kind: '=', value: p}
}

func (m strMatch) match(s string) bool {
	switch m.kind {
	case '*':
		return true
	case 'p':
		return strings.HasPrefix(s, m.value)
	case 's':
		return strings.HasSuffix(s, m.value)
	}
	return s == m.value
}

// strSet matches a value against any of its patterns; a nil set is unset.
type strSet []strMatch

func compileStrs(ps []string, fold bool) strSet {
	if len(ps) == 0 {
		return nil
	}
	out := make(strSet, len(ps))
	for i, p := range ps {
		out[i] = compileStr(p, fold)
	}
	return out
}

func (s strSet) any(v string) bool {
	for _, m := range s {
		if m.match(v) {
			return true
		}
	}
	return false
}

// pos and neg combine a positive and a negative set: v must match one of
// pos (if set) and none of neg.
func posNeg(pos, neg strSet, v string) bool {
	if pos != nil && !pos.any(v) {
		return false
	}
	return neg == nil || !neg.any(v)
}

type prefixSet []netip.Prefix

func (s prefixSet) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

type from struct {
	ids, notIDs, nss, notNSs, principals, notPrincipals strSet
	ips, notIPs                                         prefixSet
}

type to struct {
	methods, notMethods, paths, notPaths, hosts, notHosts strSet
	ports                                                 []uint32
	needsHTTP                                             bool
}

// condKind is what a condition reads.
type condKind int

const (
	condHeader condKind = iota
	condSourceIP
	condSourceNS
	condSourcePrincipal
	condAuthPrincipal
	condAuthClaim
)

type cond struct {
	kind        condKind
	name        string // header (canonical) or claim name
	values, not strSet
	ips, notIPs prefixSet
}

type rule struct {
	from []from
	to   []to
	when []cond
}

func (r *rule) matches(q *Request, ns string) bool {
	if len(r.from) > 0 {
		ok := false
		for i := range r.from {
			if r.from[i].matches(q, ns) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.to) > 0 {
		ok := false
		for i := range r.to {
			if r.to[i].matches(q) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for i := range r.when {
		if !r.when[i].matches(q, ns) {
			return false
		}
	}
	return true
}

func (f *from) matches(q *Request, ns string) bool {
	if !posNeg(f.ids, f.notIDs, q.Peer) || !posNeg(f.nss, f.notNSs, ns) {
		return false
	}
	if f.ips != nil && !f.ips.contains(q.SourceIP) || f.notIPs != nil && f.notIPs.contains(q.SourceIP) {
		return false
	}
	if f.principals != nil || f.notPrincipals != nil {
		p := ""
		if q.Auth != nil {
			p = q.Auth.Principal()
		}
		// No verified token: no principal, so a positive set cannot
		// match and a negative set excludes nothing but "" never equals
		// a listed pattern other than "*".
		if f.principals != nil && (p == "" || !f.principals.any(p)) {
			return false
		}
		if f.notPrincipals != nil && p != "" && f.notPrincipals.any(p) {
			return false
		}
	}
	return true
}

func (t *to) matches(q *Request) bool {
	if q.TCP && t.needsHTTP {
		return false
	}
	if !posNeg(t.methods, t.notMethods, q.Method) || !posNeg(t.paths, t.notPaths, q.Path) || !posNeg(t.hosts, t.notHosts, q.Host) {
		return false
	}
	if len(t.ports) > 0 {
		ok := false
		for _, p := range t.ports {
			if p == q.Port {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (c *cond) matches(q *Request, ns string) bool {
	switch c.kind {
	case condSourceIP:
		if c.ips != nil && !c.ips.contains(q.SourceIP) {
			return false
		}
		return c.notIPs == nil || !c.notIPs.contains(q.SourceIP)
	case condSourceNS:
		return posNeg(c.values, c.not, ns)
	case condSourcePrincipal:
		return posNeg(c.values, c.not, q.Peer)
	case condAuthPrincipal:
		if q.Auth == nil || q.Auth.Principal() == "" {
			return c.values == nil
		}
		return posNeg(c.values, c.not, q.Auth.Principal())
	case condAuthClaim:
		if q.Auth == nil {
			return c.values == nil
		}
		vs := q.Auth.Claim(c.name)
		if c.not != nil {
			for _, v := range vs {
				if c.not.any(v) {
					return false
				}
			}
		}
		if c.values == nil {
			return true
		}
		for _, v := range vs {
			if c.values.any(v) {
				return true
			}
		}
		return false
	}
	vs := q.Header[c.name]
	if q.TCP || len(vs) == 0 {
		return false
	}
	v := vs[0]
	if len(vs) > 1 { // not joined by the caller
		v = strings.Join(vs, ",")
	}
	return posNeg(c.values, c.not, v)
}

// Compile validates policies (weftv1.ValidateAuthzPolicy) and compiles
// them into a Set. The error names the policy and the field.
func Compile(policies []*weftv1.AuthzPolicy, defaultDeny bool) (*Set, error) {
	s := &Set{DefaultDeny: defaultDeny}
	seen := map[string]bool{}
	ps := make([]*Policy, 0, len(policies))
	for i, pp := range policies {
		if err := weftv1.ValidateAuthzPolicy(pp); err != nil {
			return nil, fmt.Errorf("authz_policies[%d]: %w", i, err)
		}
		p := &Policy{Name: pp.GetName(), Action: Action(pp.GetAction()), Selector: pp.GetSelector(),
			reason: "weft: denied by policy " + pp.GetName()}
		for _, pr := range pp.GetRules() {
			r := rule{}
			for _, f := range pr.GetFrom() {
				r.from = append(r.from, from{
					ids: compileStrs(f.GetIdentities(), false), notIDs: compileStrs(f.GetNotIdentities(), false),
					nss: compileStrs(f.GetNamespaces(), false), notNSs: compileStrs(f.GetNotNamespaces(), false),
					principals: compileStrs(f.GetRequestPrincipals(), false), notPrincipals: compileStrs(f.GetNotRequestPrincipals(), false),
					ips: mustPrefixes(f.GetIpBlocks()), notIPs: mustPrefixes(f.GetNotIpBlocks()),
				})
			}
			for _, t := range pr.GetTo() {
				ct := to{
					methods: compileStrs(upper(t.GetMethods()), false), notMethods: compileStrs(upper(t.GetNotMethods()), false),
					paths: compileStrs(t.GetPaths(), false), notPaths: compileStrs(t.GetNotPaths(), false),
					hosts: compileStrs(t.GetHosts(), true), notHosts: compileStrs(t.GetNotHosts(), true),
					ports: t.GetPorts(),
				}
				ct.needsHTTP = len(t.GetMethods())+len(t.GetNotMethods())+len(t.GetPaths())+len(t.GetNotPaths())+len(t.GetHosts())+len(t.GetNotHosts()) > 0
				r.to = append(r.to, ct)
			}
			for _, w := range pr.GetWhen() {
				c := compileCond(w)
				if c.kind == condHeader && !seen[c.name] {
					seen[c.name] = true
					s.Headers = append(s.Headers, c.name)
				}
				r.when = append(r.when, c)
			}
			p.rules = append(p.rules, r)
		}
		ps = append(ps, p)
	}
	s.setPolicies(ps)
	return s, nil
}

func upper(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToUpper(s)
	}
	return out
}

// mustPrefixes parses validated CIDRs or addresses.
func mustPrefixes(ss []string) prefixSet {
	if len(ss) == 0 {
		return nil
	}
	out := make(prefixSet, 0, len(ss))
	for _, s := range ss {
		p, err := weftv1.ParseIPBlock(s)
		if err == nil {
			out = append(out, p)
		}
	}
	return out
}

func compileCond(w *weftv1.AuthzCondition) cond {
	key := w.GetKey()
	c := cond{values: compileStrs(w.GetValues(), false), not: compileStrs(w.GetNotValues(), false)}
	switch {
	case key == "source.ip":
		c.kind, c.values, c.not = condSourceIP, nil, nil
		c.ips, c.notIPs = mustPrefixes(w.GetValues()), mustPrefixes(w.GetNotValues())
	case key == "source.namespace":
		c.kind = condSourceNS
	case key == "source.principal":
		c.kind = condSourcePrincipal
	case key == "request.auth.principal":
		c.kind = condAuthPrincipal
	case strings.HasPrefix(key, weftv1.AuthzClaimKeyPrefix):
		c.kind, c.name = condAuthClaim, key[len(weftv1.AuthzClaimKeyPrefix):len(key)-1]
	default: // validated: request.headers[<name>]
		c.kind = condHeader
		c.name = textproto.CanonicalMIMEHeaderKey(key[len(weftv1.AuthzHeaderKeyPrefix) : len(key)-1])
	}
	return c
}
