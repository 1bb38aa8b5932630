// Package xdsmeta defines the node metadata a weft proxy sends on its xDS
// stream to register its workload. It is shared by the proxy and the control
// plane, which otherwise share only API types.
package xdsmeta

import (
	"errors"
	"fmt"
	"net"
	"regexp"

	"google.golang.org/protobuf/types/known/structpb"
)

// Workload is what a proxy tells the control plane about itself.
type Workload struct {
	Service        string
	Namespace      string
	ServiceAccount string
	Version        string
	Labels         map[string]string
	// Address is host:port of the proxy's inbound listener, or "" for a
	// workload that only makes calls.
	Address string
	// Admin is host:port of the proxy's admin listener (readiness,
	// /metrics), which the control plane scrapes when it is on loopback on
	// the same machine; "" for none.
	Admin string
}

var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// Validate checks the fields, naming the first bad one.
func (w Workload) Validate() error {
	for _, f := range []struct{ name, v string }{{"service", w.Service}, {"namespace", w.Namespace}, {"serviceAccount", w.ServiceAccount}} {
		if !dns1123Label.MatchString(f.v) {
			return fmt.Errorf("%s: %q is not a DNS-1123 label (lowercase letters, digits and '-', at most 63)", f.name, f.v)
		}
	}
	if w.Address != "" {
		if _, _, err := net.SplitHostPort(w.Address); err != nil {
			return fmt.Errorf("address: %w", err)
		}
	}
	if w.Admin != "" {
		if _, _, err := net.SplitHostPort(w.Admin); err != nil {
			return fmt.Errorf("admin: %w", err)
		}
	}
	return nil
}

// Encode turns w into node metadata.
func Encode(w Workload) (*structpb.Struct, error) {
	labels := map[string]any{}
	for k, v := range w.Labels {
		labels[k] = v
	}
	return structpb.NewStruct(map[string]any{
		"service":        w.Service,
		"namespace":      w.Namespace,
		"serviceAccount": w.ServiceAccount,
		"version":        w.Version,
		"labels":         labels,
		"address":        w.Address,
		"admin":          w.Admin,
	})
}

// Decode reads and validates node metadata.
func Decode(s *structpb.Struct) (Workload, error) {
	if s == nil {
		return Workload{}, errors.New("node metadata is missing")
	}
	f := s.GetFields()
	str := func(k string) string { return f[k].GetStringValue() }
	w := Workload{
		Service:        str("service"),
		Namespace:      str("namespace"),
		ServiceAccount: str("serviceAccount"),
		Version:        str("version"),
		Address:        str("address"),
		Admin:          str("admin"),
		Labels:         map[string]string{},
	}
	for k, v := range f["labels"].GetStructValue().GetFields() {
		w.Labels[k] = v.GetStringValue()
	}
	return w, w.Validate()
}

// ControlNamespace and ControlServiceAccount name the control plane's own
// identity, spiffe://<trust-domain>/ns/weft-system/sa/weft-control. No
// workload may have an identity in ControlNamespace: the CA never signs one
// and the xDS server refuses it.
const (
	ControlNamespace      = "weft-system"
	ControlServiceAccount = "weft-control"
)
