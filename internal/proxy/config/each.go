package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// ResourceError is one resource of a Delta that did not compile.
type ResourceError struct {
	// Type is "Service" or "Endpoints"; Name the resource name.
	Type, Name string
	Err        error
}

func (e ResourceError) Error() string { return fmt.Sprintf("%s %q: %v", e.Type, e.Name, e.Err) }

// RejectedError lists the resources of a Delta that did not compile, by
// type and name.
type RejectedError struct {
	Resources []ResourceError
}

func (e *RejectedError) Error() string {
	msgs := make([]string, len(e.Resources))
	for i, r := range e.Resources {
		msgs[i] = r.Error()
	}
	return strings.Join(msgs, "; ")
}

// Names returns the names of the rejected resources.
func (e *RejectedError) Names() []string {
	out := make([]string, len(e.Resources))
	for i, r := range e.Resources {
		out[i] = r.Name
	}
	return out
}

// UpdateEach is Update compiling each resource on its own: a resource that
// does not compile is left out of the new Config — its previous version, if
// any, stays — and reported in the RejectedError, while every other change
// of d is applied. One bad resource thus never holds back the others. The
// returned Config is never nil; the error is nil when every resource
// compiled.
func (prev *Config) UpdateEach(version string, d Delta) (*Config, *RejectedError) {
	var rejected []ResourceError
	c := &Config{Version: version, Services: prev.Services, Endpoints: prev.Endpoints}
	if len(d.Services) > 0 || len(d.RemovedServices) > 0 {
		c.Services = maps.Clone(prev.Services)
		for _, name := range d.RemovedServices {
			delete(c.Services, name)
		}
		for name, s := range d.Services {
			svc, err := buildService(s)
			if err == nil && svc.Key != name {
				err = fmt.Errorf("name and namespace say %q", svc.Key)
			}
			if err != nil {
				rejected = append(rejected, ResourceError{"Service", name, err})
				continue
			}
			c.Services[name] = svc
		}
	}
	if len(d.Endpoints) > 0 || len(d.RemovedEndpoints) > 0 {
		c.Endpoints = maps.Clone(prev.Endpoints)
		for _, name := range d.RemovedEndpoints {
			delete(c.Endpoints, name)
		}
		for name, e := range d.Endpoints {
			var (
				eps []Endpoint
				err error
			)
			if key := weftv1.ResourceName(e.GetService(), e.GetNamespace()); key != name {
				err = fmt.Errorf("service and namespace say %q", key)
			} else {
				eps, err = buildEndpoints(e)
			}
			if err != nil {
				rejected = append(rejected, ResourceError{"Endpoints", name, err})
				continue
			}
			c.Endpoints[name] = eps
		}
	}
	// The namespaces change only when a service comes or goes: a key
	// names its namespace.
	c.Egress = prev.Egress
	if c.Egress == nil || len(d.Services) > 0 || len(d.RemovedServices) > 0 {
		eg, err := buildEgress(prev.Egress, c) // egress.go
		if err != nil {
			rejected = append(rejected, ResourceError{"Service", "egress", err})
		} else {
			c.Egress = eg
		}
	}
	c.Namespaces = prev.Namespaces
	if servicesComeOrGo(prev, d) {
		c.Namespaces = make(map[string]bool, len(prev.Namespaces))
		for _, svc := range c.Services {
			c.Namespaces[svc.Namespace] = true
		}
	}
	if len(rejected) == 0 {
		return c, nil
	}
	slices.SortFunc(rejected, func(a, b ResourceError) int {
		if a.Type != b.Type {
			return strings.Compare(a.Type, b.Type)
		}
		return strings.Compare(a.Name, b.Name)
	})
	return c, &RejectedError{Resources: rejected}
}
