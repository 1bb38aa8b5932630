package api

import (
	"math"
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Validate checks the FaultInjection and names every offending field.
func (f *FaultInjection) Validate() error { return Validate(f) }

func (f *FaultInjection) validate(e *errs) {
	p := fieldPath("spec")
	s := f.Spec
	if s.Delay == nil && s.Abort == nil {
		e.add(p, "set delay, abort or both")
	}
	if d := s.Delay; d != nil {
		dp := p.child("delay")
		validateFaultDelay(e, dp.child("fixedDelay"), d.FixedDelay)
		validatePercentage(e, dp.child("percentage"), d.Percentage)
	}
	if a := s.Abort; a != nil {
		ap := p.child("abort")
		switch {
		case a.HTTPStatus != 0 && a.GRPCStatus != "":
			e.add(ap, "set exactly one of httpStatus and grpcStatus, not both")
		case a.HTTPStatus == 0 && a.GRPCStatus == "":
			e.add(ap, "set one of httpStatus (400-599) and grpcStatus (e.g. UNAVAILABLE)")
		case a.HTTPStatus != 0 && (a.HTTPStatus < 400 || a.HTTPStatus > 599):
			e.add(ap.child("httpStatus"), "must be between 400 and 599, got %d", a.HTTPStatus)
		case a.GRPCStatus != "":
			if _, ok := GRPCCodes[a.GRPCStatus]; !ok {
				e.add(ap.child("grpcStatus"), "must be a gRPC status name other than OK, such as UNAVAILABLE or RESOURCE_EXHAUSTED, got %q", a.GRPCStatus)
			}
		}
		validatePercentage(e, ap.child("percentage"), a.Percentage)
	}
	if m := s.Match; m != nil {
		mp := p.child("match").child("headers")
		if len(m.Headers) > MaxFaultHeaderMatches {
			e.add(mp, "at most %d header matches are allowed, got %d", MaxFaultHeaderMatches, len(m.Headers))
		}
		for i, h := range m.Headers {
			if !validHeaderName(h.Name) {
				e.add(mp.index(i).child("name"), "invalid header name %q", h.Name)
			}
		}
	}
}

func validateFaultDelay(e *errs, p fieldPath, s string) {
	if s == "" {
		e.add(p, "required, a duration such as \"200ms\"")
		return
	}
	d, err := time.ParseDuration(s)
	max, _ := time.ParseDuration(MaxFaultDelay)
	switch {
	case err != nil:
		e.add(p, "invalid duration %q: use a number with a unit, e.g. \"200ms\" or \"1s\"", s)
	case d <= 0:
		e.add(p, "must be greater than 0")
	case d > max:
		e.add(p, "must be at most %s", MaxFaultDelay)
	case d%time.Millisecond != 0:
		e.add(p, "must be a whole number of milliseconds, got %s", s)
	}
}

// validatePercentage checks an optional percentage: 0 to 100, fractions
// allowed.
func validatePercentage(e *errs, p fieldPath, v *float64) {
	if v != nil && (math.IsNaN(*v) || *v < 0 || *v > 100) {
		e.add(p, "must be between 0 and 100, got %v", *v)
	}
}

// validateWeftFilter checks the filters weft implements on its own terms:
// RequestMirror (the backend it mirrors to, percent or fraction) and
// ExtensionRef, which may only name a FaultInjection. n is the filter's
// index among its rule's filters; faults counts ExtensionRefs to
// FaultInjections in the rule so far (at most one per rule).
func validateWeftFilter(e *errs, p fieldPath, typ string, ext *gatewayv1.LocalObjectReference, m *gatewayv1.HTTPRequestMirrorFilter, faults *int) {
	if (typ == string(gatewayv1.HTTPRouteFilterExtensionRef)) != (ext != nil) {
		e.add(p.child("extensionRef"), "must be set exactly when type is ExtensionRef")
	}
	if (typ == string(gatewayv1.HTTPRouteFilterRequestMirror)) != (m != nil) {
		e.add(p.child("requestMirror"), "must be set exactly when type is RequestMirror")
	}
	if ext != nil {
		xp := p.child("extensionRef")
		if string(ext.Group) != GroupWeft || string(ext.Kind) != KindFaultInjection {
			e.add(xp, "unsupported extension filter group %q kind %q: weft supports group %q kind %q", ext.Group, ext.Kind, GroupWeft, KindFaultInjection)
		}
		validateRefName(e, xp, string(ext.Name))
		if *faults++; *faults > 1 {
			e.add(xp, "at most one FaultInjection per rule")
		}
	}
	if m != nil {
		mp := p.child("requestMirror")
		validateBackendRef(e, mp.child("backendRef"), gatewayv1.BackendRef{BackendObjectReference: m.BackendRef})
		if m.Percent != nil && m.Fraction != nil {
			e.add(mp, "set at most one of percent and fraction")
		}
		if m.Percent != nil && (*m.Percent < 0 || *m.Percent > 100) {
			e.add(mp.child("percent"), "must be between 0 and 100, got %d", *m.Percent)
		}
		if f := m.Fraction; f != nil {
			den := int32(100)
			if f.Denominator != nil {
				den = *f.Denominator
			}
			switch {
			case den < 1:
				e.add(mp.child("fraction.denominator"), "must be at least 1, got %d", den)
			case f.Numerator < 0 || f.Numerator > den:
				e.add(mp.child("fraction.numerator"), "must be between 0 and the denominator (%d), got %d", den, f.Numerator)
			}
		}
	}
}

// validateHTTPWeftFilters runs validateWeftFilter on the filters of an
// HTTPRoute rule.
func validateHTTPWeftFilters(e *errs, p fieldPath, fs []gatewayv1.HTTPRouteFilter) {
	faults := 0
	for i, f := range fs {
		validateWeftFilter(e, p.index(i), string(f.Type), f.ExtensionRef, f.RequestMirror, &faults)
	}
}

// validateGRPCWeftFilters runs validateWeftFilter on the filters of a
// GRPCRoute rule.
func validateGRPCWeftFilters(e *errs, p fieldPath, fs []gatewayv1.GRPCRouteFilter) {
	faults := 0
	for i, f := range fs {
		validateWeftFilter(e, p.index(i), string(f.Type), f.ExtensionRef, f.RequestMirror, &faults)
	}
}
