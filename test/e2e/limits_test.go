package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// vmRSS is the resident set of process pid, in bytes.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// TestSidecarHeadFloodRSS: 100 connections each sending a 1 MiB header
// block to a real sidecar's outbound listener are answered 431, and the
// sidecar's resident set stays at most 64 MiB throughout (205 MiB when heads
// were buffered up to net/http's 1 MiB limit).
func TestSidecarHeadFloodRSS(t *testing.T) {
	c := startControl(t)
	w := startClient(t, c, "web")
	pid := w.proc.pid()
	before, err := vmRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	var peak int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			if rss, err := vmRSS(pid); err == nil {
				peak = max(peak, rss)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})

	const conns = 100
	big := bytes.Repeat([]byte("a"), 1<<20)
	head := []byte("GET http://web/ HTTP/1.1\r\nHost: web\r\nX-Big: ")
	statuses := make([]int, conns)
	var wg sync.WaitGroup
	for i := range conns {
		conn, err := net.Dial("tcp", addr(w.outbound))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		wg.Go(func() { conn.Write(head); conn.Write(big) })
		wg.Go(func() {
			conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
				statuses[i] = resp.StatusCode
			}
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	t.Logf("sidecar RSS %.1f MiB before, %.1f MiB at most during the flood", float64(before)/(1<<20), float64(peak)/(1<<20))
	for i, s := range statuses {
		if s != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("connection %d: status %d, want 431", i, s)
			break
		}
	}
	if peak > 64<<20 {
		t.Errorf("sidecar RSS reached %.1f MiB, want at most 64", float64(peak)/(1<<20))
	}
}
