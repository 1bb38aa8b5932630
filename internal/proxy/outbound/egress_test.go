package outbound

import (
	"encoding/pem"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestEgress drives the egress hook of the passthrough path with a static
// config: REGISTRY_ONLY refusals, declared hosts and ports, TLS
// origination with the right CA, the system roots (which do not know the
// test server's) and a missing egress gateway.
func TestEgress(t *testing.T) {
	plain := httptest.NewServer(echoApp("outside"))
	defer plain.Close()
	secure := httptest.NewTLSServer(echoApp("outside-tls"))
	defer secure.Close()
	_, plainPort, _ := net.SplitHostPort(plain.Listener.Addr().String())
	_, securePort, _ := net.SplitHostPort(secure.Listener.Addr().String())
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.Certificate().Raw}))

	m := newMesh(t)
	web := svc("web")
	web.Egress = &weftv1.Egress{RegistryOnly: true, ExternalServices: []*weftv1.ExternalService{
		{Name: "local", Namespace: "default", Hosts: []string{"localhost"}, Ports: []*weftv1.ExternalServicePort{{Number: mustPort(plainPort), Protocol: "HTTP"}}},
		{Name: "secure", Namespace: "default", Hosts: []string{"127.0.0.1"}, Ports: []*weftv1.ExternalServicePort{{Number: mustPort(securePort), Protocol: "HTTP"}},
			Tls: &weftv1.ExternalServiceTLS{CaCertificates: ca}},
		{Name: "gated", Namespace: "default", Hosts: []string{"gated.example.com"}, EgressGateway: "egress-gw.default"},
	}}
	m.addService(web)
	m.commit(t)
	m.startOutbound(t, nil)

	tests := []struct {
		name, url  string
		code       int
		reason     string
		bodyPrefix string
	}{
		{"undeclared", "http://127.0.0.2:" + plainPort + "/", 502, "registry-only", "weft: 127.0.0.2:" + plainPort + " is not a mesh service and no ExternalService declares it"},
		{"declared", "http://localhost:" + plainPort + "/p", 200, "", "app=outside"},
		{"declared host, other port", "http://localhost:1/", 502, "registry-only", "weft: ExternalService local.default declares the host of localhost:1 but not this port"},
		{"tls origination", "http://127.0.0.1:" + securePort + "/s", 200, "", "app=outside-tls"},
		{"gateway missing", "http://gated.example.com/", 503, "egress-gateway", "weft: the egress gateway egress-gw.default of ExternalService gated.default is not a mesh service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, h := m.get(t, tt.url)
			if code != tt.code || h.Get("X-Weft-Reason") != tt.reason || !strings.Contains(body, tt.bodyPrefix) {
				t.Fatalf("GET %s = %d %q %q; want %d %q %q", tt.url, code, h.Get("X-Weft-Reason"), body, tt.code, tt.reason, tt.bodyPrefix)
			}
		})
	}
	refused := map[string]float64{}
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "weft_proxy_egress_refused_total" {
			for _, s := range mf.GetMetric() {
				var class, kind string
				for _, lp := range s.GetLabel() {
					switch lp.GetName() {
					case "host_class":
						class = lp.GetValue()
					case "kind":
						kind = lp.GetValue()
					}
				}
				refused[class+"/"+kind] = s.GetCounter().GetValue()
			}
		}
	}
	if want := map[string]float64{"ip/http": 1, "local.default/http": 1}; !maps.Equal(refused, want) {
		t.Errorf("weft_proxy_egress_refused_total = %v, want %v", refused, want)
	}
}

func mustPort(s string) uint32 {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		panic(err)
	}
	return uint32(n)
}

// TestEgressTLSUnverified: TLS origination to a server whose certificate
// the configured CA did not sign is a 502 tls-origination, and the server
// never gets the request.
func TestEgressTLSUnverified(t *testing.T) {
	var hits atomic.Int64
	secure := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	secure.Config.ErrorLog = log.New(io.Discard, "", 0)
	secure.StartTLS()
	defer secure.Close()

	m := newMesh(t)
	web := svc("web")
	web.Egress = &weftv1.Egress{ExternalServices: []*weftv1.ExternalService{
		// The system roots do not know httptest's certificate.
		{Name: "secure", Namespace: "default", Hosts: []string{"127.0.0.1"}, Tls: &weftv1.ExternalServiceTLS{}},
	}}
	m.addService(web)
	m.commit(t)
	m.startOutbound(t, nil)
	code, body, h := m.get(t, "http://"+secure.Listener.Addr().String()+"/")
	if code != 502 || h.Get("X-Weft-Reason") != "tls-origination" || !strings.Contains(body, "weft: TLS origination to") || !strings.Contains(body, "certificate") {
		t.Fatalf("got %d %q %q, want 502 tls-origination naming the certificate", code, h.Get("X-Weft-Reason"), body)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the server got %d requests over unverified TLS", n)
	}
}
