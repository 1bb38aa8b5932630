package textpages

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Release drops the read-only mappings of the running executable from the
// page tables with madvise(MADV_DONTNEED). Those mappings are private and
// never written, so the kernel re-reads them from the page cache when they
// are next touched; nothing the process holds is lost.
func Release() (Stats, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return Stats{}, fmt.Errorf("finding the executable: %w", err)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return Stats{}, fmt.Errorf("reading memory maps: %w", err)
	}
	defer f.Close()
	ranges, err := readOnlyRanges(f, exe)
	if err != nil {
		return Stats{}, err
	}
	var st Stats
	for _, r := range ranges {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(r.start), uintptr(r.end-r.start), unix.MADV_DONTNEED); errno != 0 {
			return st, fmt.Errorf("madvise %#x-%#x: %w", r.start, r.end, errno)
		}
		st.Mappings++
		st.Bytes += r.end - r.start
	}
	return st, nil
}

type addrRange struct{ start, end uint64 }

// readOnlyRanges returns the private, non-writable mappings of path listed
// in a /proc/PID/maps file.
func readOnlyRanges(r io.Reader, path string) ([]addrRange, error) {
	var out []addrRange
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// address perms offset dev inode pathname
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || strings.Join(fields[5:], " ") != path {
			continue
		}
		perms := fields[1]
		if len(perms) != 4 || perms[0] != 'r' || perms[1] != '-' || perms[3] != 'p' {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			return nil, fmt.Errorf("bad address range %q in memory maps", fields[0])
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			return nil, fmt.Errorf("bad address range %q in memory maps", fields[0])
		}
		out = append(out, addrRange{start, end})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading memory maps: %w", err)
	}
	return out, nil
}
