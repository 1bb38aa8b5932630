package upstream

import (
	"io"
	"net/http"
	"strings"
)

// Forwarder proxies requests (HTTP/1.1, HTTP/2, gRPC): it is
// httputil.ReverseProxy without the per-request copies. ReverseProxy clones
// the request, its header map and URL, and wraps the context, to protect a
// caller that may reuse the incoming request; a sidecar's incoming request is
// its own, so Forwarder edits the header in place and makes one shallow copy
// of the request. Bodies stream both ways, so gRPC streams work.
type Forwarder struct {
	// Transport sends the outgoing request.
	Transport http.RoundTripper
	// Rewrite points the outgoing request at its destination (URL scheme
	// and host) and adds headers; hop-by-hop headers are already gone.
	Rewrite func(out *http.Request)
	// ErrorHandler answers when the round trip fails. It gets the incoming
	// request.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
}

// hopHeaders are removed in both directions (RFC 9110 §7.6.1), along with
// any header the Connection header names.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				delete(h, http.CanonicalHeaderKey(name))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

func teTrailers(h http.Header) bool {
	for _, v := range h["Te"] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "trailers") {
				return true
			}
		}
	}
	return false
}

// ServeHTTP implements http.Handler.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out := *r
	out.RequestURI = ""
	out.Close = false
	if r.ContentLength == 0 {
		out.Body = nil // no body: lets the transport replay the request
	}
	trailers := teTrailers(out.Header)
	upgrade := upgradeType(out.Header) // upgrade.go
	removeHopHeaders(out.Header)
	if upgrade != "" {
		out.Header["Connection"], out.Header["Upgrade"] = []string{"Upgrade"}, []string{upgrade}
	}
	if trailers {
		// gRPC requires it; it is the one TE value a proxy passes on.
		out.Header["Te"] = []string{"trailers"}
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // do not add Go's default
	}
	f.Rewrite(&out)
	resp, err := f.Transport.RoundTrip(&out)
	if err != nil {
		f.ErrorHandler(w, r, err)
		return
	}
	if upgrade != "" && resp.StatusCode == http.StatusSwitchingProtocols {
		f.serveUpgrade(w, r, resp, upgrade)
		return
	}
	defer resp.Body.Close()
	removeHopHeaders(resp.Header)
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	if err := copyBody(w, resp); err != nil {
		// The status line is out: all that is left is to break the
		// connection so the client sees a truncated response.
		panic(http.ErrAbortHandler)
	}
	for k, v := range resp.Trailer {
		h[http.TrailerPrefix+k] = v
	}
}

// copyBody copies the response body, flushing after every read when the
// length is unknown (streams, server-sent events).
func copyBody(w http.ResponseWriter, resp *http.Response) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	stream := resp.ContentLength < 0
	var rc *http.ResponseController
	if stream {
		rc = http.NewResponseController(w)
	}
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if stream {
				if err := rc.Flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
