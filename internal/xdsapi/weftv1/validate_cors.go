package weftv1

import (
	"fmt"
	"regexp"
)

// corsOrigin is the Gateway API CORSOrigin pattern.
var corsOrigin = regexp.MustCompile(`^(\*|https?://((\*\.)?([a-zA-Z0-9\-]+\.)*[a-zA-Z0-9-]+|\*)(:[0-9]{1,5})?)$`)

// httpToken is an RFC 9110 token (a method or a header name).
var httpToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// MaxExternalAuthBody bounds ExternalAuth.max_body_bytes (1 MiB).
const MaxExternalAuthBody = 1 << 20

// MaxExternalAuthTimeoutMs bounds ExternalAuth.timeout_ms (one minute).
const MaxExternalAuthTimeoutMs = 60000

// validateCORSExtAuth checks the CORS and external authorization filters
// of a route and of its backends.
func validateCORSExtAuth(r *Route) error {
	if err := validateCORSExtAuthOf(r.GetCors(), r.GetExternalAuth()); err != nil {
		return err
	}
	for i, b := range r.GetBackends() {
		if err := validateCORSExtAuthOf(b.GetCors(), b.GetExternalAuth()); err != nil {
			return fmt.Errorf("backends[%d].%w", i, err)
		}
	}
	return nil
}

// validateCORSExtAuthOf checks a CORS policy and an external authorization
// of a route or a backend.
func validateCORSExtAuthOf(c *CORSPolicy, a *ExternalAuth) error {
	if c != nil {
		if err := wildcardAlone("cors.allow_origins", c.GetAllowOrigins()); err != nil {
			return err
		}
		for i, o := range c.GetAllowOrigins() {
			if !corsOrigin.MatchString(o) {
				return fmt.Errorf("cors.allow_origins[%d]: %q is not \"*\" or <scheme>://<host>[:<port>] with scheme http or https", i, o)
			}
		}
		if err := wildcardAlone("cors.allow_methods", c.GetAllowMethods()); err != nil {
			return err
		}
		for i, m := range c.GetAllowMethods() {
			if !httpToken.MatchString(m) {
				return fmt.Errorf("cors.allow_methods[%d]: %q is not a method", i, m)
			}
		}
		for _, l := range []struct {
			field string
			vs    []string
		}{{"cors.allow_headers", c.GetAllowHeaders()}, {"cors.expose_headers", c.GetExposeHeaders()}} {
			if err := wildcardAlone(l.field, l.vs); err != nil {
				return err
			}
			for i, h := range l.vs {
				if !httpToken.MatchString(h) {
					return fmt.Errorf("%s[%d]: %q is not a header name", l.field, i, h)
				}
			}
		}
	}
	if a != nil {
		switch {
		case a.GetProtocol() != ExternalAuth_HTTP && a.GetProtocol() != ExternalAuth_GRPC:
			return fmt.Errorf("external_auth.protocol: unknown protocol %d", a.GetProtocol())
		case a.GetService() == "" || a.GetNamespace() == "":
			return fmt.Errorf("external_auth: service and namespace are required")
		case a.GetMaxBodyBytes() > MaxExternalAuthBody:
			return fmt.Errorf("external_auth.max_body_bytes: %d exceeds %d", a.GetMaxBodyBytes(), MaxExternalAuthBody)
		case a.GetTimeoutMs() > MaxExternalAuthTimeoutMs:
			return fmt.Errorf("external_auth.timeout_ms: %d exceeds %d", a.GetTimeoutMs(), MaxExternalAuthTimeoutMs)
		}
		if p := a.GetPath(); p != "" && p[0] != '/' {
			return fmt.Errorf("external_auth.path: %q must start with /", p)
		}
		for _, l := range []struct {
			field string
			vs    []string
		}{{"external_auth.allowed_headers", a.GetAllowedHeaders()}, {"external_auth.allowed_response_headers", a.GetAllowedResponseHeaders()}} {
			for i, h := range l.vs {
				if !httpToken.MatchString(h) {
					return fmt.Errorf("%s[%d]: %q is not a header name", l.field, i, h)
				}
			}
		}
	}
	return nil
}

// wildcardAlone refuses a list that has "*" and other entries.
func wildcardAlone(field string, vs []string) error {
	if len(vs) < 2 {
		return nil
	}
	for i, v := range vs {
		if v == "*" {
			return fmt.Errorf("%s[%d]: \"*\" must be the only entry", field, i)
		}
	}
	return nil
}
