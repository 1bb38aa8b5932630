// Package appprobe is the contract between sidecar injection and the proxy
// for kubelet's health checks: injection rewrites an app container's
// httpGet probes to GET /app-health/<container>/<probe> on the proxy's
// health port and records the originals (Probes, as JSON in the Pod
// annotation weft.dev/app-probes); the proxy's health server (Handler)
// answers /ready for its own probes and forwards each app probe to the app
// over plain loopback, so the checks still reach an app whose port only
// takes mutual TLS from outside.
package appprobe

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PathPrefix starts the path of a rewritten app probe:
// /app-health/<container>/<probe>.
const PathPrefix = "/app-health/"

// Header is one extra request header of a probe.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Probe is an app's original HTTP probe.
type Probe struct {
	// Port is the app container's port, named ports resolved.
	Port int32 `json:"port"`
	// Path is the probe's path with its query.
	Path string `json:"path,omitempty"`
	// Scheme is HTTP (also "") or HTTPS (certificate unchecked, as
	// kubelet does).
	Scheme string `json:"scheme,omitempty"`
	// Headers are the probe's extra request headers.
	Headers []Header `json:"httpHeaders,omitempty"`
}

// Probes maps "<container>/<probe>" (probe: liveness, readiness, startup)
// to the original probe.
type Probes map[string]Probe

// Marshal is p's JSON (keys sorted).
func (p Probes) Marshal() (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encoding app probes: %w", err)
	}
	return string(b), nil
}

// Parse decodes Probes' JSON, checking each entry; "" is no probes.
func Parse(s string) (Probes, error) {
	if strings.TrimSpace(s) == "" {
		return Probes{}, nil
	}
	var p Probes
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("app probes: %w", err)
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := p[k]
		if c, kind, ok := strings.Cut(k, "/"); !ok || c == "" || strings.Contains(kind, "/") || (kind != "liveness" && kind != "readiness" && kind != "startup") {
			return nil, fmt.Errorf("app probes: %q is not <container>/liveness|readiness|startup", k)
		}
		if v.Port < 1 || v.Port > 65535 {
			return nil, fmt.Errorf("app probes: %q: port %d is not a port", k, v.Port)
		}
		if v.Scheme != "" && v.Scheme != "HTTP" && v.Scheme != "HTTPS" {
			return nil, fmt.Errorf("app probes: %q: scheme %q is not HTTP or HTTPS", k, v.Scheme)
		}
		if v.Path != "" && !strings.HasPrefix(v.Path, "/") {
			return nil, fmt.Errorf("app probes: %q: path %q does not start with /", k, v.Path)
		}
	}
	return p, nil
}

// Handler serves the proxy's health port: GET /ready answers 200 when
// ready() is nil, else 503; GET /app-health/<container>/<probe> sends the
// recorded probe to the app on 127.0.0.1 and answers with its status
// (kubelet counts 200–399 as success), 502 when the app cannot be reached
// and 404 for a probe not recorded. Nothing else is served: this port is
// reachable from outside the pod.
func Handler(ready func() error, probes Probes) http.Handler {
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			// As kubelet: HTTPS probes do not check the certificate.
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // kubelet's semantics
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		// As kubelet, redirects are not followed to another host; the
		// status of the first answer is what counts.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "not ready: "+err.Error()+"\n")
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("GET "+PathPrefix+"{container}/{probe}", func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("container") + "/" + r.PathValue("probe")
		p, ok := probes[key]
		if !ok {
			http.Error(w, "no app probe "+key, http.StatusNotFound)
			return
		}
		code, err := forward(r.Context(), client, p)
		if err != nil {
			http.Error(w, "app probe "+key+": "+err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(code)
	})
	return mux
}

// forward sends p to the app and returns its status code.
func forward(ctx context.Context, client *http.Client, p Probe) (int, error) {
	scheme := "http"
	if p.Scheme == "HTTPS" {
		scheme = "https"
	}
	path := p.Path
	if path == "" {
		path = "/"
	}
	url := scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(int(p.Port))) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "kube-probe (weft)")
	for _, h := range p.Headers {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Set(h.Name, h.Value)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	return resp.StatusCode, nil
}
