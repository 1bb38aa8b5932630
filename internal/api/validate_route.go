package api

import (
	"regexp"
	"slices"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Limits from the Gateway API CRDs.
const (
	maxRouteRules      = 16
	maxMatchesPerRule  = 8
	maxBackendsPerRule = 16
	maxParentRefs      = 32
	maxBackendWeight   = 1000000
	maxHeaderMatches   = 16
	maxPathMatchLength = 1024
	maxRetryStatusCode = 599
	minRetryStatusCode = 400
)

func validateHTTPRoute(e *errs, r *gatewayv1.HTTPRoute) {
	p := fieldPath("spec")
	validateParentRefs(e, p.child("parentRefs"), r.Spec.ParentRefs)
	if len(r.Spec.Rules) > maxRouteRules {
		e.add(p.child("rules"), "at most %d rules are allowed, got %d", maxRouteRules, len(r.Spec.Rules))
	}
	for i, rule := range r.Spec.Rules {
		rp := p.child("rules").index(i)
		if len(rule.Matches) > maxMatchesPerRule {
			e.add(rp.child("matches"), "at most %d matches per rule are allowed, got %d", maxMatchesPerRule, len(rule.Matches))
		}
		for j, m := range rule.Matches {
			validateHTTPMatch(e, rp.child("matches").index(j), m)
		}
		validateHTTPFilters(e, rp, rule, rp.child("filters"), rule.Filters, false)
		validateHTTPWeftFilters(e, rp.child("filters"), rule.Filters) // validate_fault.go
		if len(rule.BackendRefs) > maxBackendsPerRule {
			e.add(rp.child("backendRefs"), "at most %d backendRefs per rule are allowed, got %d", maxBackendsPerRule, len(rule.BackendRefs))
		}
		for j, b := range rule.BackendRefs {
			bp := rp.child("backendRefs").index(j)
			validateBackendRef(e, bp, b.BackendRef)
			validateHTTPFilters(e, rp, rule, bp.child("filters"), b.Filters, true)
			validateHTTPWeftFilters(e, bp.child("filters"), b.Filters) // validate_fault.go
		}
		validateRouteRetry(e, rp, rule) // validate_retry.go
		validateSessionPersistence(e, rp.child("sessionPersistence"), rule.SessionPersistence)
	}
}

func validateGRPCRoute(e *errs, r *gatewayv1.GRPCRoute) {
	p := fieldPath("spec")
	validateParentRefs(e, p.child("parentRefs"), r.Spec.ParentRefs)
	if len(r.Spec.Rules) > maxRouteRules {
		e.add(p.child("rules"), "at most %d rules are allowed, got %d", maxRouteRules, len(r.Spec.Rules))
	}
	for i, rule := range r.Spec.Rules {
		rp := p.child("rules").index(i)
		if len(rule.Matches) > maxMatchesPerRule {
			e.add(rp.child("matches"), "at most %d matches per rule are allowed, got %d", maxMatchesPerRule, len(rule.Matches))
		}
		for j, m := range rule.Matches {
			mp := rp.child("matches").index(j)
			if mm := m.Method; mm != nil {
				validateGRPCMethod(e, mp.child("method"), mm)
			}
			validateHeaderMatches(e, mp.child("headers"), len(m.Headers), func(k int) (string, string, bool) {
				h := m.Headers[k]
				regex := h.Type != nil && *h.Type == gatewayv1.GRPCHeaderMatchRegularExpression
				return string(h.Name), h.Value, regex
			})
		}
		validateGRPCWeftFilters(e, rp.child("filters"), rule.Filters) // validate_fault.go
		if len(rule.BackendRefs) > maxBackendsPerRule {
			e.add(rp.child("backendRefs"), "at most %d backendRefs per rule are allowed, got %d", maxBackendsPerRule, len(rule.BackendRefs))
		}
		validateGRPCFilters(e, rp.child("filters"), rule.Filters)
		for j, b := range rule.BackendRefs {
			bp := rp.child("backendRefs").index(j)
			validateBackendRef(e, bp, b.BackendRef)
			validateGRPCFilters(e, bp.child("filters"), b.Filters)
			validateGRPCWeftFilters(e, bp.child("filters"), b.Filters) // validate_fault.go
		}
		validateSessionPersistence(e, rp.child("sessionPersistence"), rule.SessionPersistence)
	}
}

func validateGRPCMethod(e *errs, p fieldPath, m *gatewayv1.GRPCMethodMatch) {
	typ := gatewayv1.GRPCMethodMatchExact
	if m.Type != nil {
		typ = *m.Type
	}
	switch typ {
	case gatewayv1.GRPCMethodMatchExact, gatewayv1.GRPCMethodMatchRegularExpression:
	default:
		e.add(p.child("type"), "must be Exact or RegularExpression")
		return
	}
	if (m.Service == nil || *m.Service == "") && (m.Method == nil || *m.Method == "") {
		e.add(p, "at least one of service and method is required")
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"service", m.Service}, {"method", m.Method}} {
		if f.v == nil || *f.v == "" {
			continue
		}
		if typ == gatewayv1.GRPCMethodMatchRegularExpression {
			if _, err := weftv1.CompileRegex(*f.v); err != nil {
				e.add(p.child(f.name), "invalid regular expression: %v", err)
			}
		} else if !grpcName.MatchString(*f.v) {
			e.add(p.child(f.name), "invalid gRPC %s name %q", f.name, *f.v)
		}
	}
}

var grpcName = regexp.MustCompile(`^[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$`)

func validateParentRefs(e *errs, p fieldPath, refs []gatewayv1.ParentReference) {
	if len(refs) == 0 {
		e.add(p, "at least one parentRef is required: a Service (east-west) or a Gateway (ingress)")
		return
	}
	if len(refs) > maxParentRefs {
		e.add(p, "at most %d parentRefs are allowed, got %d", maxParentRefs, len(refs))
	}
	for i, ref := range refs {
		rp := p.index(i)
		group, kind := GroupGateway, "Gateway"
		if ref.Group != nil {
			group = string(*ref.Group)
		}
		if ref.Kind != nil {
			kind = string(*ref.Kind)
		}
		switch {
		case kind == "Service" && (group == "" || group == "core"):
		case kind == "Gateway" && group == GroupGateway:
		case kind == "Service":
			e.add(rp.child("group"), "must be \"\" (core) for kind Service, got %q", group)
		case kind == "Gateway":
			e.add(rp.child("group"), "must be %q for kind Gateway, got %q", GroupGateway, group)
		default:
			e.add(rp.child("kind"), "must be Service (group \"\") or Gateway, got %q", kind)
		}
		validateRefName(e, rp, string(ref.Name))
		if ref.Port != nil && (*ref.Port < 1 || *ref.Port > 65535) {
			e.add(rp.child("port"), "must be between 1 and 65535")
		}
	}
}

func validateRefName(e *errs, p fieldPath, name string) {
	if name == "" {
		e.add(p.child("name"), "required")
	}
}

func validateBackendRef(e *errs, p fieldPath, b gatewayv1.BackendRef) {
	validateRefName(e, p, string(b.Name))
	if b.Kind != nil && *b.Kind != "Service" {
		e.add(p.child("kind"), "must be Service, got %q", *b.Kind)
	}
	if b.Group != nil && *b.Group != "" && *b.Group != "core" {
		e.add(p.child("group"), "must be \"\" (core), got %q", *b.Group)
	}
	if b.Port != nil && (*b.Port < 1 || *b.Port > 65535) {
		e.add(p.child("port"), "must be between 1 and 65535")
	}
	if b.Weight != nil && (*b.Weight < 0 || *b.Weight > maxBackendWeight) {
		e.add(p.child("weight"), "must be between 0 and %d", maxBackendWeight)
	}
}

func validateHTTPMatch(e *errs, p fieldPath, m gatewayv1.HTTPRouteMatch) {
	if pm := m.Path; pm != nil {
		pp := p.child("path")
		typ := gatewayv1.PathMatchPathPrefix
		if pm.Type != nil {
			typ = *pm.Type
		}
		value := "/"
		if pm.Value != nil {
			value = *pm.Value
		}
		switch typ {
		case gatewayv1.PathMatchExact, gatewayv1.PathMatchPathPrefix:
			if len(value) == 0 || value[0] != '/' {
				e.add(pp.child("value"), "must start with \"/\", got %q", value)
			}
		case gatewayv1.PathMatchRegularExpression:
			if _, err := weftv1.CompileRegex(value); err != nil {
				e.add(pp.child("value"), "invalid regular expression: %v", err)
			}
		default:
			e.add(pp.child("type"), "must be Exact, PathPrefix or RegularExpression, got %q", typ)
		}
		if len(value) > maxPathMatchLength {
			e.add(pp.child("value"), "must be at most %d characters", maxPathMatchLength)
		}
	}
	validateHeaderMatches(e, p.child("headers"), len(m.Headers), func(k int) (string, string, bool) {
		h := m.Headers[k]
		regex := h.Type != nil && *h.Type == gatewayv1.HeaderMatchRegularExpression
		return string(h.Name), h.Value, regex
	})
	for i, q := range m.QueryParams {
		qp := p.child("queryParams").index(i)
		if q.Name == "" {
			e.add(qp.child("name"), "required")
		}
		if q.Type != nil && *q.Type == gatewayv1.QueryParamMatchRegularExpression {
			if _, err := weftv1.CompileRegex(q.Value); err != nil {
				e.add(qp.child("value"), "invalid regular expression: %v", err)
			}
		}
	}
	if m.Method != nil && !slices.Contains(httpMethods, string(*m.Method)) {
		e.add(p.child("method"), "must be one of %v, got %q", httpMethods, *m.Method)
	}
}

// validateHeaderMatches checks n header matches; at(k) returns the name,
// value and whether the value is a regular expression.
func validateHeaderMatches(e *errs, p fieldPath, n int, at func(int) (string, string, bool)) {
	if n > maxHeaderMatches {
		e.add(p, "at most %d header matches are allowed, got %d", maxHeaderMatches, n)
	}
	for k := range n {
		name, value, regex := at(k)
		hp := p.index(k)
		if !validHeaderName(name) {
			e.add(hp.child("name"), "invalid header name %q", name)
		}
		if regex {
			if _, err := weftv1.CompileRegex(value); err != nil {
				e.add(hp.child("value"), "invalid regular expression: %v", err)
			}
		}
	}
}

// validateGatewayDuration checks an optional Gateway API duration and returns
// it and whether it was valid.
func validateGatewayDuration(e *errs, p fieldPath, d *gatewayv1.Duration) (int64, bool) {
	if d == nil {
		return 0, true
	}
	v, err := parseGatewayDuration(string(*d))
	if err != nil {
		e.add(p, "%v", err)
		return 0, false
	}
	return int64(v), true
}
