package dashboard

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"weft.dev/weft/internal/tapwire"
)

// Limits of the tap page's streams.
const (
	// MaxTapStreams is how many tap streams one session may hold open at
	// once; past it a new one is refused with 429.
	MaxTapStreams = 2
	// DefaultTapIdleTimeout ends a tap stream that carried no request for
	// this long (the page offers to resume).
	DefaultTapIdleTimeout = 5 * time.Minute
	// tapHeartbeat is how often an idle stream sends an SSE comment, so
	// that the browser and anything in between see it alive.
	tapHeartbeat = 15 * time.Second
)

// tapStreams counts the open tap streams of each session, by the SHA-256
// of its secret.
type tapStreams struct {
	mu   sync.Mutex
	open map[[32]byte]int
}

// acquire takes one of the session's MaxTapStreams slots; false if all
// are taken.
func (ts *tapStreams) acquire(k [32]byte) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.open[k] >= MaxTapStreams {
		return false
	}
	if ts.open == nil {
		ts.open = map[[32]byte]int{}
	}
	ts.open[k]++
	return true
}

func (ts *tapStreams) release(k [32]byte) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.open[k]--; ts.open[k] <= 0 {
		delete(ts.open, k)
	}
}

// tapAdmins returns the admin addresses of the proxies of service name in
// namespace ns the control plane can reach (those on its own machine: see
// xds.ProxyStatus.Admin), and how many proxies the service has.
func (h *Handler) tapAdmins(name, ns string) (admins []string, proxies int) {
	if h.opts.Proxies == nil {
		return nil, 0
	}
	for _, p := range h.opts.Proxies() {
		if p.Service != name || p.Namespace != ns {
			continue
		}
		proxies++
		if p.Admin != "" {
			admins = append(admins, p.Admin)
		}
	}
	return admins, proxies
}

// tapStream serves GET /dashboard/api/tap/{name}?namespace=&path=&method=&status=&bodies=:
// the requests through the service's proxies as Server-Sent Events (one
// "tap" event per request, its data an tapwire.Event in JSON), relayed from
// the proxies' admin /tap streams with the same filters. Bodies come only
// when asked for and only from services that opted in: the proxies decide
// that, the relay passes on what they send. The stream ends when the
// browser leaves, after the idle timeout, at the first heartbeat after
// the session ended, or when every proxy's stream ended (an "end" event
// says why).
func (h *Handler) tapStream(w http.ResponseWriter, r *http.Request) {
	name, ns := r.PathValue("name"), r.URL.Query().Get("namespace")
	if ns == "" {
		ns = "default"
	}
	q := r.URL.Query()
	q.Del("namespace")
	if _, err := tapwire.ParseFilter(q); err != nil {
		writeError(w, http.StatusBadRequest, "tap: "+err.Error())
		return
	}
	admins, proxies := h.tapAdmins(name, ns)
	switch {
	case proxies == 0:
		writeError(w, http.StatusNotFound, fmt.Sprintf("tap: no proxy of service %s.%s is connected to the control plane", name, ns))
		return
	case len(admins) == 0:
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("tap: the control plane can reach the admin listeners of none of the %d proxies of %s.%s (only of proxies on its own machine): use weft tap on their machine", proxies, name, ns))
		return
	}
	c, _ := r.Cookie(CookieName) // authed checked it
	key := sha256.Sum256([]byte(c.Value))
	if !h.taps.acquire(key) {
		writeError(w, http.StatusTooManyRequests, "tap: this session already holds "+strconv.Itoa(MaxTapStreams)+" tap streams; close one first")
		return
	}
	defer h.taps.release(key)

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives any write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "event: open\ndata: {\"proxies\":%d}\n\n", len(admins))
	if err := rc.Flush(); err != nil {
		return
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if h.opts.Context != nil {
		defer context.AfterFunc(h.opts.Context, cancel)()
	}
	events := make(chan tapwire.Event)
	done := make(chan error, len(admins))
	for _, a := range admins {
		go func() { done <- tapwire.Stream(ctx, h.opts.TapClient, a, q, events) }()
	}
	idle := h.opts.TapIdleTimeout
	if idle <= 0 {
		idle = DefaultTapIdleTimeout
	}
	idleTimer := time.NewTimer(idle)
	defer idleTimer.Stop()
	beat := time.NewTicker(tapHeartbeat)
	defer beat.Stop()
	running := len(admins)
	var lastErr error
	for running > 0 {
		var err error
		select {
		case <-ctx.Done():
			return
		case e := <-events:
			idleTimer.Reset(idle)
			b, _ := json.Marshal(&e)
			_, err = fmt.Fprintf(w, "event: tap\ndata: %s\n\n", b)
		case <-beat.C:
			if !h.sessions.valid(c.Value) {
				writeEnd(w, "signed out: the session ended")
				return
			}
			_, err = w.Write([]byte(": heartbeat\n\n"))
		case <-idleTimer.C:
			writeEnd(w, "idle: no request for "+idle.String())
			return
		case e := <-done:
			running--
			if e != nil && ctx.Err() == nil {
				lastErr = e
				h.opts.Logger.Debug("dashboard tap: a proxy's stream ended", "service", name+"."+ns, "error", e)
			}
			continue
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return
		}
	}
	msg := "every proxy's stream ended"
	if lastErr != nil {
		msg += ": " + lastErr.Error()
	}
	writeEnd(w, msg)
}

// writeEnd sends the "end" event that says why the stream stops.
func writeEnd(w http.ResponseWriter, reason string) {
	b, _ := json.Marshal(map[string]string{"reason": reason})
	fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
	http.NewResponseController(w).Flush()
}
