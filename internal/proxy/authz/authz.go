// Package authz is the inbound proxy's AuthorizationPolicy engine. The
// xDS client compiles the weft.v1.AuthzPolicy entries of this workload's
// Service once per push into an immutable Set (Compile); a View narrows
// it to the policies whose selector matches the workload's labels, once
// per Set; the inbound listener evaluates the result per request with
// Authorize, which takes no lock and allocates nothing.
//
// Evaluation (Istio's order): a request matched by any DENY policy is
// denied; otherwise, if any ALLOW policy applies to the workload, the
// request must match one of them; otherwise it is allowed, unless the
// mesh default is DENY. AUDIT policies never change the decision: a
// match is reported (logged and counted) only.
package authz

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
)

// Action is what a policy does with the requests it matches.
type Action int

// Policy actions.
const (
	Allow Action = iota
	Deny
	Audit
)

// String returns the action's name as used in metrics.
func (a Action) String() string {
	switch a {
	case Deny:
		return "DENY"
	case Audit:
		return "AUDIT"
	}
	return "ALLOW"
}

// AuthInfo is what request authentication (JWT, RequestAuthentication)
// proves about a request: the jwt stage puts one in the request context
// with WithAuth, before authorization runs. It is the extension point for
// from.requestPrincipals ("<iss>/<sub>") and when keys
// "request.auth.claims[<name>]".
type AuthInfo interface {
	// Principal is "<iss>/<sub>" of the verified token, "" without one.
	Principal() string
	// Claim returns the string values of a verified claim (a string
	// claim gives one value, a list of strings each element).
	Claim(name string) []string
}

type authKey struct{}

// WithAuth returns ctx carrying a request's verified authentication.
func WithAuth(ctx context.Context, a AuthInfo) context.Context {
	return context.WithValue(ctx, authKey{}, a)
}

// AuthFrom returns the AuthInfo WithAuth put in ctx, or nil.
func AuthFrom(ctx context.Context) AuthInfo {
	a, _ := ctx.Value(authKey{}).(AuthInfo)
	return a
}

// Request is what a policy sees of one request. Path and Host must be
// normalised (NormalizePath, NormalizeHost) and Header values of the
// headers named by conditions joined (JoinHeader), so that what is
// evaluated is what is forwarded.
type Request struct {
	// Peer is the caller's verified SPIFFE ID.
	Peer string
	// SourceIP is the peer's address.
	SourceIP netip.Addr
	// TCP is set for an opaque stream: it has no method, path, host or
	// header, and a rule that tests any of them does not match it.
	TCP    bool
	Method string
	Path   string
	Host   string
	// Port is the service port the caller addressed (from the host), 0
	// if unknown.
	Port uint32
	// Header holds the request headers by canonical name; the headers
	// named in Set.Headers have one value (JoinHeader).
	Header map[string][]string
	// Auth is the request's verified JWT, nil without one.
	Auth AuthInfo
}

// peerNamespace returns the namespace of a weft SPIFFE ID
// ("spiffe://<td>/ns/<ns>/sa/<sa>"), "" if it has none.
func peerNamespace(id string) string {
	rest, ok := strings.CutPrefix(id, "spiffe://")
	if !ok {
		return ""
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 || !strings.HasPrefix(rest[i:], "/ns/") {
		return ""
	}
	rest = rest[i+4:]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		return rest[:j]
	}
	return rest
}

// Policy is one compiled AuthorizationPolicy.
type Policy struct {
	// Name is "<namespace>/<name>".
	Name     string
	Action   Action
	Selector map[string]string
	rules    []rule
	// reason is the 403 body, built once.
	reason string
}

// Set is the compiled, immutable list of policies that govern one
// service, plus the mesh default.
type Set struct {
	// Policies in evaluation order (DENY, then ALLOW, then AUDIT).
	Policies []*Policy
	// DefaultDeny is MeshConfig spec.authorization.defaultAction DENY:
	// a request no ALLOW policy allows is denied even when no ALLOW
	// policy applies.
	DefaultDeny bool
	// Headers are the canonical names of the headers conditions test,
	// which the caller joins before evaluating (JoinHeader).
	Headers  []string
	hasAllow bool
	denies   int // Policies[:denies] are DENY
	allows   int // Policies[denies:allows] are ALLOW, the rest AUDIT
}

// Empty reports whether the set can never deny nor audit anything.
func (s *Set) Empty() bool { return s == nil || len(s.Policies) == 0 && !s.DefaultDeny }

// Decision is the outcome of Authorize.
type Decision struct {
	// Allowed is the enforced decision.
	Allowed bool
	// Policy is the policy that decided ("" for a default decision), for
	// the 403 body and metrics.
	Policy string
	// Action is the deciding policy's action.
	Action Action
	// Reason is the response body for a denial.
	Reason string
	// Audit is the AUDIT policy the request matched, nil if none; it
	// would have been denied by it had it been a DENY policy.
	Audit *Policy
}

// JoinHeader replaces every header of h that s's conditions test and
// that has several values by one field with the values joined by ",", so
// that the value evaluated is the one the app receives.
func (s *Set) JoinHeader(h map[string][]string) {
	for _, name := range s.Headers {
		if vs := h[name]; len(vs) > 1 {
			h[name] = []string{strings.Join(vs, ",")}
		}
	}
}

// Reasons of default decisions.
const (
	ReasonNoAllow     = "weft: denied: no ALLOW policy matches"
	ReasonDefaultDeny = "weft: denied by the mesh default (MeshConfig authorization.defaultAction DENY)"
)

// Authorize evaluates r against s (nil allows everything).
func (s *Set) Authorize(r *Request) Decision {
	if s == nil {
		return Decision{Allowed: true}
	}
	ns := peerNamespace(r.Peer)
	var d Decision
	// AUDIT first: it is reported whatever the decision.
	for _, p := range s.Policies[s.allows:] {
		if p.matches(r, ns) {
			d.Audit = p
			break
		}
	}
	for _, p := range s.Policies[:s.denies] {
		if p.matches(r, ns) {
			d.Policy, d.Action, d.Reason = p.Name, Deny, p.reason
			return d
		}
	}
	for _, p := range s.Policies[s.denies:s.allows] {
		if p.matches(r, ns) {
			d.Allowed, d.Policy, d.Action = true, p.Name, Allow
			return d
		}
	}
	switch {
	case s.hasAllow:
		d.Reason = ReasonNoAllow
	case s.DefaultDeny:
		d.Reason = ReasonDefaultDeny
	default:
		d.Allowed = true
	}
	return d
}

func (p *Policy) matches(r *Request, ns string) bool {
	for i := range p.rules {
		if p.rules[i].matches(r, ns) {
			return true
		}
	}
	return false
}

// Select returns the policies of s whose selector matches labels (a
// policy without selector matches every workload). It is computed once
// per Set by a View.
func (s *Set) Select(labels map[string]string) *Set {
	if s == nil {
		return nil
	}
	out := &Set{DefaultDeny: s.DefaultDeny, Headers: s.Headers}
	var ps []*Policy
	for _, p := range s.Policies {
		if selects(p.Selector, labels) {
			ps = append(ps, p)
		}
	}
	out.setPolicies(ps)
	return out
}

func selects(sel, labels map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// setPolicies orders ps DENY, ALLOW, AUDIT (stable) and sets the bounds.
func (s *Set) setPolicies(ps []*Policy) {
	s.Policies = s.Policies[:0]
	for _, a := range []Action{Deny, Allow, Audit} {
		for _, p := range ps {
			if p.Action == a {
				s.Policies = append(s.Policies, p)
			}
		}
		switch a {
		case Deny:
			s.denies = len(s.Policies)
		case Allow:
			s.allows = len(s.Policies)
		}
	}
	s.hasAllow = s.allows > s.denies
}

// View is the Set that applies to one workload: the policies of its
// service's current Set whose selector matches the workload's labels. It
// recomputes the selection once per new Set, without locks.
type View struct {
	load   func() *Set
	labels map[string]string
	cur    atomic.Pointer[viewEntry]
}

type viewEntry struct{ src, eff *Set }

// NewView returns a View of the Sets load returns (nil: no policy) for a
// workload with labels.
func NewView(load func() *Set, labels map[string]string) *View {
	return &View{load: load, labels: labels}
}

// Current returns the effective Set (nil when no policy applies and the
// mesh default allows).
func (v *View) Current() *Set {
	if v == nil {
		return nil
	}
	src := v.load()
	if e := v.cur.Load(); e != nil && e.src == src {
		return e.eff
	}
	eff := src.Select(v.labels)
	if eff.Empty() {
		eff = nil
	}
	v.cur.Store(&viewEntry{src, eff})
	return eff
}
