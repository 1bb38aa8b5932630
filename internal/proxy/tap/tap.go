// Package tap streams a proxy's requests, live, to subscribers of its
// admin endpoint /tap (as NDJSON, one observe.Event per line), filtered by
// path prefix, method and status. Publishing never blocks a request: each
// subscriber has a bounded buffer and misses (counted) events when it
// falls behind. With no subscriber the request path skips tapping entirely
// (Hub.Active is one atomic load).
package tap

import (
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"weft.dev/weft/internal/proxy/observe"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/tapwire"
)

// Filter selects the events a subscriber gets (see tapwire.Filter).
type Filter = tapwire.Filter

// Hub fans events out to subscribers. The zero value is not usable; use
// NewHub. A nil *Hub is never active.
type Hub struct {
	metrics *telemetry.Metrics
	active  atomic.Int32 // subscribers
	bodies  atomic.Int32 // subscribers that want bodies
	mu      sync.Mutex
	subs    map[*Subscription]struct{}
}

// NewHub returns a Hub counting its events in m (nil: uncounted).
func NewHub(m *telemetry.Metrics) *Hub {
	return &Hub{metrics: m, subs: map[*Subscription]struct{}{}}
}

// Active reports whether anyone taps: when false, the request path builds
// no event.
func (h *Hub) Active() bool { return h != nil && h.active.Load() > 0 }

// WantBodies reports whether a subscriber asked for bodies.
func (h *Hub) WantBodies() bool { return h != nil && h.bodies.Load() > 0 }

// Subscription is one subscriber's stream of events.
type Subscription struct {
	filter Filter
	ch     chan observe.Event
}

// Events is the subscriber's channel.
func (s *Subscription) Events() <-chan observe.Event { return s.ch }

// subscriberBuffer is how many events a subscriber may lag behind.
const subscriberBuffer = 1024

// Subscribe adds a subscriber; Unsubscribe it when done.
func (h *Hub) Subscribe(f Filter) *Subscription {
	s := &Subscription{filter: f, ch: make(chan observe.Event, subscriberBuffer)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	h.active.Add(1)
	if f.Bodies {
		h.bodies.Add(1)
	}
	return s
}

// Unsubscribe removes s.
func (h *Hub) Unsubscribe(s *Subscription) {
	h.mu.Lock()
	_, ok := h.subs[s]
	delete(h.subs, s)
	h.mu.Unlock()
	if !ok {
		return
	}
	h.active.Add(-1)
	if s.filter.Bodies {
		h.bodies.Add(-1)
	}
}

// Publish offers e to every subscriber whose filter it passes, without
// blocking; bodies go only to subscribers that asked for them.
func (h *Hub) Publish(e *observe.Event) {
	if !h.Active() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if !s.filter.Match(e) {
			continue
		}
		ev := *e
		if !s.filter.Bodies {
			ev.Bodies = nil
		}
		select {
		case s.ch <- ev:
			h.metrics.TapEvent(false)
		default:
			h.metrics.TapEvent(true)
		}
	}
}

// ServeHTTP serves GET /tap: the events passing the query's filter as
// NDJSON, flushed as they come, until the client goes away. Only loopback
// clients are served (the admin listener binds to loopback; this guards a
// misconfigured one): a tap shows paths, identities and, for services that
// opted in, bodies.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !loopback(r.RemoteAddr) {
		http.Error(w, "tap: only loopback clients may tap", http.StatusForbidden)
		return
	}
	f, err := tapwire.ParseFilter(r.URL.Query())
	if err != nil {
		http.Error(w, "tap: "+err.Error(), http.StatusBadRequest)
		return
	}
	s := h.Subscribe(f)
	defer h.Unsubscribe(s)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	enc := json.NewEncoder(w)
	// A heartbeat keeps idle streams from looking dead to proxies and
	// notices a client that left.
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case e := <-s.ch:
			if err := enc.Encode(&e); err != nil {
				return
			}
		case <-tick.C:
			if _, err := w.Write([]byte("\n")); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
