package cli

import (
	"strconv"
	"strings"

	"weft.dev/weft/internal/api"
)

// externalServiceColumns are the `weft get externalservices` columns
// (o == nil: the headers): the hosts, the ports with their protocols and
// the TLS origination.
func externalServiceColumns(o api.Object) []string {
	if o == nil {
		return []string{"HOSTS", "PORTS", "TLS"}
	}
	x := o.(*api.ExternalService)
	ports := make([]string, 0, len(x.Spec.Ports))
	for _, p := range x.Spec.Ports {
		ports = append(ports, strconv.Itoa(int(p.Number))+"/"+getOr(p.Protocol, api.ExternalTCP))
	}
	tls := "<none>"
	if x.Spec.TLS != nil {
		tls = x.Spec.TLS.Mode
	}
	return []string{strings.Join(x.Spec.Hosts, ","), getOr(strings.Join(ports, ","), "<any>"), tls}
}
