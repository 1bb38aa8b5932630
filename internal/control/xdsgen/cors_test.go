package xdsgen

import (
	"testing"

	"google.golang.org/protobuf/proto"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

func TestCORSExtAuthTranslation(t *testing.T) {
	yes := true
	port := gatewayv1.PortNumber(8080)
	other := gatewayv1.Namespace("auth")
	tests := []struct {
		name     string
		filters  []gatewayv1.HTTPRouteFilter
		wantCORS *weftv1.CORSPolicy
		wantAuth *weftv1.ExternalAuth
	}{
		{name: "none"},
		{
			name: "cors, every field",
			filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterCORS, CORS: &gatewayv1.HTTPCORSFilter{
				AllowOrigins: []gatewayv1.CORSOrigin{"https://a.example", "https://*.b.example"}, AllowCredentials: &yes,
				AllowMethods: []gatewayv1.HTTPMethodWithWildcard{"GET", "PUT"}, AllowHeaders: []gatewayv1.HTTPHeaderName{"x-a"},
				ExposeHeaders: []gatewayv1.HTTPHeaderName{"x-id"}, MaxAge: 60,
			}}},
			wantCORS: &weftv1.CORSPolicy{AllowOrigins: []string{"https://a.example", "https://*.b.example"}, AllowCredentials: true,
				AllowMethods: []string{"GET", "PUT"}, AllowHeaders: []string{"x-a"}, ExposeHeaders: []string{"x-id"}, MaxAgeSeconds: 60},
		},
		{
			name:     "cors, max age defaults to 5",
			filters:  []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterCORS, CORS: &gatewayv1.HTTPCORSFilter{AllowOrigins: []gatewayv1.CORSOrigin{"*"}}}},
			wantCORS: &weftv1.CORSPolicy{AllowOrigins: []string{"*"}, MaxAgeSeconds: 5},
		},
		{
			name: "http external auth in the route's namespace",
			filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterExternalAuth, ExternalAuth: &gatewayv1.HTTPExternalAuthFilter{
				ExternalAuthProtocol: gatewayv1.HTTPRouteExternalAuthHTTPProtocol,
				BackendRef:           gatewayv1.BackendObjectReference{Name: "authz", Port: &port},
				HTTPAuthConfig:       &gatewayv1.HTTPAuthConfig{Path: "/check", AllowedRequestHeaders: []string{"x-user"}, AllowedResponseHeaders: []string{"x-auth-user"}},
				ForwardBody:          &gatewayv1.ForwardBodyConfig{MaxSize: 1024},
			}}},
			wantAuth: &weftv1.ExternalAuth{Service: "authz", Namespace: "shop", Path: "/check", AllowedHeaders: []string{"x-user"},
				AllowedResponseHeaders: []string{"x-auth-user"}, MaxBodyBytes: 1024},
		},
		{
			name: "grpc external auth in another namespace",
			filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterExternalAuth, ExternalAuth: &gatewayv1.HTTPExternalAuthFilter{
				ExternalAuthProtocol: gatewayv1.HTTPRouteExternalAuthGRPCProtocol,
				BackendRef:           gatewayv1.BackendObjectReference{Name: "authz", Namespace: &other, Port: &port},
				GRPCAuthConfig:       &gatewayv1.GRPCAuthConfig{AllowedRequestHeaders: []string{"x-user"}},
			}}},
			wantAuth: &weftv1.ExternalAuth{Protocol: weftv1.ExternalAuth_GRPC, Service: "authz", Namespace: "auth", AllowedHeaders: []string{"x-user"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &weftv1.Route{}
			corsExtAuth("shop", gatewayv1.HTTPRouteRule{Filters: tt.filters}, r)
			if !proto.Equal(r.GetCors(), tt.wantCORS) {
				t.Errorf("cors: got %v, want %v", r.GetCors(), tt.wantCORS)
			}
			if !proto.Equal(r.GetExternalAuth(), tt.wantAuth) {
				t.Errorf("external_auth: got %v, want %v", r.GetExternalAuth(), tt.wantAuth)
			}
		})
	}
}

// The CORS and ExternalAuth filters of backendRefs go onto their backends.
func TestCORSExtAuthOnBackends(t *testing.T) {
	port := gatewayv1.PortNumber(80)
	rule := gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{
		{Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterCORS, CORS: &gatewayv1.HTTPCORSFilter{AllowOrigins: []gatewayv1.CORSOrigin{"*"}}}}},
		{Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterExternalAuth, ExternalAuth: &gatewayv1.HTTPExternalAuthFilter{
			ExternalAuthProtocol: gatewayv1.HTTPRouteExternalAuthHTTPProtocol, BackendRef: gatewayv1.BackendObjectReference{Name: "authz", Port: &port}, HTTPAuthConfig: &gatewayv1.HTTPAuthConfig{}}}}},
	}}
	r := &weftv1.Route{Backends: []*weftv1.Backend{{Service: "a"}, {Service: "b"}}}
	corsExtAuth("shop", rule, r)
	if r.GetCors() != nil || r.GetExternalAuth() != nil {
		t.Errorf("the rule got the backends' filters: %v", r)
	}
	if want := (&weftv1.CORSPolicy{AllowOrigins: []string{"*"}, MaxAgeSeconds: 5}); !proto.Equal(r.Backends[0].GetCors(), want) || r.Backends[0].GetExternalAuth() != nil {
		t.Errorf("backends[0] = %v, want cors %v", r.Backends[0], want)
	}
	if want := (&weftv1.ExternalAuth{Service: "authz", Namespace: "shop"}); !proto.Equal(r.Backends[1].GetExternalAuth(), want) || r.Backends[1].GetCors() != nil {
		t.Errorf("backends[1] = %v, want external auth %v", r.Backends[1], want)
	}
}
