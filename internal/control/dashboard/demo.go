package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"weft.dev/weft/internal/connfile"
)

// BreakFailRate is the share of requests a service broken from the
// dashboard fails, as with `weft demo --break`.
const BreakFailRate = 0.5

// demoService is a service name the demo may have a break file for.
var demoService = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// DemoState is the answer of GET /dashboard/api/demo.
type DemoState struct {
	// Enabled is set when the control plane runs under `weft demo`.
	Enabled bool `json:"enabled"`
	// Breakable are the services the demo can break; Broken those broken.
	Breakable []string `json:"breakable"`
	Broken    []string `json:"broken"`
}

// demoState reads the break files: one per breakable service, holding its
// fail rate (the demo's apps read it every second).
func (h *Handler) demoState(w http.ResponseWriter, _ *http.Request) {
	st, err := h.readDemo()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *Handler) readDemo() (DemoState, error) {
	st := DemoState{Breakable: []string{}, Broken: []string{}}
	if h.opts.DemoBreakDir == "" {
		return st, nil
	}
	st.Enabled = true
	ents, err := os.ReadDir(h.opts.DemoBreakDir)
	if err != nil {
		return st, fmt.Errorf("reading the demo's break dir: %w", err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !demoService.MatchString(e.Name()) {
			continue
		}
		st.Breakable = append(st.Breakable, e.Name())
		b, err := os.ReadFile(filepath.Join(h.opts.DemoBreakDir, e.Name()))
		if err != nil {
			return st, fmt.Errorf("reading the demo's break file: %w", err)
		}
		if r, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && r > 0 {
			st.Broken = append(st.Broken, e.Name())
		}
	}
	return st, nil
}

// demoBreak answers POST /dashboard/api/demo/break, JSON {"service":
// "backend", "broken": true}: it writes the service's break file.
func (h *Handler) demoBreak(w http.ResponseWriter, r *http.Request) {
	if h.opts.DemoBreakDir == "" {
		writeError(w, http.StatusNotFound, "the control plane does not run under weft demo")
		return
	}
	var req struct {
		Service string `json:"service"`
		Broken  bool   `json:"broken"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "want a JSON body {\"service\": NAME, \"broken\": BOOL}")
		return
	}
	st, err := h.readDemo()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !slices.Contains(st.Breakable, req.Service) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("service %q: the demo can break %s", req.Service, strings.Join(st.Breakable, ", ")))
		return
	}
	rate := "0"
	if req.Broken {
		rate = strconv.FormatFloat(BreakFailRate, 'g', -1, 64)
	}
	if err := connfile.WriteFileAtomic(filepath.Join(h.opts.DemoBreakDir, req.Service), []byte(rate+"\n"), 0o644); err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("writing the break file: %v", err))
		return
	}
	h.opts.Logger.Info("demo service broken from the dashboard", "service", req.Service, "fail_rate", rate)
	if st, err = h.readDemo(); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}
