package outbound

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/mirror"
)

// mirrorTimeout bounds one mirror copy, from picking its endpoint to
// reading its response.
const mirrorTimeout = 10 * time.Second

// mirror starts the mirror copies of request r that route's RequestMirror
// filters pick, and returns the request to forward: r itself, or, when a
// copy needs r's body, a shallow copy of r whose body keeps what the real
// request reads (mirror.Tee). A request without a body is copied at once;
// one with a body when the real request has read all of it (at most
// mirror.MaxBody; a longer or unfinished body is not mirrored and the copy
// counts as dropped; a real request that fails before its body is sent is
// not mirrored and not counted). A protocol upgrade is not mirrored either
// (dropped). Copies go out on their own goroutines and never delay or fail
// the real request.
//
// The route's mirrors apply, and those of b, the backend picked.
func (l *Listener) mirror(r *http.Request, cfg *config.Config, route *config.Route, b *config.Backend) *http.Request {
	var bm []mirror.Target
	if bf := route.BackendFault(b); bf != nil {
		bm = bf.Mirrors
	}
	if len(route.Mirrors) == 0 && len(bm) == 0 {
		return r
	}
	var picked []mirror.Target
	for _, ts := range [2][]mirror.Target{route.Mirrors, bm} {
		for _, t := range ts {
			if t.Picked(rand.Uint32N) {
				picked = append(picked, t)
			}
		}
	}
	if len(picked) == 0 {
		return r
	}
	if !mirror.Mirrorable(r) {
		for _, t := range picked {
			l.opts.Metrics.MirrorRequest(t.Service, route.Name, "dropped")
		}
		return r
	}
	if r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
		for _, t := range picked {
			l.sendMirror(cfg, route.Name, t, mirror.Copy(r, nil))
		}
		return r
	}
	copies := make([]*http.Request, len(picked))
	for i := range picked {
		copies[i] = mirror.Copy(r, nil)
	}
	tee := mirror.NewTee(r.Body, func(body []byte, ok bool) {
		for i, t := range picked {
			if !ok {
				l.opts.Metrics.MirrorRequest(t.Service, route.Name, "dropped")
				continue
			}
			mirror.SetBody(copies[i], body)
			l.sendMirror(cfg, route.Name, t, copies[i])
		}
	})
	out := *r
	out.Body = tee
	return &out
}

// sendMirror sends copy req to a picked endpoint of mirror target t, over
// the pool's mTLS connections, on a goroutine bounded by mirrorTimeout,
// and discards the response. Over the target's in-flight bound the copy is
// dropped; to a service that is not in the mesh it fails at once.
func (l *Listener) sendMirror(cfg *config.Config, route string, t mirror.Target, req *http.Request) {
	if cfg.Services[t.Service] == nil {
		// Not a mesh service (the route's status says so): nothing to
		// wait for.
		l.opts.Metrics.MirrorRequest(t.Service, route, "failed")
		return
	}
	slot := l.mirrors.Acquire(t.Service)
	if slot == nil {
		l.opts.Metrics.MirrorRequest(t.Service, route, "dropped")
		return
	}
	go func() {
		defer slot.Release()
		ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
		defer cancel()
		outcome := "failed"
		defer func() { l.opts.Metrics.MirrorRequest(t.Service, route, outcome) }()
		lease, err := l.pick(ctx, cfg, t.Service)
		if err != nil {
			return
		}
		defer lease.Done()
		req = req.WithContext(ctx)
		req.URL.Scheme, req.URL.Host = "https", lease.Endpoint.Address
		rt := lease.HTTP1()
		if req.ProtoMajor == 2 {
			rt = lease.HTTP2()
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, mirror.MaxBody))
		resp.Body.Close()
		outcome = "sent"
	}()
}
