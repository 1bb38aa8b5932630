package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/testetcd"
)

// xdsControl is the control-plane replica w's proxy is connected to.
func (w *workload) xdsControl() (string, error) {
	body, err := w.configDump()
	if err != nil {
		return "", err
	}
	var d struct {
		XDS struct {
			Status struct {
				Control string `json:"control"`
			} `json:"status"`
		} `json:"xds"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		return "", err
	}
	return d.XDS.Status.Control, nil
}

// haRoute sends requests with header x-drill: <n> to backend-v2 and the
// rest to backend-v1.
func haRoute(name, value string) string {
	return fmt.Sprintf(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: %s
  namespace: default
spec:
  parentRefs:
  - {group: "", kind: Service, name: backend}
  rules:
  - matches:
    - headers: [{name: x-drill, value: %q}]
    backendRefs: [{name: backend-v2, port: 80}]
  - backendRefs: [{name: backend-v1, port: 80}]
`, name, value)
}

// TestHADrill: three control planes on a three-member etcd cluster, 100
// requests a second through the mesh. The replica the client proxy is
// connected to is killed, then an etcd member: no request fails, the
// config changes applied (to surviving replicas) during the drill reach
// the proxies within 1 s, and every write is still there at the end.
func TestHADrill(t *testing.T) {
	etcd := testetcd.Start(t, testetcd.Options{Members: 3})
	key := filepath.Join(t.TempDir(), "seal.key")
	args := []string{"--store", "etcd", "--etcd-endpoints", strings.Join(etcd.Endpoints(), ","), "--seal-key-file", key}
	var cps []*control
	for range 3 {
		cps = append(cps, startControl(t, args...))
	}
	// Every replica's connection file lists all three before the proxies
	// start, so that each proxy can fail over to any.
	for _, c := range cps {
		eventually(t, 10*time.Second, 50*time.Millisecond, "connection file lists 3 replicas", func() error {
			conn, err := connfile.Read(c.dataDir)
			if err != nil {
				return err
			}
			if n := len(conn.Addresses()); n != 3 {
				return fmt.Errorf("%d addresses: %v", n, conn.Addresses())
			}
			return nil
		})
	}
	cps[0].apply(versionServices)
	startBackend(t, cps[0], "v1")
	startBackend(t, cps[1], "v2")
	client := startClient(t, cps[2], "client")
	waitBothVersions(t, client)

	byXDS := map[string]*control{}
	for _, c := range cps {
		byXDS[addr(c.xds)] = c
	}
	var connected string
	eventually(t, 5*time.Second, 50*time.Millisecond, "client proxy connected", func() error {
		var err error
		connected, err = client.xdsControl()
		if err == nil && byXDS[connected] == nil {
			err = fmt.Errorf("connected to %q, not one of the replicas", connected)
		}
		return err
	})
	victim := byXDS[connected]
	var alive []*control
	for _, c := range cps {
		if c != victim {
			alive = append(alive, c)
		}
	}

	// 100 requests a second until the drill is over.
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	drillStart := time.Now()
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var inflight sync.WaitGroup
		defer inflight.Wait()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			inflight.Go(func() {
				sent.Add(1)
				if _, err := client.getBackend("http://backend/"); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			})
		}
	})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// reaches checks that requests with x-drill: value reach v2 within 1s
	// of the apply.
	reaches := func(what, value string, applied time.Time) {
		t.Helper()
		returned := time.Now()
		took := eventually(t, 10*time.Second, 20*time.Millisecond, what, func() error {
			for i := range 3 {
				br, err := client.getBackend("http://backend/", "x-drill", value)
				if err != nil {
					return err
				}
				if br.Version != "v2" {
					return fmt.Errorf("request %d with x-drill: %s reached %s", i, value, br.Version)
				}
			}
			return nil
		})
		t.Logf("%s: weft apply took %v, in effect at the client proxy %v after it returned", what,
			returned.Sub(applied).Round(time.Millisecond), took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("%s: took %v after weft apply returned, want within 1s", what, took)
		}
	}

	time.Sleep(time.Second)
	killed := time.Now()
	if err := victim.proc.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the replica the client proxy was on (%s)", addr(victim.xds))
	eventually(t, 15*time.Second, 50*time.Millisecond, "client proxy on another replica", func() error {
		c, err := client.xdsControl()
		if err != nil {
			return err
		}
		if c == addr(victim.xds) || byXDS[c] == nil {
			return fmt.Errorf("still on %q", c)
		}
		return nil
	})
	t.Logf("client proxy failed over after %v", time.Since(killed).Round(time.Millisecond))

	applied := time.Now()
	alive[0].apply(haRoute("drill-1", "1"))
	reaches("route applied after the replica was killed", "1", applied)

	etcd.Kill(0)
	t.Log("killed etcd member 0")
	time.Sleep(500 * time.Millisecond)
	applied = time.Now()
	alive[1].apply(haRoute("drill-2", "2"))
	reaches("route applied after an etcd member was killed", "2", applied)

	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("drill: %d requests, %d failed", sent.Load(), failed.Load())
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed during the drill; first: %v", n, sent.Load(), firstErr.Load())
	}
	if want := int64(90 * time.Since(drillStart).Seconds()); sent.Load() < want {
		t.Errorf("only %d requests sent during the %v drill, want ≥ %d (100 a second)", sent.Load(), time.Since(drillStart).Round(time.Millisecond), want)
	}

	// No write lost: both routes and the Services are stored, read through
	// each surviving replica.
	for _, c := range alive {
		r := c.cli("get", "httproute")
		if r.code != 0 {
			t.Fatalf("weft get on %s:\n%s", addr(c.xds), r)
		}
		for _, name := range []string{"drill-1", "drill-2"} {
			if !strings.Contains(r.stdout, name) {
				t.Errorf("replica %s does not list HTTPRoute %s:\n%s", addr(c.xds), name, r.stdout)
			}
		}
	}
}
