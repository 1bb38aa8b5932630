package textpages

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestReadOnlyRanges(t *testing.T) {
	maps := `00400000-011aa000 r-xp 00000000 fe:00 123 /opt/weft
011aa000-0228f000 r--p 00daa000 fe:00 123 /opt/weft
0228f000-0233a000 rw-p 01e8f000 fe:00 123 /opt/weft
0233a000-04386000 rw-p 00000000 00:00 0
7f00000000-7f00001000 r--p 00000000 fe:00 9 /usr/lib/libc.so.6
7f00002000-7f00003000 r--s 00000000 fe:00 123 /opt/weft
7f00004000-7f00005000 r-xp 00000000 fe:00 124 /opt/weft (deleted)
`
	tests := []struct {
		name string
		path string
		want []addrRange
	}{
		{"code and read-only data of the binary", "/opt/weft", []addrRange{{0x400000, 0x11aa000}, {0x11aa000, 0x228f000}}},
		{"a replaced binary keeps its name with a suffix", "/opt/weft (deleted)", []addrRange{{0x7f00004000, 0x7f00005000}}},
		{"another path", "/bin/true", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readOnlyRanges(strings.NewReader(maps), tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("range %d = %#v, want %#v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestReadOnlyRangesRejectsGarbage(t *testing.T) {
	if _, err := readOnlyRanges(strings.NewReader("zz-01 r-xp 0 0:0 1 /x\n"), "/x"); err == nil {
		t.Fatal("want an error for a malformed range")
	}
}

// TestReleaseKeepsRunning releases this test binary's code pages and then
// keeps running code and reading read-only data, and checks that the
// resident file-backed memory dropped.
func TestReleaseKeepsRunning(t *testing.T) {
	before := rssFileKiB(t)
	st, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if st.Mappings == 0 || st.Bytes == 0 {
		t.Fatalf("released nothing: %+v", st)
	}
	after := rssFileKiB(t)
	if after >= before {
		t.Errorf("RssFile %d KiB after release, %d KiB before: want less", after, before)
	}
	// Code and read-only data still work after their pages were dropped.
	if got := strings.Repeat("ab", 3); got != "ababab" {
		t.Fatalf("strings.Repeat = %q", got)
	}
}

func rssFileKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			n, err := strconv.Atoi(f[0])
			if err != nil {
				t.Fatalf("RssFile %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}
