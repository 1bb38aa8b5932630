package extauth

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
)

// CheckPath is the gRPC method of the Envoy ext_authz protocol.
const CheckPath = "/envoy.service.auth.v3.Authorization/Check"

// maxCheckResponse bounds the CheckResponse message read.
const maxCheckResponse = 1 << 20

// Decision is what an auth service answered a check.
type Decision struct {
	// Allowed: forward the request, with Header applied to it (see Apply)
	// and the headers in Remove removed.
	Allowed bool
	// Unavailable: the auth service could not decide; refuse with 503.
	Unavailable bool
	// Status, Header and Body of a denial, passed on to the client.
	Status int
	Header http.Header
	Remove []string
	Body   []byte
	// Err explains an unavailable decision.
	Err error
}

// GRPC reports whether the filter speaks the Envoy ext_authz gRPC protocol
// rather than plain HTTP.
func (a *Auth) GRPC() bool { return a.grpc }

// grpcCheckRequest builds the ext_authz Check call for r: the method, path
// (with the query), host, scheme and the allowed headers (every header
// when the filter lists none) and body.
func (a *Auth) grpcCheckRequest(ctx context.Context, r *http.Request, body []byte) (*http.Request, error) {
	hdrs := map[string]string{}
	add := func(k string, vs []string) { hdrs[strings.ToLower(k)] = strings.Join(vs, ",") }
	if a.allHeaders {
		for k, vs := range r.Header {
			add(k, vs)
		}
	} else {
		for _, k := range a.headers {
			if vs, ok := r.Header[k]; ok {
				add(k, vs)
			}
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	msg := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, Scheme: scheme,
			Headers: hdrs, Body: string(body), Size: int64(len(body)), Protocol: r.Proto},
	}}}
	b, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("marshalling the CheckRequest: %w", err)
	}
	frame := make([]byte, 5+len(b))
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(b)))
	copy(frame[5:], b)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+a.Service+CheckPath, bytes.NewReader(frame))
	if err != nil {
		return nil, err
	}
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/2.0", 2, 0
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	return req, nil
}

// decideGRPC reads an ext_authz Check answer. A gRPC error or a malformed
// answer is unavailable; an OK status allows with the OkHttpResponse's
// headers; any other status denies, with the DeniedHttpResponse's status
// (403 when it sets none), headers and body.
func decideGRPC(resp *http.Response) Decision {
	unavailable := func(err error) Decision { return Decision{Unavailable: true, Err: err} }
	if resp.StatusCode != http.StatusOK {
		return unavailable(fmt.Errorf("HTTP status %d", resp.StatusCode))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCheckResponse+5))
	if err != nil {
		return unavailable(fmt.Errorf("reading the CheckResponse: %w", err))
	}
	st := resp.Trailer.Get("Grpc-Status")
	if st == "" {
		st = resp.Header.Get("Grpc-Status") // trailers-only
	}
	if st != "0" {
		return unavailable(fmt.Errorf("gRPC status %s: %s", st, resp.Trailer.Get("Grpc-Message")+resp.Header.Get("Grpc-Message")))
	}
	if len(b) < 5 || b[0] != 0 || int(binary.BigEndian.Uint32(b[1:5])) != len(b)-5 {
		return unavailable(errors.New("malformed or compressed CheckResponse message"))
	}
	var cr authv3.CheckResponse
	if err := proto.Unmarshal(b[5:], &cr); err != nil {
		return unavailable(fmt.Errorf("decoding the CheckResponse: %w", err))
	}
	if cr.GetStatus().GetCode() == 0 {
		d := Decision{Allowed: true, Header: http.Header{}}
		ok := cr.GetOkResponse()
		for _, h := range ok.GetHeaders() {
			d.Header.Set(h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		for _, k := range ok.GetHeadersToRemove() {
			d.Remove = append(d.Remove, http.CanonicalHeaderKey(k))
		}
		return d
	}
	denied := cr.GetDeniedResponse()
	d := Decision{Status: int(denied.GetStatus().GetCode()), Header: http.Header{}, Body: []byte(denied.GetBody())}
	if d.Status < 100 || d.Status > 599 {
		d.Status = http.StatusForbidden
	}
	for _, h := range denied.GetHeaders() {
		d.Header.Set(h.GetHeader().GetKey(), h.GetHeader().GetValue())
	}
	return d
}

// Request builds the check for r (HTTP or gRPC, see CheckRequest) with the
// body read by ReadBody; the caller points its URL at an endpoint.
func (a *Auth) Request(ctx context.Context, r *http.Request, body []byte) (*http.Request, error) {
	if a.grpc {
		return a.grpcCheckRequest(ctx, r, body)
	}
	return a.CheckRequest(ctx, r, body), nil
}

// Decide reads the auth service's answer to a check.
func (a *Auth) Decide(resp *http.Response) Decision {
	if a.grpc {
		return decideGRPC(resp)
	}
	switch {
	case Allowed(resp.StatusCode):
		io.Copy(io.Discard, io.LimitReader(resp.Body, MaxDeniedBody))
		return Decision{Allowed: true, Header: resp.Header}
	case Unavailable(resp.StatusCode):
		return Decision{Unavailable: true, Err: errors.New("it answered " + strconv.Itoa(resp.StatusCode))}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxDeniedBody))
	h := resp.Header.Clone()
	for _, k := range []string{"Content-Length", "Transfer-Encoding", "Connection"} {
		delete(h, k)
	}
	return Decision{Status: resp.StatusCode, Header: h, Body: body}
}
