package tap

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"weft.dev/weft/internal/proxy/observe"
	"weft.dev/weft/internal/proxy/telemetry"
)

func TestHubPublish(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHub(m)
	if h.Active() {
		t.Fatal("active with no subscriber")
	}
	all := h.Subscribe(Filter{})
	withBodies := h.Subscribe(Filter{Path: "/b", Bodies: true})
	if !h.Active() || !h.WantBodies() {
		t.Fatal("not active / not wanting bodies with two subscribers")
	}
	h.Publish(&observe.Event{Path: "/a"})
	h.Publish(&observe.Event{Path: "/b", Bodies: &observe.Bodies{Request: "x"}})
	if e := <-all.Events(); e.Path != "/a" {
		t.Errorf("first event %q, want /a", e.Path)
	}
	if e := <-all.Events(); e.Path != "/b" || e.Bodies != nil {
		t.Errorf("subscriber without bodies got %+v", e)
	}
	if e := <-withBodies.Events(); e.Bodies == nil || e.Bodies.Request != "x" {
		t.Errorf("subscriber with bodies got %+v", e)
	}
	// A subscriber that does not read loses events, counted; others do not.
	for range subscriberBuffer + 10 {
		h.Publish(&observe.Event{Path: "/b"})
	}
	if got := testutil.ToFloat64(m.TapEventsDropped()); got != 20 {
		t.Errorf("dropped = %v, want 20 (10 per full subscriber)", got)
	}
	h.Unsubscribe(all)
	h.Unsubscribe(withBodies)
	h.Unsubscribe(withBodies) // twice is harmless
	if h.Active() || h.WantBodies() {
		t.Error("active after every subscriber left")
	}
}

func TestServeHTTP(t *testing.T) {
	h := NewHub(nil)
	// Not loopback: refused.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/tap", nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("non-loopback client: %d, want 403", rec.Code)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/tap?status=bad")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad filter: %d, want 400", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/tap?method=GET", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for !h.Active() {
		time.Sleep(time.Millisecond)
	}
	h.Publish(&observe.Event{Method: "POST", Path: "/skip"})
	h.Publish(&observe.Event{Method: "GET", Path: "/x", Status: 200, Duration: observe.Millis(1500 * time.Microsecond), Decisions: []observe.Decision{{Stage: "route", Detail: "default/r/0"}}})
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var e observe.Event
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	if e.Path != "/x" || e.Duration != observe.Millis(1500*time.Microsecond) || len(e.Decisions) != 1 {
		t.Errorf("event %s decoded as %+v", line, e)
	}
	if !strings.Contains(string(line), `"latencyMs":1.500`) {
		t.Errorf("event %s: want latencyMs 1.500", line)
	}
}
