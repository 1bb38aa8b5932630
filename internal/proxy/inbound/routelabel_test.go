package inbound

import (
	"net/http"
	"testing"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/route"
)

func TestRouteLabel(t *testing.T) {
	rt := func(name string, backends ...string) config.Route {
		r := config.Route{Route: route.Route{Name: name}}
		for _, b := range backends {
			r.Backends = append(r.Backends, config.Backend{Service: b})
		}
		return r
	}
	cfg := &config.Config{Services: map[string]*config.Service{
		"backend.default": {Key: "backend.default", Routes: []config.Route{rt("default/backend-api/0")},
			ConsumerRoutes: map[string][]config.Route{"team": {rt("team/backend-canary/0", "backend.default")}}},
		// A split on another service that sends here, and one that does not.
		"front.default": {Key: "front.default", Routes: []config.Route{rt("default/front-split/0", "front.default", "backend.default"), rt("default/front-only/0", "front.default")}},
	}}
	l := &Listener{dest: "backend.default", opts: Options{Provider: config.NewStatic(cfg)}}
	mtls, plain := &peerInfo{id: "spiffe://weft.local/ns/default/sa/client"}, &peerInfo{plaintext: true}
	tunnel := &peerInfo{id: "spiffe://weft.local/ns/default/sa/client", tunnel: true}
	for _, tc := range []struct {
		name   string
		header []string
		peer   *peerInfo
		want   string
	}{
		{"no header", nil, mtls, ""},
		{"producer route", []string{"default/backend-api/0"}, mtls, "default/backend-api/0"},
		{"consumer route", []string{"team/backend-canary/0"}, mtls, "team/backend-canary/0"},
		{"route of another service that sends here", []string{"default/front-split/0"}, mtls, "default/front-split/0"},
		{"route of another service that does not", []string{"default/front-only/0"}, mtls, UnknownRoute},
		{"made-up route", []string{"/admin/users/42"}, mtls, UnknownRoute},
		{"two values", []string{"default/backend-api/0", "default/backend-api/0"}, mtls, UnknownRoute},
		{"plaintext caller", []string{"default/backend-api/0"}, plain, ""},
		{"inside a weft-tcp tunnel (the app's bytes)", []string{"default/backend-api/0"}, tunnel, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != nil {
				h[RouteHeader] = tc.header
			}
			if got := l.routeLabel(h, tc.peer); got != tc.want {
				t.Errorf("routeLabel = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRouteHeaderNeverReachesTheApp(t *testing.T) {
	for _, k := range []string{"X-Weft-Route", "x-weft-route", "X_Weft_Route"} {
		h := http.Header{k: {"default/backend-api/0"}, "X-Other": {"kept"}}
		stripIdentityHeaders(h)
		if _, ok := h[k]; ok || h.Get("X-Other") != "kept" {
			t.Errorf("%s: after strip %v", k, h)
		}
	}
}
