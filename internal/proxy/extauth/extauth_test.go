package extauth

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

func TestApply(t *testing.T) {
	answer := http.Header{"X-Auth-User": {"alice"}, "X-Tenant": {"t1"}, "Content-Length": {"0"}, "Date": {"now"}, "Host": {"h"}, "X-Weft-Reason": {"r"}}
	tests := []struct {
		name    string
		allowed []string
		req     http.Header
		want    http.Header
	}{
		{"listed headers replace the caller's; missing ones are removed", []string{"x-auth-user", "x-role"},
			http.Header{"X-Auth-User": {"mallory"}, "X-Role": {"admin"}, "Accept": {"*/*"}},
			http.Header{"X-Auth-User": {"alice"}, "Accept": {"*/*"}}},
		{"no list copies all but message headers", nil,
			http.Header{"Accept": {"*/*"}},
			http.Header{"X-Auth-User": {"alice"}, "X-Tenant": {"t1"}, "Accept": {"*/*"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Compile(&weftv1.ExternalAuth{Service: "a", Namespace: "d", AllowedResponseHeaders: tt.allowed})
			a.Apply(tt.req, answer)
			if !reflect.DeepEqual(tt.req, tt.want) {
				t.Errorf("got %v, want %v", tt.req, tt.want)
			}
		})
	}
}

func TestCheckRequest(t *testing.T) {
	a := Compile(&weftv1.ExternalAuth{Service: "authz", Namespace: "d", Path: "/check/", AllowedHeaders: []string{"x-user"}})
	if a.Service != "authz.d" || a.Timeout != DefaultTimeout {
		t.Fatalf("compiled %+v", a)
	}
	r := httptest.NewRequest("PUT", "http://orders.shop/a/b?x=1", nil)
	r.Header.Set("Authorization", "Bearer t")
	r.Header.Set("X-User", "alice")
	r.Header.Set("Cookie", "secret")
	req := a.CheckRequest(context.Background(), r, nil)
	if req.Method != "PUT" || req.URL.Path != "/check/a/b" || req.URL.RawQuery != "x=1" || req.Host != "orders.shop" || req.ContentLength != 0 {
		t.Errorf("check %s %s?%s host %s length %d", req.Method, req.URL.Path, req.URL.RawQuery, req.Host, req.ContentLength)
	}
	want := http.Header{"Authorization": {"Bearer t"}, "X-User": {"alice"}}
	if !reflect.DeepEqual(req.Header, want) {
		t.Errorf("check headers %v, want %v", req.Header, want)
	}
}

func TestReadBody(t *testing.T) {
	tests := []struct {
		name    string
		max     uint32
		body    string
		chunked bool
		ok      bool
		sent    string
	}{
		{"no forwarding", 0, "abc", false, true, ""},
		{"within the limit", 4, "abcd", false, true, "abcd"},
		{"over the limit", 4, "abcde", false, false, ""},
		{"chunked over the limit", 4, "abcde", true, false, ""},
		{"chunked within", 8, "abcde", true, true, "abcde"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Compile(&weftv1.ExternalAuth{Service: "a", Namespace: "d", MaxBodyBytes: tt.max})
			r := httptest.NewRequest("POST", "http://x/", strings.NewReader(tt.body))
			if tt.chunked {
				r.ContentLength = -1
			}
			b, ok, err := a.ReadBody(r)
			if err != nil || ok != tt.ok || string(b) != tt.sent {
				t.Fatalf("ReadBody = %q, %v, %v; want %q, %v", b, ok, err, tt.sent, tt.ok)
			}
			if ok {
				rest, _ := io.ReadAll(r.Body)
				if string(rest) != tt.body {
					t.Errorf("the request's body is now %q, want %q", rest, tt.body)
				}
			}
		})
	}
}

// The proxy-side work of one check: building the check request and
// copying an allowing answer's header.
func BenchmarkCheck(b *testing.B) {
	a := Compile(&weftv1.ExternalAuth{Service: "authz", Namespace: "d", Path: "/check", AllowedHeaders: []string{"x-user"}, AllowedResponseHeaders: []string{"x-auth-user"}})
	r := httptest.NewRequest("GET", "http://orders/a?x=1", nil)
	r.Header.Set("X-User", "alice")
	answer := http.Header{"X-Auth-User": {"alice"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		a.CheckRequest(ctx, r, nil)
		a.Apply(r.Header, answer)
	}
}

// grpcAnswer is an ext_authz answer: a CheckResponse frame (nil: none)
// with grpc-status st in the trailer.
func grpcAnswer(t *testing.T, cr *authv3.CheckResponse, st string) *http.Response {
	t.Helper()
	var body []byte
	if cr != nil {
		b, err := proto.Marshal(cr)
		if err != nil {
			t.Fatal(err)
		}
		body = make([]byte, 5+len(b))
		binary.BigEndian.PutUint32(body[1:5], uint32(len(b)))
		copy(body[5:], b)
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Trailer: http.Header{"Grpc-Status": {st}}, Body: io.NopCloser(bytes.NewReader(body))}
}

func TestDecideGRPC(t *testing.T) {
	hv := func(k, v string) []*corev3.HeaderValueOption {
		return []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: k, Value: v}}}
	}
	tests := []struct {
		name string
		resp *http.Response
		want Decision // Err compared by presence
	}{
		{"ok", grpcAnswer(t, &authv3.CheckResponse{Status: &rpcstatus.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: hv("x-auth-user", "alice"), HeadersToRemove: []string{"cookie"}}}}, "0"),
			Decision{Allowed: true, Header: http.Header{"X-Auth-User": {"alice"}}, Remove: []string{"Cookie"}}},
		{"denied with a status", grpcAnswer(t, &authv3.CheckResponse{Status: &rpcstatus.Status{Code: 7}, HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized}, Headers: hv("www-authenticate", "Bearer"), Body: "no"}}}, "0"),
			Decision{Status: 401, Header: http.Header{"Www-Authenticate": {"Bearer"}}, Body: []byte("no")}},
		{"denied without a status", grpcAnswer(t, &authv3.CheckResponse{Status: &rpcstatus.Status{Code: 7}}, "0"),
			Decision{Status: 403, Header: http.Header{}, Body: []byte{}}},
		{"grpc error", grpcAnswer(t, nil, "14"), Decision{Unavailable: true}},
		{"no message", grpcAnswer(t, nil, "0"), Decision{Unavailable: true}},
		{"http error", &http.Response{StatusCode: 503, Header: http.Header{}, Body: http.NoBody}, Decision{Unavailable: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideGRPC(tt.resp)
			if (got.Err != nil) != tt.want.Unavailable {
				t.Errorf("err %v, want one: %v", got.Err, tt.want.Unavailable)
			}
			got.Err = nil
			if len(got.Body) == 0 && len(tt.want.Body) == 0 {
				got.Body, tt.want.Body = nil, nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestGRPCCheckRequest(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		want    map[string]string
	}{
		{"listed headers", []string{"x-user"}, map[string]string{"authorization": "Bearer t", "x-user": "alice"}},
		{"every header when none is listed", nil, map[string]string{"authorization": "Bearer t", "x-user": "alice", "cookie": "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Compile(&weftv1.ExternalAuth{Protocol: weftv1.ExternalAuth_GRPC, Service: "authz", Namespace: "d", AllowedHeaders: tt.allowed})
			r := httptest.NewRequest("PUT", "http://orders.shop/a/b?x=1", nil)
			r.Header.Set("Authorization", "Bearer t")
			r.Header.Set("X-User", "alice")
			r.Header.Set("Cookie", "c")
			req, err := a.Request(context.Background(), r, []byte("body"))
			if err != nil {
				t.Fatal(err)
			}
			if req.URL.Path != CheckPath || req.Header.Get("Content-Type") != "application/grpc" || req.ProtoMajor != 2 {
				t.Fatalf("check %s %s proto %d", req.URL.Path, req.Header.Get("Content-Type"), req.ProtoMajor)
			}
			frame, _ := io.ReadAll(req.Body)
			var cr authv3.CheckRequest
			if err := proto.Unmarshal(frame[5:], &cr); err != nil {
				t.Fatal(err)
			}
			h := cr.GetAttributes().GetRequest().GetHttp()
			if h.GetMethod() != "PUT" || h.GetPath() != "/a/b?x=1" || h.GetHost() != "orders.shop" || h.GetBody() != "body" || !reflect.DeepEqual(h.GetHeaders(), tt.want) {
				t.Errorf("CheckRequest %v", h)
			}
		})
	}
}
