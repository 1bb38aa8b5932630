package stats

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// slot is one interval of one series, in 4-byte counters (72 bytes): an
// interval of at most 10 s never counts 2^32 requests on one edge.
type slot struct {
	requests, failures, tcp uint32
	buckets                 [NumBuckets]uint32
}

// ring is the history of one series: slot i holds the interval whose tick
// number is congruent to i, valid only if stamps[i] is that tick.
type ring struct {
	slots []slot
	ticks []int64
	// last is the last tick written.
	last int64
}

// StoreOptions size a Store.
type StoreOptions struct {
	// Interval is the length of one slot (default 10s).
	Interval time.Duration
	// History is how far back the store remembers (default 15m).
	History time.Duration
	// MaxSeries caps the number of series kept (default 4096); a new
	// series beyond it evicts the one written least recently.
	MaxSeries int
}

// DefaultMaxSeries is the default cap on the series a Store keeps.
const DefaultMaxSeries = 4096

func (o *StoreOptions) setDefaults() {
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.History <= 0 {
		o.History = 15 * time.Minute
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = DefaultMaxSeries
	}
}

// Store keeps the per-interval increase of every series for History in
// fixed-size rings: its memory is bounded by MaxSeries × History/Interval
// slots of 80 bytes (72 of counters, 8 of tick: 4096 × 90 × 80 B ≈ 29.5 MB
// at the defaults, 31 MB with the map and keys), whatever the number of proxies. It
// is safe for concurrent use.
type Store struct {
	opts  StoreOptions
	nslot int

	mu      sync.Mutex
	series  map[Key]*ring
	tick    int64 // the last tick appended
	first   int64 // the first tick appended, 0 before any
	evicted uint64
}

// NewStore returns an empty store.
func NewStore(opts StoreOptions) *Store {
	opts.setDefaults()
	return &Store{
		opts:   opts,
		nslot:  int(math.Ceil(float64(opts.History) / float64(opts.Interval))),
		series: map[Key]*ring{},
	}
}

// Slots is the number of intervals each series remembers.
func (s *Store) Slots() int { return s.nslot }

// Append records the increase of each series over the interval ending at
// now. Series absent from inc had no traffic in it.
func (s *Store) Append(now time.Time, inc map[Key]Counts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Two appends in one interval (a late round, a clock step back) add up
	// in its slot.
	t := max(s.tickOf(now), s.tick)
	s.tick = t
	if s.first == 0 {
		s.first = t
	}
	idx := int(t % int64(s.nslot))
	for k, c := range inc {
		r := s.series[k]
		if r == nil {
			if len(s.series) >= s.opts.MaxSeries {
				s.evictLocked(t)
			}
			r = &ring{slots: make([]slot, s.nslot), ticks: make([]int64, s.nslot)}
			s.series[k] = r
		}
		if r.ticks[idx] == t {
			c.add(r.slots[idx].counts())
		}
		r.slots[idx] = toSlot(c)
		r.ticks[idx] = t
		r.last = t
	}
}

// evictLocked makes room for new series: it drops the series with no data
// left in the history, or if there are none, the sixteenth of the series
// written least recently (so that churn costs one sort per MaxSeries/16 new
// series, not a scan per series).
func (s *Store) evictLocked(now int64) {
	before := len(s.series)
	for k, r := range s.series {
		if r.last <= now-int64(s.nslot) {
			delete(s.series, k)
		}
	}
	if len(s.series) == before {
		type aged struct {
			k    Key
			last int64
		}
		all := make([]aged, 0, len(s.series))
		for k, r := range s.series {
			all = append(all, aged{k, r.last})
		}
		slices.SortFunc(all, func(a, b aged) int { return cmp.Compare(a.last, b.last) })
		for _, a := range all[:max(1, len(all)/16)] {
			delete(s.series, a.k)
		}
	}
	s.evicted += uint64(before - len(s.series))
}

func (s *Store) tickOf(t time.Time) int64 {
	return t.UnixNano() / int64(s.opts.Interval)
}

// Window returns the increase of every series over the last d (rounded up
// to whole intervals, at most History) before now.
func (s *Store) Window(now time.Time, d time.Duration) Window {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int64(math.Ceil(float64(d) / float64(s.opts.Interval)))
	n = max(1, min(n, int64(s.nslot)))
	// The interval in progress has no data yet: end at the last one
	// appended unless the collector stopped appending.
	end := s.tickOf(now)
	if end <= s.tick+1 {
		end = s.tick
	}
	from := end - n + 1
	w := Window{Series: map[Key]Counts{}}
	if s.first == 0 {
		return w
	}
	covered := end - max(from, s.first) + 1
	w.Seconds = float64(max(0, covered)) * s.opts.Interval.Seconds()
	for k, r := range s.series {
		if r.last < from {
			continue
		}
		var c Counts
		for i, t := range r.ticks {
			if t >= from && t <= end {
				c.add(r.slots[i].counts())
			}
		}
		if c.Requests > 0 || c.TCP > 0 {
			w.Series[k] = c
		}
	}
	return w
}

// Len is the number of series kept, and Evicted how many were dropped to
// stay under MaxSeries.
func (s *Store) Len() (series int, evicted uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.series), s.evicted
}

func toSlot(c Counts) slot {
	sl := slot{requests: clamp32(c.Requests), failures: clamp32(c.Failures), tcp: clamp32(c.TCP)}
	for i, b := range c.Buckets {
		sl.buckets[i] = clamp32(b)
	}
	return sl
}

func (sl slot) counts() Counts {
	c := Counts{Requests: float64(sl.requests), Failures: float64(sl.failures), TCP: float64(sl.tcp)}
	for i, b := range sl.buckets {
		c.Buckets[i] = float64(b)
	}
	return c
}

func clamp32(v float64) uint32 {
	switch {
	case v <= 0:
		return 0
	case v >= math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(math.Round(v))
}

// History returns, per interval remembered, the requests service answered
// (its inbound series; its callers' outbound series if it has none),
// oldest first. Intervals with no traffic are points of zero requests.
func (s *Store) History(_ context.Context, _ time.Time, service string) ([]Point, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Point{}
	if s.first == 0 {
		return out, nil
	}
	end := s.tick
	from := max(s.first, end-int64(s.nslot)+1)
	per := make([]Counts, end-from+1)
	for _, side := range []Side{Inbound, Outbound} {
		found := false
		for k, r := range s.series {
			if k.Side != side || k.Destination != service {
				continue
			}
			found = true
			for i, t := range r.ticks {
				if t >= from && t <= end {
					per[t-from].add(r.slots[i].counts())
				}
			}
		}
		if found {
			break
		}
	}
	for i, c := range per {
		t := time.Unix(0, (from+int64(i)+1)*int64(s.opts.Interval)).UTC()
		out = append(out, Point{Time: t, Golden: golden(c, s.opts.Interval.Seconds())})
	}
	return out, nil
}
