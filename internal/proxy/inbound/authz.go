package inbound

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"weft.dev/weft/internal/proxy/authz"
	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/observe"
	"weft.dev/weft/internal/proxy/upstream"
)

// authorize applies the workload's AuthorizationPolicies (Options.Authz)
// to r. It normalises r's path (authz.NormalizePath) and joins the
// headers conditions test, in r itself, so that the request forwarded is
// the request evaluated. It reports whether r may proceed; when not, it
// has answered r (400 for a path it refuses, 403 or gRPC
// PERMISSION_DENIED for a denial).
func (l *Listener) authorize(w http.ResponseWriter, r *http.Request, peer *peerInfo) bool {
	set := l.opts.Authz.Current()
	if set == nil {
		return true
	}
	path, err := authz.NormalizePath(r.URL.EscapedPath())
	if err == nil && (r.URL.Fragment != "" || strings.IndexByte(r.RequestURI, '#') >= 0) {
		// RFC 9112 §3.2: a request-target has no fragment; refused
		// rather than guessed at.
		err = authz.ErrFragment
	}
	if err != nil {
		l.opts.Metrics.HTTPRejected("inbound", "authz_bad_path")
		l.log.Debug("request refused", "remote", r.RemoteAddr, "reason", "authz_bad_path", "path", r.URL.EscapedPath())
		upstream.WriteError(w, r, http.StatusBadRequest, "weft: "+err.Error())
		return false
	}
	if r.URL.RawPath != "" || r.URL.Path != path {
		u := *r.URL
		u.Path, u.RawPath, u.Fragment, u.RawFragment = path, "", "", ""
		r.URL = &u
	}
	set.JoinHeader(r.Header)
	host, port := authz.NormalizeHost(r.Host)
	req := authz.Request{Peer: peer.id, SourceIP: remoteIP(r.RemoteAddr), Method: r.Method, Path: path, Host: host, Port: port,
		Header: r.Header, Auth: authz.AuthFrom(r.Context())}
	return l.decide(set.Authorize(&req), w, r, peer.id)
}

// authorizeTCP applies the policies to a weft-tcp stream before any byte
// reaches the app; the caller closes a denied stream.
func (l *Listener) authorizeTCP(c *tls.Conn) bool {
	set := l.opts.Authz.Current()
	if set == nil {
		return true
	}
	cs := c.ConnectionState()
	id, err := identity.PeerID(&cs)
	if err != nil {
		return false
	}
	peer := id.String()
	return l.decide(set.Authorize(&authz.Request{Peer: peer, SourceIP: remoteIP(c.RemoteAddr().String()), TCP: true}), nil, nil, peer)
}

// decide counts and logs d and, for a denied HTTP request, answers it.
func (l *Listener) decide(d authz.Decision, w http.ResponseWriter, r *http.Request, peer string) bool {
	if r != nil && observe.Tapped(r.Context()) {
		observe.Note(r.Context(), "authz", authzDetail(d))
	}
	if d.Audit != nil {
		l.opts.Metrics.AuthzDecision(d.Audit.Name, "AUDIT", "audit")
		l.log.Info("authz audit: request matches an AUDIT policy", "policy", d.Audit.Name, "peer", peer, "enforced", d.Allowed)
	}
	if d.Allowed {
		if d.Policy == "" {
			l.opts.Metrics.AuthzDecision("", "DEFAULT", "allow")
		} else {
			l.opts.Metrics.AuthzDecision(d.Policy, d.Action.String(), "allow")
		}
		return true
	}
	action := d.Action.String()
	if d.Policy == "" {
		action = "DEFAULT"
	}
	l.opts.Metrics.AuthzDecision(d.Policy, action, "deny")
	l.log.Debug("request denied", "policy", d.Policy, "peer", peer, "reason", d.Reason)
	if w != nil {
		upstream.WriteError(w, r, http.StatusForbidden, d.Reason)
	}
	return false
}

func remoteIP(addr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, _ := net.SplitHostPort(addr)
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// authzDetail describes d for a tap.
func authzDetail(d authz.Decision) string {
	verdict := "allow"
	if !d.Allowed {
		verdict = "deny"
	}
	if d.Policy == "" {
		return verdict + " (default)"
	}
	return verdict + " by " + d.Policy + " (" + d.Action.String() + ")"
}
