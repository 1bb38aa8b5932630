package xdsgen

import (
	"cmp"
	"strings"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// compileEgress translates MeshConfig spec.outboundTrafficPolicy and every
// ExternalService into the Egress that every Service resource carries (the
// same message, shared: it must not be modified). A configuration with
// neither yields nil, so Service resources stay as they were. An
// ExternalService without spec.egressGateway gets the MeshConfig's
// outboundTrafficPolicy.egressGateway, if any.
func compileEgress(cfg *api.Set) *weftv1.Egress {
	registryOnly := cfg.MeshConfig != nil && cfg.MeshConfig.Spec.OutboundTrafficPolicy != nil &&
		cfg.MeshConfig.Spec.OutboundTrafficPolicy.Mode == api.OutboundRegistryOnly
	if !registryOnly && len(cfg.ExternalServices) == 0 {
		return nil
	}
	logMode := compileObservability(&api.Set{MeshConfig: cfg.MeshConfig}).def
	var defGateway string
	if mc := cfg.MeshConfig; mc != nil && mc.Spec.OutboundTrafficPolicy != nil && mc.Spec.OutboundTrafficPolicy.EgressGateway != nil {
		g := mc.Spec.OutboundTrafficPolicy.EgressGateway
		defGateway = weftv1.ResourceName(g.Name, cmp.Or(g.Namespace, api.DefaultNS))
	}
	e := &weftv1.Egress{RegistryOnly: registryOnly}
	for _, x := range cfg.ExternalServices {
		out := &weftv1.ExternalService{Name: x.Name, Namespace: x.Namespace, AccessLog: logMode, EgressGateway: defGateway}
		if g := x.Spec.EgressGateway; g != "" {
			out.EgressGateway = weftv1.ResourceName(g, x.Namespace)
		}
		for _, h := range x.Spec.Hosts {
			out.Hosts = append(out.Hosts, strings.ToLower(h))
		}
		for _, p := range x.Spec.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = api.ExternalTCP
			}
			out.Ports = append(out.Ports, &weftv1.ExternalServicePort{Number: uint32(p.Number), Protocol: proto})
		}
		if t := x.Spec.TLS; t != nil && t.Mode == api.TLSOriginate {
			out.Tls = &weftv1.ExternalServiceTLS{CaCertificates: t.CACertificates, Sni: t.SNI}
		}
		e.ExternalServices = append(e.ExternalServices, out)
	}
	return e
}

// externalServicesChanged reports whether an ExternalService was added,
// removed or changed between two configurations: every Service resource
// carries them all, so Update then reports all.
func externalServicesChanged(prev, next *api.Set) bool {
	old, cur := api.Changed(prev.ExternalServices, next.ExternalServices)
	return len(old)+len(cur) > 0
}
