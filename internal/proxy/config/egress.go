package config

import (
	"google.golang.org/protobuf/proto"

	"weft.dev/weft/internal/proxy/egress"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Egress is the compiled outbound traffic policy and ExternalServices
// (internal/proxy/egress), with the Service each ExternalService's calls
// are observed as (metrics, access log, tap, trace).
type Egress struct {
	*egress.Table
	// Services by ExternalService key.
	Services map[string]*Service
	src      *weftv1.Egress
}

// Observed is the Service the calls to external service x are observed as.
func (e *Egress) Observed(x *egress.Service) *Service { return e.Services[x.Key] }

// buildEgress compiles the Egress the Service resources carry: the
// control plane puts the same one on all of them, so c takes the one of
// its first service by key, and keeps prev's compiled value when it did
// not change (so TLS origination keeps its connections across pushes).
func buildEgress(prev *Egress, c *Config) (*Egress, error) {
	var first string
	for key := range c.Services {
		if first == "" || key < first {
			first = key
		}
	}
	var src *weftv1.Egress
	if s := c.Services[first]; s != nil {
		src = s.egressSrc
	}
	if prev != nil && proto.Equal(prev.src, src) {
		return prev, nil
	}
	t, err := egress.Compile(src)
	if err != nil {
		return nil, err
	}
	e := &Egress{Table: t, Services: map[string]*Service{}, src: src}
	for _, x := range src.GetExternalServices() {
		key := weftv1.ResourceName(x.GetName(), x.GetNamespace())
		svc := &Service{Key: key, Name: x.GetName(), Namespace: x.GetNamespace()}
		buildObservability(svc, &weftv1.Service{AccessLog: x.GetAccessLog()}) // observe.go
		e.Services[key] = svc
	}
	return e, nil
}
