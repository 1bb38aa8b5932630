// Package validation is weft's validating admission webhook. The API
// server asks it before it stores a weft.dev object (a kubectl apply, a
// Helm release, a GitOps controller), and it answers with the checks of
// `weft apply`: an object weft would refuse — an invalid field, a
// MeshConfig on another trust domain, a policy that would make the proxies
// NACK their config — is refused with the same message, naming the object
// and the field, and never reaches the cluster. `weft control --store
// kubernetes --admission-listen` serves it on every replica.
package validation

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/kube/admission"
)

// Path is where the handler is served.
const Path = "/validate"

// Check returns why objs would be refused, or nil
// (apiserver.Validator.Check).
type Check func(objs []api.Located) error

// Options configure NewHandler.
type Options struct {
	// Check decides (required).
	Check Check
	// Logger (default: discard).
	Logger *slog.Logger
	// Registerer, if set, gets weft_validation_admissions_total{result}:
	// result allowed, refused, skipped or error.
	Registerer prometheus.Registerer
}

// Handler answers AdmissionReviews of weft.dev objects.
type Handler struct {
	check   Check
	log     *slog.Logger
	results *prometheus.CounterVec
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns the webhook handler.
func NewHandler(o Options) (*Handler, error) {
	if o.Check == nil {
		return nil, errors.New("validation handler: a check is required")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{check: o.Check, log: log, results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_validation_admissions_total",
		Help: "weft.dev objects the validating webhook answered, by result: allowed, refused (the write was denied), skipped (not a weft.dev create or update) or error (a malformed review).",
	}, []string{"result"})}
	for _, r := range []string{"allowed", "refused", "skipped", "error"} {
		h.results.WithLabelValues(r)
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(h.results); err != nil {
			return nil, fmt.Errorf("validation handler: registering metrics: %w", err)
		}
	}
	return h, nil
}

// ServeHTTP answers one AdmissionReview.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	review, err := admission.Decode(w, r)
	if err != nil {
		h.results.WithLabelValues("error").Inc()
		h.log.Warn("bad admission review", "err", err, "remote", r.RemoteAddr)
		admission.WriteError(w, err)
		return
	}
	admission.Respond(w, review, h.review(review.Request))
}

// review decides one request: a create or update of a weft.dev object is
// allowed only if it passes the checks of `weft apply`; anything else
// (deletes, status updates, other groups) is not this webhook's to judge.
func (h *Handler) review(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Kind.Group != api.GroupWeft || (req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) || req.SubResource != "" {
		h.results.WithLabelValues("skipped").Inc()
		return resp
	}
	refuse := func(err error) *admissionv1.AdmissionResponse {
		h.results.WithLabelValues("refused").Inc()
		h.log.Warn("write of a weft object refused", "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name,
			"user", req.UserInfo.Username, "err", err)
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity, Reason: metav1.StatusReasonInvalid,
			Message: err.Error()}
		return resp
	}
	obj, err := decode(req)
	if err != nil {
		return refuse(err)
	}
	if err := h.check([]api.Located{{Object: obj, Where: "weft apply would refuse it"}}); err != nil {
		return refuse(err)
	}
	h.results.WithLabelValues("allowed").Inc()
	return resp
}

// decode is the request's object as weft's typed object, named and
// namespaced as the API server will store it, defaulted as `weft apply`
// defaults it.
func decode(req *admissionv1.AdmissionRequest) (api.Object, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(req.Object.Raw); err != nil {
		return nil, fmt.Errorf("decoding the %s: %w", req.Kind.Kind, err)
	}
	// A create's object may leave both to the request (kubectl -n).
	if u.GetNamespace() == "" && req.Namespace != "" {
		u.SetNamespace(req.Namespace)
	}
	if u.GetName() == "" && req.Name != "" {
		u.SetName(req.Name)
	}
	b, err := json.Marshal(u.Object)
	if err != nil {
		return nil, fmt.Errorf("encoding the %s: %w", req.Kind.Kind, err)
	}
	o, err := api.Unmarshal(b)
	if err != nil {
		return nil, err
	}
	if d, ok := o.(interface{ Default() }); ok {
		d.Default()
	}
	api.ClearStatus(o)
	return o, nil
}
