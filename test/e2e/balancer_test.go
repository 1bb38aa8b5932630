package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startBackendArgs starts a demo backend of version with extra demo-app
// flags.
func startBackendArgs(t *testing.T, c *control, version string, args ...string) *workload {
	t.Helper()
	p := freePort(t)
	return startWorkload(t, c, wlOpts{service: "backend", version: version, appPort: p, waitApp: true, cmd: append(backendCmd(p, version), args...)})
}

// keyVersions sends per requests with header x-user: user-<k> for each
// of keys keys and returns, by key, the version that answered most of
// them, and how many requests went elsewhere.
func keyVersions(t *testing.T, client *workload, keys, per int) (map[int]string, int) {
	t.Helper()
	major := map[int]string{}
	off := 0
	for k := range keys {
		counts := map[string]int{}
		for range per {
			br, err := client.getBackend("http://backend/", "x-user", "user-"+strconv.Itoa(k))
			if err != nil {
				t.Fatal(err)
			}
			counts[br.Version]++
		}
		best := ""
		for v, n := range counts {
			if best == "" || n > counts[best] {
				best = v
			}
		}
		major[k] = best
		off += per - counts[best]
	}
	return major, off
}

// waitSticky waits until the client's proxy has load balancer lb for
// service backend and it hashes x-user: 10 keys each answered 10 times by
// one version.
func waitSticky(t *testing.T, client *workload, lb string) {
	t.Helper()
	eventually(t, 10*time.Second, 100*time.Millisecond, lb+" in effect", func() error {
		d, err := client.configDump()
		if err != nil {
			return err
		}
		var dump struct {
			XDS struct {
				Services map[string]struct {
					LoadBalancer string `json:"load_balancer"`
				} `json:"services"`
			} `json:"xds"`
		}
		if err := json.Unmarshal([]byte(d), &dump); err != nil {
			return stopErr{err}
		}
		if got := dump.XDS.Services["backend.default"].LoadBalancer; got != lb {
			return fmt.Errorf("service backend has load balancer %q, want %s", got, lb)
		}
		if _, off := keyVersions(t, client, 10, 10); off > 0 {
			return fmt.Errorf("%d of 100 requests left their key's endpoint", off)
		}
		return nil
	})
}

// TestConsistentHash (issue #9 item 4): with the RING_HASH and MAGLEV
// policies of docs/traffic/load-balancing.md, ≥ 99% of a key's requests go
// to one endpoint while the set is stable, and when one endpoint of four
// leaves only its keys move, plus at most 8% of 200 keys from the others.
// Its share is ~1/4: how far from it the ring puts four random addresses
// (256 points each) is bounded loosely, at 1/4 + 15% (a simulation of
// 2,000 rings drew at most 77 of 200 keys; 1/4 + 8%, the bound once used
// for the keys moved, failed about 1 run in 90).
func TestConsistentHash(t *testing.T) {
	c := startControl(t)
	var backends []*workload
	for i := range 4 {
		backends = append(backends, startBackend(t, c, fmt.Sprintf("v%d", i+1)))
	}
	client := startClient(t, c, "client")
	backendPIDs(t, client, 4)

	const keys, per = 200, 5
	before := map[string]map[int]string{}
	lbs := map[string]string{"ring-hash": "RING_HASH", "maglev": "MAGLEV"}
	for _, name := range []string{"ring-hash", "maglev"} {
		c.apply(docYAML(t, "traffic/load-balancing.md", docMarked(name)))
		waitSticky(t, client, lbs[name])
		major, off := keyVersions(t, client, keys, per)
		if share := float64(off) / (keys * per); share > 0.01 {
			t.Errorf("%s: %.1f%% of requests left their key's endpoint, want ≤ 1%%", name, 100*share)
		}
		spread := map[string]int{}
		for _, v := range major {
			spread[v]++
		}
		t.Logf("%s: %d keys over versions %v; %d of %d requests off their key's endpoint", name, keys, spread, off, keys*per)
		if len(spread) != 4 {
			t.Errorf("%s: keys reached %d of 4 endpoints: %v", name, len(spread), spread)
		}
		before[name] = major
	}

	// v4 leaves; wait until the client's proxy no longer has it.
	gone := backends[3]
	gone.proc.stop(5 * time.Second)
	eventually(t, 15*time.Second, 100*time.Millisecond, "v4 gone from the client's endpoints", func() error {
		d, err := client.configDump()
		if err != nil {
			return err
		}
		if strings.Contains(d, addr(gone.inbound)) {
			return fmt.Errorf("endpoint %s still in the config dump", addr(gone.inbound))
		}
		return nil
	})
	for _, name := range []string{"maglev", "ring-hash"} {
		c.apply(docYAML(t, "traffic/load-balancing.md", docMarked(name)))
		waitSticky(t, client, lbs[name])
		after, _ := keyVersions(t, client, keys, 1)
		moved, stray, onGone := 0, 0, 0
		for k, v := range before[name] {
			if v == "v4" {
				onGone++
			}
			if after[k] != v {
				moved++
				if v != "v4" {
					stray++
				}
			}
		}
		t.Logf("%s: %d of %d keys moved when 1 of 4 endpoints left (%d had been on it, %d from endpoints that stayed)", name, moved, keys, onGone, stray)
		if moved != onGone+stray {
			t.Errorf("%s: %d keys moved but %d were on the endpoint that left and %d moved from the others", name, moved, onGone, stray)
		}
		if limit := keys * 8 / 100; stray > limit {
			t.Errorf("%s: %d of %d keys moved between endpoints that stayed, want ≤ %d", name, stray, keys, limit)
		}
		if limit := keys/4 + keys*15/100; onGone > limit {
			t.Errorf("%s: the endpoint that left held %d of %d keys, want ≤ %d (about a quarter)", name, onGone, keys, limit)
		}
	}
}

// TestP2CEWMADefault (issue #9 items 4, 5): with no policy at all, one of
// three endpoints 50 ms slower gets < 10% of 1,000 requests.
func TestP2CEWMADefault(t *testing.T) {
	c := startControl(t)
	startBackend(t, c, "v1")
	startBackend(t, c, "v2")
	startBackendArgs(t, c, "slow", "--slow-rate", "1", "--slow", "50ms")
	client := startClient(t, c, "client")
	backendPIDs(t, client, 3)

	counts := map[string]int{}
	const n = 1000
	for range n {
		br, err := client.getBackend("http://backend/")
		if err != nil {
			t.Fatal(err)
		}
		counts[br.Version]++
	}
	t.Logf("%d requests: %v", n, counts)
	if counts["slow"] >= n/10 {
		t.Fatalf("the slow endpoint got %d of %d requests, want < 10%%", counts["slow"], n)
	}
	if counts["v1"] < n/10 || counts["v2"] < n/10 {
		t.Errorf("the fast endpoints did not share the load: %v", counts)
	}
}

// TestSessionPersistence (issue #9 item 1): with the routes of
// docs/traffic/session-persistence.md, a session's token — a cookie, then
// a header — keeps ≥ 99% of its requests on one endpoint, does not reveal
// the endpoint's address, and sessions spread over the endpoints.
func TestSessionPersistence(t *testing.T) {
	c := startControl(t)
	var backends []*workload
	for i := range 3 {
		backends = append(backends, startBackend(t, c, fmt.Sprintf("v%d", i+1)))
	}
	client := startClient(t, c, "client")
	backendPIDs(t, client, 3)

	cookieOf := func(r response) string {
		for _, ck := range (&http.Response{Header: r.header}).Cookies() {
			if ck.Name == "backend-session" {
				if ck.MaxAge != 3600 || !ck.HttpOnly {
					t.Errorf("cookie %v: want Max-Age=3600 (Permanent, absoluteTimeout 1h) and HttpOnly", ck)
				}
				return ck.Value
			}
		}
		return ""
	}
	for _, tc := range []struct {
		doc   string
		token func(response) string       // the token a response sets, "" for none
		send  func(token string) []string // the request headers that carry it
	}{
		{"cookie-session", cookieOf, func(tok string) []string { return []string{"Cookie", "backend-session=" + tok} }},
		{"header-session", func(r response) string { return r.header.Get("X-Backend-Session") },
			func(tok string) []string { return []string{"X-Backend-Session", tok} }},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			c.apply(docYAML(t, "traffic/session-persistence.md", docMarked(tc.doc)))
			eventually(t, 10*time.Second, 100*time.Millisecond, "session token set", func() error {
				r, err := client.get("http://backend/")
				if err != nil {
					return err
				}
				if tok := tc.token(r); tok == "" {
					return fmt.Errorf("no session token in %v", r.header)
				}
				return nil
			})
			sessions := map[string]int{}
			const nSessions, per = 10, 50
			off := 0
			for s := range nSessions {
				var tok string
				counts := map[string]int{}
				for i := range per {
					var hdr []string
					if i > 0 {
						hdr = tc.send(tok)
					}
					r, err := client.get("http://backend/", hdr...)
					if err != nil || r.code != http.StatusOK {
						t.Fatalf("session %d request %d: %v %d", s, i, err, r.code)
					}
					if i == 0 {
						if tok = tc.token(r); tok == "" {
							t.Fatalf("session %d: no token on the first response", s)
						}
						for _, b := range backends {
							if strings.Contains(tok, strconv.Itoa(b.inbound)) {
								t.Errorf("token %q reveals endpoint port %d", tok, b.inbound)
							}
						}
					}
					var br backendReply
					if err := json.Unmarshal([]byte(r.body), &br); err != nil {
						t.Fatalf("session %d request %d: %v", s, i, err)
					}
					counts[br.Version]++
				}
				best := ""
				for v, n := range counts {
					if best == "" || n > counts[best] {
						best = v
					}
				}
				sessions[best]++
				off += per - counts[best]
			}
			t.Logf("%d sessions of %d requests: sessions by endpoint %v, %d requests off their session's endpoint", nSessions, per, sessions, off)
			if share := float64(off) / (nSessions * per); share > 0.01 {
				t.Errorf("%.1f%% of requests left their session's endpoint, want ≤ 1%%", 100*share)
			}
			if len(sessions) < 2 {
				t.Errorf("all %d sessions on one endpoint: %v", nSessions, sessions)
			}
		})
	}
}
