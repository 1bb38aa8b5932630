package stats

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeProxy serves a /metrics whose frontend→backend histogram holds the
// counts set last: ok requests of 200 at 20ms, bad of 503 at 300ms.
type fakeProxy struct {
	mu      sync.Mutex
	ok, bad int
	started time.Time // process_start_time_seconds, if set
	srv     *httptest.Server
}

func newFakeProxy(t *testing.T) *fakeProxy {
	p := &fakeProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		fmt.Fprint(w, histogramText(p.ok, p.bad))
		if !p.started.IsZero() {
			fmt.Fprintf(w, "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n", float64(p.started.UnixMilli())/1000)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakeProxy) set(ok, bad int) {
	p.mu.Lock()
	p.ok, p.bad = ok, bad
	p.mu.Unlock()
}

func (p *fakeProxy) admin() string { return strings.TrimPrefix(p.srv.URL, "http://") }

// histogramText is a proxy's exposition with an extra label the parser
// must ignore (source_namespace) and an unrelated metric.
func histogramText(ok, bad int) string {
	var b strings.Builder
	b.WriteString("# TYPE http_client_request_duration_seconds histogram\n")
	for _, s := range []struct {
		code   string
		n      int
		bucket float64 // the first bucket holding the requests
	}{{"200", ok, 0.025}, {"503", bad, 0.5}} {
		lbl := fmt.Sprintf(`destination_service="backend.default",http_request_method="GET",http_response_status_code=%q,route="r1",source_namespace="default",source_service="frontend.default",tls="true"`, s.code)
		for _, le := range Bounds[:NumBuckets-1] {
			n := 0
			if le >= s.bucket {
				n = s.n
			}
			fmt.Fprintf(&b, "http_client_request_duration_seconds_bucket{%s,le=\"%g\"} %d\n", lbl, le, n)
		}
		fmt.Fprintf(&b, "http_client_request_duration_seconds_bucket{%s,le=\"+Inf\"} %d\n", lbl, s.n)
		fmt.Fprintf(&b, "http_client_request_duration_seconds_sum{%s} 1\n", lbl)
		fmt.Fprintf(&b, "http_client_request_duration_seconds_count{%s} %d\n", lbl, s.n)
	}
	b.WriteString("# TYPE weft_tcp_connections_total counter\nweft_tcp_connections_total{destination_service=\"db.default\",listener=\"inbound\"} 4\n")
	b.WriteString("# TYPE go_goroutines gauge\ngo_goroutines 12\n")
	return b.String()
}

var edge = Key{Side: Outbound, Source: "frontend.default", Destination: "backend.default", Route: "r1"}

// clock is a fake clock advanced by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestCollectorIncreasesAndResets(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_000_000, 0)}
	old, restarted := newFakeProxy(t), newFakeProxy(t)
	old.set(100, 10) // counts from before the collector started
	targets := []Target{{ID: "old", Admin: old.admin(), Connected: clk.t.Add(-time.Hour)}}
	st := NewStore(StoreOptions{Interval: 10 * time.Second})
	c := NewCollector(CollectorOptions{Targets: func() []Target { return targets }, Store: st, Now: clk.now})

	step := func(want float64, wantBad float64) {
		t.Helper()
		clk.t = clk.t.Add(10 * time.Second)
		c.Round(ctx)
		w := st.Window(clk.t, 10*time.Second)
		got := w.Series[edge]
		if got.Requests != want || got.Failures != wantBad {
			t.Fatalf("last interval: %v requests, %v failures; want %v, %v", got.Requests, got.Failures, want, wantBad)
		}
	}
	step(0, 0) // the first scrape of a proxy older than the collector is a baseline
	old.set(130, 15)
	step(35, 5)
	old.set(7, 1) // the proxy restarted: counters start again from zero
	step(8, 1)
	old.set(9, 1)
	step(2, 0)

	// A proxy that connects after the collector started counts from zero.
	restarted.set(4, 2)
	targets = append(targets, Target{ID: "new", Admin: restarted.admin(), Connected: clk.t})
	old.set(10, 1)
	step(1+6, 2)

	// One that connects now but whose process is older than the collector
	// (the control plane restarted) is a baseline; one whose process
	// started after the collector counts from zero, however it connected.
	reconnected, fresh := newFakeProxy(t), newFakeProxy(t)
	reconnected.started, fresh.started = c.start.Add(-time.Hour), c.start.Add(time.Minute)
	reconnected.set(500, 50)
	fresh.set(3, 0)
	targets = append(targets, Target{ID: "reconnected", Admin: reconnected.admin(), Connected: clk.t},
		Target{ID: "fresh", Admin: fresh.admin(), Connected: c.start.Add(-time.Hour)})
	step(3, 0)

	// Latency lands in the right buckets: the 503s took 300ms (0.25..0.5).
	w := st.Window(clk.t, time.Minute)
	if got, want := w.Series[edge].Requests, 35.0+8+2+7+3; got != want {
		t.Errorf("minute window: %v requests, want %v", got, want)
	}
	if p99 := w.Series[edge].Quantile(0.99); p99 <= 0.25 || p99 > 0.5 {
		t.Errorf("p99 = %v, want in (0.25, 0.5]", p99)
	}
	if tcp := w.Series[Key{Side: Inbound, Destination: "db.default"}].TCP; tcp != 8 { // the new and the fresh proxy
		t.Errorf("tcp connections = %v, want 8", tcp)
	}
	if proxies, _, failed := c.Health(); proxies != 4 || failed != 0 {
		t.Errorf("health: %d proxies, %d failed scrapes; want 4, 0", proxies, failed)
	}
}

func TestCollectorScrapesOnlyLoopback(t *testing.T) {
	p := newFakeProxy(t)
	p.set(5, 0)
	_, port, _ := strings.Cut(p.admin(), ":")
	clk := &clock{t: time.Unix(1_000_000, 0)}
	st := NewStore(StoreOptions{})
	c := NewCollector(CollectorOptions{Store: st, Now: clk.now, Targets: func() []Target {
		return []Target{
			{ID: "remote", Admin: "192.0.2.1:" + port, Connected: clk.t.Add(time.Second)},
			{ID: "named", Admin: "localhost:" + port, Connected: clk.t.Add(time.Second)},
			{ID: "none", Connected: clk.t.Add(time.Second)},
		}
	}})
	clk.t = clk.t.Add(10 * time.Second)
	c.Round(context.Background())
	if w := st.Window(clk.t, time.Minute); len(w.Series) != 0 {
		t.Errorf("scraped non-loopback admin addresses: %v", w.Series)
	}
}

func TestCollectorCapsSeriesPerProxy(t *testing.T) {
	var (
		mu    sync.Mutex
		names = []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprint(w, "# TYPE http_server_request_duration_seconds histogram\n")
		for _, n := range names {
			fmt.Fprintf(w, "http_server_request_duration_seconds_bucket{destination_service=%q,http_response_status_code=\"200\",le=\"+Inf\"} 1\n", n)
			fmt.Fprintf(w, "http_server_request_duration_seconds_count{destination_service=%q,http_response_status_code=\"200\"} 1\n", n)
			fmt.Fprintf(w, "http_server_request_duration_seconds_sum{destination_service=%q,http_response_status_code=\"200\"} 0.1\n", n)
		}
	}))
	defer srv.Close()
	clk := &clock{t: time.Unix(1_000_000, 0)}
	st := NewStore(StoreOptions{})
	c := NewCollector(CollectorOptions{Store: st, Now: clk.now, MaxSeriesPerProxy: 4, Targets: func() []Target {
		return []Target{{ID: "p", Admin: strings.TrimPrefix(srv.URL, "http://"), Connected: clk.t.Add(time.Second)}}
	}})
	clk.t = clk.t.Add(10 * time.Second)
	c.Round(context.Background())
	if n, _ := st.Len(); n != 4 {
		t.Errorf("store holds %d series, want the cap of 4", n)
	}
	if _, dropped, _ := c.Health(); dropped != 6 {
		t.Errorf("dropped %d series, want 6", dropped)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Collectors()...)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		m := f.GetMetric()[0]
		got[f.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	want := map[string]float64{"weft_stats_proxies": 1, "weft_stats_series": 4, "weft_stats_series_evicted_total": 0,
		"weft_stats_series_dropped_total": 6, "weft_stats_scrape_failures_total": 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stats metrics (-want +got):\n%s", diff)
	}

	// A new series that sorts first does not displace the kept ones (whose
	// whole past would then count as new later): nothing increased.
	mu.Lock()
	names = append([]string{"a0"}, names...)
	mu.Unlock()
	clk.t = clk.t.Add(10 * time.Second)
	c.Round(context.Background())
	if w := st.Window(clk.t, 10*time.Second); len(w.Series) != 0 {
		t.Errorf("second round: %v, want no increase", w.Series)
	}
	kept := st.Window(clk.t, time.Minute).Series
	for _, n := range []string{"s0", "s1", "s2", "s3"} {
		if _, ok := kept[Key{Side: Inbound, Destination: n}]; !ok {
			t.Errorf("series %s not kept: %v", n, kept)
		}
	}
}

func TestStoreBounds(t *testing.T) {
	st := NewStore(StoreOptions{Interval: 10 * time.Second, History: time.Minute, MaxSeries: 3})
	if st.Slots() != 6 {
		t.Fatalf("slots = %d, want 6", st.Slots())
	}
	now := time.Unix(1_000_000, 0)
	one := Counts{Requests: 1}
	key := func(i int) Key { return Key{Side: Inbound, Destination: fmt.Sprint("s", i)} }
	// Ten intervals of s0: only the last six are remembered.
	for range 10 {
		now = now.Add(10 * time.Second)
		st.Append(now, map[Key]Counts{key(0): one})
	}
	w := st.Window(now, time.Hour)
	if got := w.Series[key(0)].Requests; got != 6 {
		t.Errorf("history: %v requests remembered, want 6 (one minute of 10 s slots)", got)
	}
	if w.Seconds != 60 {
		t.Errorf("window covers %v s, want 60", w.Seconds)
	}
	if got := st.Window(now, 20*time.Second).Series[key(0)].Requests; got != 2 {
		t.Errorf("20s window: %v requests, want 2", got)
	}
	// Series beyond the cap evict the one written least recently.
	for i := 1; i <= 3; i++ {
		now = now.Add(10 * time.Second)
		st.Append(now, map[Key]Counts{key(i): one})
	}
	n, evicted := st.Len()
	if n != 3 || evicted != 1 {
		t.Errorf("series = %d, evicted = %d; want 3, 1", n, evicted)
	}
	var got []string
	for k := range st.Window(now, time.Hour).Series {
		got = append(got, k.Destination)
	}
	if _, ok := st.Window(now, time.Hour).Series[key(0)]; ok {
		t.Errorf("the oldest series s0 survived: %v", got)
	}
}

func TestStoreWindowCoversOnlyData(t *testing.T) {
	st := NewStore(StoreOptions{Interval: 10 * time.Second})
	now := time.Unix(1_000_000, 0)
	if w := st.Window(now, time.Minute); w.Seconds != 0 || len(w.Series) != 0 {
		t.Errorf("empty store: %+v", w)
	}
	st.Append(now, map[Key]Counts{edge: {Requests: 30}})
	now = now.Add(10 * time.Second)
	st.Append(now, map[Key]Counts{edge: {Requests: 30}})
	// A late round in the same interval adds to it.
	st.Append(now.Add(time.Second), map[Key]Counts{edge: {Requests: 5}})
	w := st.Window(now.Add(3*time.Second), time.Minute)
	if diff := cmp.Diff(Window{Seconds: 20, Series: map[Key]Counts{edge: {Requests: 65}}}, w); diff != "" {
		t.Errorf("window (-want +got):\n%s", diff)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	if _, err := Parse(strings.NewReader("http_client_request_duration_seconds_count{ 3\n")); err == nil {
		t.Error("Parse accepted a broken exposition")
	}
}

// TestStoreMemoryBound fills a store at the defaults to its series cap and
// checks the heap it holds stays within the documented bound (31 MB: 4096
// series of 90 slots of 72 bytes plus an 8-byte tick each, plus the map).
func TestStoreMemoryBound(t *testing.T) {
	if got := unsafe.Sizeof(slot{}); got != 72 {
		t.Errorf("slot is %d bytes, the docs say 72", got)
	}
	inc := map[Key]Counts{}
	for i := range DefaultMaxSeries + 100 {
		inc[Key{Side: Outbound, Source: fmt.Sprint("src-", i), Destination: "backend.default", Route: "r"}] = Counts{Requests: 1}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	st := NewStore(StoreOptions{})
	now := time.Unix(1_000_000, 0)
	for range st.Slots() {
		now = now.Add(10 * time.Second)
		st.Append(now, inc)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n, evicted := st.Len(); n > DefaultMaxSeries || n < DefaultMaxSeries*15/16 || evicted == 0 {
		t.Errorf("series = %d (evicted %d), want at most the cap %d and at least 15/16 of it", n, evicted, DefaultMaxSeries)
	}
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if held > 32_000_000 {
		t.Errorf("a full store holds %.1f MB, more than the documented 31 MB (+1 MB slack)", float64(held)/1e6)
	}
	t.Logf("a full store (%d series × %d slots) holds %.1f MB", DefaultMaxSeries, st.Slots(), float64(held)/1e6)
	runtime.KeepAlive(st)
	runtime.KeepAlive(inc)
}

// BenchmarkParse measures parsing one sidecar's /metrics: the control
// plane's cost per proxy and round.
func BenchmarkParse(b *testing.B) {
	text := histogramText(1000, 10)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(strings.NewReader(text)); err != nil {
			b.Fatal(err)
		}
	}
}
