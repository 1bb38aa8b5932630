package cli

import (
	"net/http"
	"strings"
	"testing"
)

func TestProxyStatusNoProxies(t *testing.T) {
	g := statTestPlane(t, "[]")
	out, errOut, err := apiTestRun(t, g, newProxyStatusCmd)
	if err != nil || out != "" || !strings.Contains(errOut, "No proxies are connected to the control plane") {
		t.Errorf("proxy-status with no proxies: stdout %q, stderr %q, %v", out, errOut, err)
	}
}

// TestProxyStatusRevisions: each proxy shows the store revision it
// acknowledged, marked behind when its replica serves a newer one, next
// to the store's and the replica's revisions.
func TestProxyStatusRevisions(t *testing.T) {
	proxies := `[{"id":"a-1","service":"a","namespace":"default","identity":"spiffe://weft.local/ns/default/sa/a","connected":"2026-01-01T00:00:00Z","acked":{"t":"1"},"revision":12},
	{"id":"b-1","service":"b","namespace":"default","identity":"spiffe://weft.local/ns/default/sa/b","connected":"2026-01-01T00:00:00Z","acked":{"t":"1"},"revision":9},
	{"id":"c-1","service":"c","namespace":"default","identity":"spiffe://weft.local/ns/default/sa/c","connected":"2026-01-01T00:00:00Z"}]`
	g, _ := apiTestControlPlaneWith(t, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /api/v1/proxies", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(proxies)) })
		mux.HandleFunc("GET /api/v1/ca/rotation", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"phase":"none"}`)) })
		mux.HandleFunc("GET /api/v1/revision", func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"store":14,"served":12,"replica":"cp-2"}`))
		})
	})
	out, errOut, err := apiTestRun(t, g, newProxyStatusCmd)
	if err != nil {
		t.Fatalf("proxy-status: %v (%s)", err, errOut)
	}
	for _, want := range []string{
		"Store at revision 14; configuration served by replica cp-2: revision 12.",
		"REVISION",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	for id, want := range map[string]string{"a-1": " r12 ", "b-1": " r9 (behind r12) ", "c-1": " - "} {
		if !strings.Contains(lines[id], want) {
			t.Errorf("row of %s lacks %q: %q", id, want, lines[id])
		}
	}
	if strings.Contains(lines["a-1"], "behind") {
		t.Errorf("a-1 is at the served revision but marked behind: %q", lines["a-1"])
	}
}
