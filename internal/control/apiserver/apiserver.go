// Package apiserver serves the control plane's JSON API for the CLI: apply,
// get, list and delete configuration resources. The caller mounts the
// handler on the control plane's HTTPS server.
package apiserver

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/control/store"
)

// MaxApplyBytes bounds the body of an apply request.
const MaxApplyBytes = 8 << 20

// Change is one entry of an ApplyResponse.
type Change struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Action is created, configured or unchanged.
	Action string `json:"action"`
}

// ApplyResponse answers POST /api/v1/apply.
type ApplyResponse struct {
	Changes []Change `json:"changes"`
}

// ListResponse answers GET /api/v1/resources/{kind}.
type ListResponse struct {
	Items []json.RawMessage `json:"items"`
}

// DeleteResponse answers DELETE /api/v1/resources/{kind}/{namespace}/{name}.
type DeleteResponse struct {
	Deleted api.Key `json:"deleted"`
}

// ErrorResponse is the body of every error response.
type ErrorResponse struct {
	Error string `json:"error"`
}

// Options connect the API to the running control plane.
type Options struct {
	// Snapshot returns the current mesh snapshot; nil (or a nil func)
	// means a mesh without workloads. Its workloads are part of the
	// candidate mesh an apply is checked against, and of the mesh the
	// statuses are computed from.
	Snapshot func() *mesh.Snapshot
	// TrustDomain is the trust domain of the CA. A MeshConfig naming
	// another one is refused; one naming none is stored with this one.
	TrustDomain string
	// Registerer, if set, receives the API's metrics:
	// weft_api_apply_refused_total counts applies refused (nothing stored).
	Registerer prometheus.Registerer
	// GatewayProgrammed, if set, reports whether a gateway proxy of the
	// Gateway name in namespace is connected and acknowledged its
	// configuration (gateway_status.go).
	GatewayProgrammed func(name, namespace string) bool
}

// New returns the API handler. Every request must carry
// "Authorization: Bearer <adminToken>".
//
//	POST   /api/v1/apply                                  body: YAML or JSON, applied all-or-nothing
//	POST   /api/v1/apply/files                            body: FilesRequest, every file applied all-or-nothing
//	GET    /api/v1/resources/{kind}[?namespace=NS]        list (all namespaces by default)
//	GET    /api/v1/resources/{kind}/{namespace}/{name}    one object
//	GET    /api/v1/resources/{kind}/{name}                cluster-scoped kinds, or namespace "default"
//	DELETE /api/v1/resources/{kind}/{namespace}/{name}    (and the two-segment form)
//
// Reading an HTTPRoute, GRPCRoute or DestinationPolicy returns it with a
// status computed from the current mesh (see status.go); statuses are
// never stored.
func New(st store.Store, adminToken string, logger *slog.Logger, opts Options) http.Handler {
	h := &handler{st: st, log: logger, opts: opts, refused: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "weft_api_apply_refused_total",
		Help: "Applies refused by the control plane API (invalid, unsupported or not compilable configuration); nothing of them was stored.",
	})}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(h.refused)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/apply", h.apply)
	mux.HandleFunc("POST /api/v1/apply/files", h.applyFiles)
	mux.HandleFunc("GET /api/v1/resources/{kind}", h.list)
	mux.HandleFunc("GET /api/v1/resources/{kind}/{name}", h.get)
	mux.HandleFunc("GET /api/v1/resources/{kind}/{namespace}/{name}", h.get)
	mux.HandleFunc("DELETE /api/v1/resources/{kind}/{name}", h.delete)
	mux.HandleFunc("DELETE /api/v1/resources/{kind}/{namespace}/{name}", h.delete)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Authorized(r, adminToken) {
			writeError(w, http.StatusUnauthorized, "missing or wrong admin token (see the admin-token file in the control plane's data dir, or set WEFT_ADMIN_TOKEN)")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Authorized reports whether r carries "Authorization: Bearer <token>". An
// empty token authorizes nothing. The comparison is constant-time.
func Authorized(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}

type handler struct {
	st   store.Store
	log  *slog.Logger
	opts Options
	// refused counts refused applies.
	refused prometheus.Counter
	// applyMu makes checking a candidate configuration and storing it one
	// step, so two applies cannot each pass against the old configuration.
	applyMu sync.Mutex
}

func (h *handler) apply(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxApplyBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("reading request: %v", err))
		return
	}
	objs, err := api.DecodeLocated(body)
	if err != nil {
		h.refuse(w, err)
		return
	}
	h.applyObjects(w, objs)
}

// applyObjects checks objs as a whole and stores them in one transaction,
// or refuses them all.
func (h *handler) applyObjects(w http.ResponseWriter, objs []api.Located) {
	if len(objs) == 0 {
		h.refuse(w, errors.New("no objects to apply"))
		return
	}
	h.applyMu.Lock()
	defer h.applyMu.Unlock()
	if err := h.check(objs); err != nil {
		h.refuse(w, err)
		return
	}
	plain := make([]api.Object, len(objs))
	for i, o := range objs {
		plain[i] = o.Object
	}
	changes, err := h.st.Apply(plain)
	if err != nil {
		var inv *api.InvalidError
		if errors.As(err, &inv) {
			h.refuse(w, err)
			return
		}
		h.log.Error("apply failed", "err", err)
		writeError(w, http.StatusInternalServerError, "storing objects: "+err.Error())
		return
	}
	resp := ApplyResponse{Changes: make([]Change, len(changes))}
	for i, c := range changes {
		resp.Changes[i] = Change{Kind: c.Key.Kind, Namespace: c.Key.Namespace, Name: c.Key.Name, Action: c.Action}
		if c.Action != store.Unchanged {
			h.log.Info("applied", "kind", c.Key.Kind, "namespace", c.Key.Namespace, "name", c.Key.Name, "action", c.Action)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// refuse answers 400 for an apply that stored nothing, and logs and counts
// the refusal.
func (h *handler) refuse(w http.ResponseWriter, err error) {
	h.refused.Inc()
	h.log.Warn("apply refused; nothing stored", "err", err)
	writeError(w, http.StatusBadRequest, err.Error())
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	kind, err := api.NormalizeKind(r.PathValue("kind"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	objs, err := h.st.List(kind, r.URL.Query().Get("namespace"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if err := h.withStatus(objs); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	resp := ListResponse{Items: make([]json.RawMessage, 0, len(objs))}
	for _, o := range objs {
		b, err := api.Marshal(o)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		resp.Items = append(resp.Items, b)
	}
	writeJSON(w, http.StatusOK, resp)
}

// key builds the object key from the path, or writes an error.
func key(w http.ResponseWriter, r *http.Request) (api.Key, bool) {
	kind, err := api.NormalizeKind(r.PathValue("kind"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return api.Key{}, false
	}
	info, _ := api.LookupKind(kind)
	k := api.Key{Kind: kind, Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
	switch {
	case !info.Namespaced:
		k.Namespace = ""
	case k.Namespace == "":
		k.Namespace = api.DefaultNS
	}
	return k, true
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	k, ok := key(w, r)
	if !ok {
		return
	}
	o, err := h.st.Get(k)
	if err != nil {
		writeStoreError(w, k, err)
		return
	}
	if err := h.withStatus([]api.Object{o}); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	b, err := api.Marshal(o)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, json.RawMessage(b))
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) {
	k, ok := key(w, r)
	if !ok {
		return
	}
	if err := h.st.Delete(k); err != nil {
		writeStoreError(w, k, err)
		return
	}
	h.log.Info("deleted", "kind", k.Kind, "namespace", k.Namespace, "name", k.Name)
	writeJSON(w, http.StatusOK, DeleteResponse{Deleted: k})
}

func writeStoreError(w http.ResponseWriter, k api.Key, err error) {
	if errors.Is(err, store.ErrNotFound) {
		where := ""
		if k.Namespace != "" {
			where = fmt.Sprintf(" in namespace %q", k.Namespace)
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %q not found%s", k.Kind, k.Name, where))
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorResponse{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Statuses computes the status weft reports for stored objects (route
// parents' Accepted and ResolvedRefs, Gateway conditions, policy
// conditions), the same the API's reads return. The Kubernetes status
// writer writes them back to the cluster.
type Statuses struct{ h *handler }

// NewStatuses returns the status computation of the API over st; opts'
// Snapshot, GatewayProgrammed and TrustDomain are used, the rest ignored.
func NewStatuses(st store.Store, opts Options) *Statuses {
	return &Statuses{h: &handler{st: st, log: slog.New(slog.DiscardHandler), opts: opts}}
}

// Fill sets the status of every route, Gateway and policy of objs, which
// are the caller's to modify.
func (s *Statuses) Fill(objs []api.Object) error { return s.h.withStatus(objs) }

// Validator checks objects as `weft apply` checks them before storing
// them: each supported and valid, a MeshConfig on the CA's trust domain,
// and the stored configuration with them compiling to xDS resources every
// proxy accepts. The Kubernetes validating webhook uses it, so a kubectl
// apply is refused for what `weft apply` would refuse.
type Validator struct{ h *handler }

// NewValidator returns the checks of the API over st; opts' Snapshot and
// TrustDomain are used, the rest ignored.
func NewValidator(st store.Store, opts Options) *Validator {
	return &Validator{h: &handler{st: st, log: slog.New(slog.DiscardHandler), opts: opts}}
}

// Check returns why objs would be refused, naming the object and the
// field, or nil. objs are the caller's and may be modified (defaulted).
func (v *Validator) Check(objs []api.Located) error { return v.h.check(objs) }
