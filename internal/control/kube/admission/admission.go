// Package admission is the AdmissionReview plumbing weft's webhooks share:
// reading and checking a review the API server POSTs, and answering it.
// The decisions are the webhooks' own (package inject for Pods, package
// validation for weft's configuration).
package admission

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
)

// MaxReviewBytes bounds an AdmissionReview request body. The API server
// sends one object (a Pod, a policy), far smaller; etcd's own limit on an
// object is 1.5 MiB, so a review of a bigger one is not a real request.
const MaxReviewBytes = 2 << 20

// Decode reads r's body as an admission.k8s.io/v1 AdmissionReview with a
// request that has a uid: the API server's. Anything else is an error to
// answer with 400.
func Decode(w http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionReview, error) {
	if r.Method != http.MethodPost {
		return nil, errMethod
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxReviewBytes))
	if err != nil {
		return nil, fmt.Errorf("reading review: %w", err)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, fmt.Errorf("decoding review: %w", err)
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("review: apiVersion %q kind %q: want %s AdmissionReview", review.APIVersion, review.Kind, admissionv1.SchemeGroupVersion)
	}
	if review.Request == nil {
		return nil, errors.New("review: no request")
	}
	if review.Request.UID == "" {
		return nil, errors.New("review: request has no uid")
	}
	return &review, nil
}

var errMethod = errors.New("POST an admission.k8s.io/v1 AdmissionReview")

// WriteError answers a request Decode refused: 405 for another method,
// else 400 with the error.
func WriteError(w http.ResponseWriter, err error) {
	if errors.Is(err, errMethod) {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, err.Error(), http.StatusMethodNotAllowed)
		return
	}
	http.Error(w, err.Error(), http.StatusBadRequest)
}

// Respond answers review with resp.
func Respond(w http.ResponseWriter, review *admissionv1.AdmissionReview, resp *admissionv1.AdmissionResponse) {
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(w, "encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
