package api

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Validate checks o according to its kind and returns an *InvalidError that
// names every offending field, or nil.
func Validate(o Object) error {
	kind := KindOf(o)
	info, ok := LookupKind(kind)
	if !ok {
		return fmt.Errorf("unsupported object type %T", o)
	}
	var e errs
	validateMeta(&e, info, o)
	switch o := o.(type) {
	case *corev1.Service:
		validateService(&e, o)
	case *gatewayv1.HTTPRoute:
		validateHTTPRoute(&e, o)
	case *gatewayv1.GRPCRoute:
		validateGRPCRoute(&e, o)
	case *gatewayv1.Gateway:
		validateGateway(&e, o) // validate_gateway.go
	case *corev1.Secret:
		validateSecret(&e, o) // validate_gateway.go
	case *gatewayv1.TLSRoute:
		validateStreamRoute(&e, o.Spec.ParentRefs, o.Spec.Hostnames, len(o.Spec.Rules), func(i int) []gatewayv1.BackendRef { return o.Spec.Rules[i].BackendRefs })
	case *gatewayv1.TCPRoute:
		if onServices(o.Spec.ParentRefs) {
			validateTCPRoute(&e, o) // validate_tcp.go: GAMMA, attached to Services
			break
		}
		validateStreamRoute(&e, o.Spec.ParentRefs, nil, len(o.Spec.Rules), func(i int) []gatewayv1.BackendRef { return o.Spec.Rules[i].BackendRefs })
	case interface{ validate(*errs) }:
		o.validate(&e)
	}
	if len(e) > 0 {
		return &InvalidError{Kind: kind, Name: o.GetName(), Errors: e}
	}
	return nil
}

func validateMeta(e *errs, info KindInfo, o metav1.Object) {
	p := fieldPath("metadata")
	name := o.GetName()
	switch {
	case name == "":
		e.add(p.child("name"), "required")
	case info.Kind == KindService:
		// Service names become DNS labels (orders.shop).
		for _, msg := range validation.IsDNS1123Label(name) {
			e.add(p.child("name"), "%s", msg)
		}
	case info.Kind == KindMeshConfig:
		if name != MeshConfigName {
			e.add(p.child("name"), "must be %q: MeshConfig is a singleton", MeshConfigName)
		}
	default:
		for _, msg := range validation.IsDNS1123Subdomain(name) {
			e.add(p.child("name"), "%s", msg)
		}
	}
	ns := o.GetNamespace()
	if !info.Namespaced {
		if ns != "" {
			e.add(p.child("namespace"), "must be empty: %s is cluster-scoped", info.Kind)
		}
		return
	}
	if ns == "" {
		e.add(p.child("namespace"), "required")
		return
	}
	for _, msg := range validation.IsDNS1123Label(ns) {
		e.add(p.child("namespace"), "%s", msg)
	}
}

func validateService(e *errs, s *corev1.Service) {
	validateServiceObservability(e, s)
	if mode, ok := s.Annotations[AnnotationMTLSMode]; ok {
		validateMTLSMode(e, fieldPath("metadata.annotations["+AnnotationMTLSMode+"]"), mode)
	}
	p := fieldPath("spec")
	if len(s.Spec.Selector) == 0 {
		e.add(p.child("selector"), "required: a Service selects workloads by label, e.g. {app: %s}", s.Name)
	}
	for k, v := range s.Spec.Selector {
		for _, msg := range validation.IsQualifiedName(k) {
			e.add(p.child("selector"), "key %q: %s", k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			e.add(p.child("selector"), "value %q of %q: %s", v, k, msg)
		}
	}
	names := map[string]int{}
	for i, port := range s.Spec.Ports {
		pp := p.child("ports").index(i)
		if port.Port < 1 || port.Port > 65535 {
			e.add(pp.child("port"), "must be between 1 and 65535")
		}
		if port.TargetPort.IntVal < 0 || port.TargetPort.IntVal > 65535 {
			e.add(pp.child("targetPort"), "must be between 1 and 65535")
		}
		if port.Name == "" {
			if len(s.Spec.Ports) > 1 {
				e.add(pp.child("name"), "required when a Service has more than one port")
			}
			continue
		}
		for _, msg := range validation.IsDNS1123Label(port.Name) {
			e.add(pp.child("name"), "%s", msg)
		}
		if j, dup := names[port.Name]; dup {
			e.add(pp.child("name"), "duplicate port name %q (also spec.ports[%d])", port.Name, j)
		}
		names[port.Name] = i
	}
}

// gatewayDuration is the Gateway API duration format (GEP-2257), a strict
// subset of Go's time.ParseDuration: "1h", "500ms", "1m30s".
var gatewayDuration = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

func parseGatewayDuration(s string) (time.Duration, error) {
	if !gatewayDuration.MatchString(s) {
		return 0, fmt.Errorf("invalid duration %q: want up to four <number><unit> parts with units h, m, s, ms, e.g. \"1m30s\" or \"500ms\"", s)
	}
	return time.ParseDuration(s)
}

// validDuration checks a weft duration field: a Go duration greater than 0.
func validDuration(e *errs, p fieldPath, s string) {
	if s == "" {
		return
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		e.add(p, "invalid duration %q: use a number with a unit, e.g. \"10s\" or \"500ms\"", s)
		return
	}
	if d <= 0 {
		e.add(p, "must be greater than 0")
	}
}

// validHeaderName reports whether s is an RFC 9110 field name (a token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
