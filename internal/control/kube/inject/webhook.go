package inject

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/control/kube/admission"
)

// NamespaceGetter looks a Namespace up by name.
type NamespaceGetter func(ctx context.Context, name string) (*corev1.Namespace, error)

// Handler serves the mutating admission webhook: POST an
// admission.k8s.io/v1 AdmissionReview of a Pod CREATE, get it back with the
// JSON Patch that injects the sidecar. A skipped Pod is allowed unchanged;
// a Pod injection cannot handle (a malformed inject label, an unresolvable
// probe port) and an internal failure (the Namespace lookup) are refused
// with the cause: the webhook fails closed, as its failurePolicy Fail does
// when the webhook is down (docs/kubernetes/injection.md).
type Handler struct {
	cfg       Config
	namespace NamespaceGetter
	log       *slog.Logger
	results   *prometheus.CounterVec
}

var _ http.Handler = (*Handler)(nil)

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// Config is what is injected; it is defaulted and validated.
	Config Config
	// Namespace looks up the Pod's namespace (required).
	Namespace NamespaceGetter
	// Logger (default: discard).
	Logger *slog.Logger
	// Registerer, if set, gets weft_inject_admissions_total{result}:
	// result injected, skipped, refused or error.
	Registerer prometheus.Registerer
}

// NewHandler returns the webhook handler, or an error naming the bad
// option.
func NewHandler(o HandlerOptions) (*Handler, error) {
	cfg := o.Config.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Namespace == nil {
		return nil, errors.New("inject handler: a namespace getter is required")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, namespace: o.Namespace, log: log,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_inject_admissions_total",
			Help: "Pod admissions the injection webhook answered, by result: injected, skipped, refused (the pod was denied) or error (a malformed review).",
		}, []string{"result"}),
	}
	for _, r := range []string{"injected", "skipped", "refused", "error"} {
		h.results.WithLabelValues(r)
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(h.results); err != nil {
			return nil, fmt.Errorf("inject handler: registering metrics: %w", err)
		}
	}
	return h, nil
}

// ServeHTTP answers one AdmissionReview.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an admission.k8s.io/v1 AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	review, err := admission.Decode(w, r)
	if err != nil {
		h.results.WithLabelValues("error").Inc()
		h.log.Warn("bad admission review", "err", err, "remote", r.RemoteAddr)
		admission.WriteError(w, err)
		return
	}
	admission.Respond(w, review, h.review(r.Context(), review.Request))
}

// review decides one request.
func (h *Handler) review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	skip := func(reason string) *admissionv1.AdmissionResponse {
		h.results.WithLabelValues("skipped").Inc()
		h.log.Debug("pod not injected", "namespace", req.Namespace, "name", req.Name, "reason", reason)
		return resp
	}
	refuse := func(err error) *admissionv1.AdmissionResponse {
		h.results.WithLabelValues("refused").Inc()
		h.log.Warn("pod refused", "namespace", req.Namespace, "name", req.Name, "err", err)
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
			Message: "weft sidecar injection: " + err.Error()}
		return resp
	}
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create {
		return skip(fmt.Sprintf("%s %s is not a Pod CREATE", req.Operation, req.Kind.Kind))
	}
	if req.SubResource != "" {
		return skip("subresource " + req.SubResource)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return refuse(fmt.Errorf("decoding pod: %w", err))
	}
	if req.Namespace != "" {
		pod.Namespace = req.Namespace // empty in the object of a CREATE
	}
	if pod.Namespace == "" {
		return refuse(errors.New("the request names no namespace"))
	}
	ns, err := h.namespace(ctx, pod.Namespace)
	if err != nil {
		return refuse(fmt.Errorf("looking up namespace %q: %w", pod.Namespace, err))
	}
	patched, reason, err := Inject(&pod, ns, h.cfg)
	if err != nil {
		return refuse(err)
	}
	if patched == nil {
		return skip(reason)
	}
	patch, err := Patch(patched)
	if err != nil {
		return refuse(err)
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &pt
	h.results.WithLabelValues("injected").Inc()
	h.log.Info("pod injected", "namespace", pod.Namespace, "name", podName(&pod))
	return resp
}

// podName is the Pod's name, or its generateName prefix.
func podName(p *corev1.Pod) string {
	if p.Name != "" {
		return p.Name
	}
	return p.GenerateName + "*"
}
