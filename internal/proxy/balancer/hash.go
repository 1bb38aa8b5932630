package balancer

import (
	"slices"
	"strconv"

	"weft.dev/weft/internal/proxy/config"
)

// HashString is the 64-bit hash consistent hashing uses: FNV-1a with a
// final mix, the same in every proxy (so that every client of a service
// sends a key to the same endpoint).
func HashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix(h)
}

// mix is the splitmix64 finaliser.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// Token is the session-persistence token of the endpoint at addr: an
// opaque hash, so a cookie does not reveal endpoint addresses.
func Token(addr string) uint64 { return HashString("weft-session\x00" + addr) }

// table is a consistent-hash lookup structure over a view's endpoints.
type table struct {
	size int
	// Ring: sorted points and the endpoint index of each.
	points []uint64
	owner  []int32
	// Maglev: the lookup table of endpoint indexes.
	lookup []int32
}

// hashPick looks h up in v's table (built on first use), skipping ejected
// endpoints: on the ring by walking on to the next points, in Maglev by
// probing the following table entries.
func (d *Destination) hashPick(v *view, req Request, h uint64, now int64) int {
	size := config.DefaultVirtualNodes
	if req.Algorithm == config.Maglev {
		size = config.DefaultMaglevTable
	}
	if req.Spec != nil && req.Spec.TableSize > 0 {
		size = req.Spec.TableSize
	}
	slot := &v.ring
	if req.Algorithm == config.Maglev {
		slot = &v.maglev
	}
	t := slot.Load()
	if t == nil || t.size != size {
		t = buildTable(req.Algorithm, size, v.eps)
		slot.Store(t)
	}
	check := d.Outlier.Any()
	if req.Algorithm == config.Maglev {
		m := uint64(len(t.lookup))
		start := h % m
		for k := uint64(0); k < m; k++ {
			i := int(t.lookup[(start+k)%m])
			if !check || d.usable(v.states[i], now) {
				return i
			}
		}
		return int(t.lookup[start])
	}
	start, _ := slices.BinarySearch(t.points, h)
	p := len(t.points)
	for k := range p {
		i := int(t.owner[(start+k)%p])
		if !check || d.usable(v.states[i], now) {
			return i
		}
	}
	return int(t.owner[start%p])
}

func buildTable(alg config.LoadBalancer, size int, eps []config.Endpoint) *table {
	if alg == config.Maglev {
		return &table{size: size, lookup: maglev(size, eps)}
	}
	return ring(size, eps)
}

// maxRingPoints bounds a ring's size whatever its endpoint count.
const maxRingPoints = 1 << 20

// ring places vnodes virtual nodes per endpoint (fewer when the ring
// would exceed maxRingPoints) at the hashes of "<address>#<i>". An
// endpoint's points do not depend on the others, so when one leaves only
// the keys on its points move.
func ring(vnodes int, eps []config.Endpoint) *table {
	per := max(min(vnodes, maxRingPoints/len(eps)), 1)
	type point struct {
		h uint64
		i int32
	}
	pts := make([]point, 0, per*len(eps))
	for i := range eps {
		for r := range per {
			pts = append(pts, point{HashString(eps[i].Address + "#" + strconv.Itoa(r)), int32(i)})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		if a.h != b.h {
			if a.h < b.h {
				return -1
			}
			return 1
		}
		return int(a.i - b.i)
	})
	t := &table{size: vnodes, points: make([]uint64, len(pts)), owner: make([]int32, len(pts))}
	for k, p := range pts {
		t.points[k], t.owner[k] = p.h, p.i
	}
	return t
}

// maglev builds a Maglev lookup table of prime size m (Eisenbud et al.,
// "Maglev: A Fast and Reliable Software Network Load Balancer", §3.4):
// each endpoint fills, in turn, the next free entry of its own
// permutation of the table.
func maglev(m int, eps []config.Endpoint) []int32 {
	n := len(eps)
	offset := make([]uint64, n)
	skip := make([]uint64, n)
	next := make([]uint64, n)
	for i := range eps {
		offset[i] = HashString("offset\x00"+eps[i].Address) % uint64(m)
		skip[i] = HashString("skip\x00"+eps[i].Address)%uint64(m-1) + 1
	}
	lookup := make([]int32, m)
	for j := range lookup {
		lookup[j] = -1
	}
	filled := 0
	for {
		for i := range n {
			c := (offset[i] + next[i]*skip[i]) % uint64(m)
			for lookup[c] >= 0 {
				next[i]++
				c = (offset[i] + next[i]*skip[i]) % uint64(m)
			}
			lookup[c] = int32(i)
			next[i]++
			filled++
			if filled == m {
				return lookup
			}
		}
	}
}
