package weftv1

import (
	"fmt"
	"net/http"
	"regexp"

	"golang.org/x/net/http/httpguts"
)

// CompileRegex compiles an RE2 expression of a route match, which must
// match the whole path or value: it is compiled anchored.
func CompileRegex(expr string) (*regexp.Regexp, error) {
	// Compile the expression alone first: anchoring could make a malformed
	// one such as "a)|(b" compile.
	if _, err := regexp.Compile(expr); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + expr + `)$`)
}

// validateRouteStage checks what the route stage compiles: regular
// expressions, query parameter matches and filters.
func validateRouteStage(r *Route) error {
	for i, m := range r.GetMatches() {
		if p := m.GetPath(); p.GetKind() == PathMatch_REGEX {
			if _, err := CompileRegex(p.GetValue()); err != nil {
				return fmt.Errorf("matches[%d].path.value: invalid regular expression: %w", i, err)
			}
		}
		for j, h := range m.GetHeaders() {
			if h.GetRegex() {
				if _, err := CompileRegex(h.GetValue()); err != nil {
					return fmt.Errorf("matches[%d].headers[%d].value: invalid regular expression: %w", i, j, err)
				}
			}
		}
		for j, q := range m.GetQueryParams() {
			if q.GetName() == "" {
				return fmt.Errorf("matches[%d].query_params[%d].name: must not be empty", i, j)
			}
			if q.GetRegex() {
				if _, err := CompileRegex(q.GetValue()); err != nil {
					return fmt.Errorf("matches[%d].query_params[%d].value: invalid regular expression: %w", i, j, err)
				}
			}
		}
	}
	if err := validateFilters(r.GetRequestHeaders(), r.GetResponseHeaders(), r.GetRedirect(), r.GetRewrite()); err != nil {
		return err
	}
	for i, b := range r.GetBackends() {
		if err := validateFilters(b.GetRequestHeaders(), b.GetResponseHeaders(), nil, b.GetRewrite()); err != nil {
			return fmt.Errorf("backends[%d].%w", i, err)
		}
	}
	return nil
}

func validateFilters(req, resp *HeaderModifier, rd *RequestRedirect, rw *URLRewrite) error {
	if err := validateHeaderModifier(req); err != nil {
		return fmt.Errorf("request_headers.%w", err)
	}
	if err := validateHeaderModifier(resp); err != nil {
		return fmt.Errorf("response_headers.%w", err)
	}
	if rd != nil && rw != nil {
		return fmt.Errorf("redirect: cannot be combined with rewrite")
	}
	if rd != nil {
		switch rd.GetScheme() {
		case "", "http", "https":
		default:
			return fmt.Errorf("redirect.scheme: %q is not http or https", rd.GetScheme())
		}
		if rd.GetPort() > 65535 {
			return fmt.Errorf("redirect.port: %d out of range", rd.GetPort())
		}
		switch rd.GetStatusCode() {
		case 0, http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			return fmt.Errorf("redirect.status_code: %d is not 301, 302, 303, 307 or 308", rd.GetStatusCode())
		}
		if err := validatePathModifier(rd.GetPath()); err != nil {
			return fmt.Errorf("redirect.path.%w", err)
		}
	}
	if rw != nil {
		if err := validatePathModifier(rw.GetPath()); err != nil {
			return fmt.Errorf("rewrite.path.%w", err)
		}
	}
	return nil
}

func validateHeaderModifier(m *HeaderModifier) error {
	for i, h := range m.GetSet() {
		if !httpguts.ValidHeaderFieldName(h.GetName()) || !httpguts.ValidHeaderFieldValue(h.GetValue()) {
			return fmt.Errorf("set[%d]: invalid header %q", i, h.GetName())
		}
	}
	for i, h := range m.GetAdd() {
		if !httpguts.ValidHeaderFieldName(h.GetName()) || !httpguts.ValidHeaderFieldValue(h.GetValue()) {
			return fmt.Errorf("add[%d]: invalid header %q", i, h.GetName())
		}
	}
	for i, name := range m.GetRemove() {
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("remove[%d]: invalid header name %q", i, name)
		}
	}
	return nil
}

func validatePathModifier(p *PathModifier) error {
	switch p.GetKind() {
	case PathModifier_NONE:
	case PathModifier_FULL:
		if len(p.GetValue()) == 0 || p.GetValue()[0] != '/' {
			return fmt.Errorf("value: %q must start with /", p.GetValue())
		}
	case PathModifier_PREFIX:
		if v := p.GetValue(); v != "" && v[0] != '/' {
			return fmt.Errorf("value: %q must be empty or start with /", v)
		}
		if mp := p.GetMatchedPrefix(); len(mp) == 0 || mp[0] != '/' {
			return fmt.Errorf("matched_prefix: %q must start with /", mp)
		}
	default:
		return fmt.Errorf("kind: unknown kind %d", p.GetKind())
	}
	return nil
}
