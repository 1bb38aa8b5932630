package inject

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"weft.dev/weft/internal/control/kube/admission"
)

func testHandler(t testing.TB, namespaces map[string]*corev1.Namespace) (*Handler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h, err := NewHandler(HandlerOptions{
		Config: Config{Image: "weft:test", Control: []string{"cp:15012"}},
		Namespace: func(_ context.Context, name string) (*corev1.Namespace, error) {
			ns, ok := namespaces[name]
			if !ok {
				return nil, errors.New("not found")
			}
			return ns, nil
		},
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h, reg
}

func reviewBody(t *testing.T, ns string, pod *corev1.Pod) []byte {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "uid-1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Namespace: ns, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandlerMalformed(t *testing.T) {
	h, reg := testHandler(t, nil)
	tests := []struct {
		name, method string
		body         []byte
		code         int
		wantBody     string
	}{
		{name: "GET", method: http.MethodGet, code: http.StatusMethodNotAllowed},
		{name: "not JSON", method: http.MethodPost, body: []byte("{{"), code: http.StatusBadRequest, wantBody: "decoding review"},
		{name: "empty", method: http.MethodPost, code: http.StatusBadRequest, wantBody: "decoding review"},
		{name: "wrong kind", method: http.MethodPost, body: []byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"1"}}`), code: http.StatusBadRequest, wantBody: `apiVersion "admission.k8s.io/v1beta1"`},
		{name: "no request", method: http.MethodPost, body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), code: http.StatusBadRequest, wantBody: "no request"},
		{name: "no uid", method: http.MethodPost, body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`), code: http.StatusBadRequest, wantBody: "no uid"},
		{name: "request a wrong type", method: http.MethodPost, body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":[1]}`), code: http.StatusBadRequest, wantBody: "decoding review"},
		{name: "too large", method: http.MethodPost, body: append([]byte(`{"apiVersion":"`), bytes.Repeat([]byte("a"), admission.MaxReviewBytes+1)...), code: http.StatusBadRequest, wantBody: "reading review"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, "/inject", bytes.NewReader(tt.body)))
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body %q lacks %q", rec.Body, tt.wantBody)
			}
		})
	}
	if n := testutil.ToFloat64(h.results.WithLabelValues("error")); n != 7 {
		t.Errorf("error count %v, want 7 (the POSTs)", n)
	}
	_ = reg
}

func TestHandlerReview(t *testing.T) {
	h, reg := testHandler(t, map[string]*corev1.Namespace{
		"shop": namespace("shop", Enabled),
		"off":  namespace("off", Disabled),
	})
	badLabel := basePod()
	badLabel.Labels[LabelInject] = "sometimes"
	tests := []struct {
		name      string
		ns        string
		pod       *corev1.Pod
		allowed   bool
		patched   bool
		wantInMsg string
	}{
		{name: "injected", ns: "shop", pod: basePod(), allowed: true, patched: true},
		{name: "skipped", ns: "off", pod: basePod(), allowed: true},
		{name: "refused: bad label", ns: "shop", pod: badLabel, wantInMsg: `"sometimes" is not`},
		{name: "refused: unknown namespace", ns: "gone", pod: basePod(), wantInMsg: `looking up namespace "gone"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/inject", bytes.NewReader(reviewBody(t, tt.ns, tt.pod))))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			body, _ := io.ReadAll(rec.Body)
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
			if out.Kind != "AdmissionReview" || out.APIVersion != "admission.k8s.io/v1" {
				t.Errorf("response type %s %s", out.APIVersion, out.Kind)
			}
			r := out.Response
			if r == nil || r.UID != "uid-1" {
				t.Fatalf("response %+v, want uid-1", r)
			}
			if r.Allowed != tt.allowed || (len(r.Patch) > 0) != tt.patched {
				t.Fatalf("allowed %v patched %v, want %v %v (%+v)", r.Allowed, len(r.Patch) > 0, tt.allowed, tt.patched, r.Result)
			}
			if tt.patched && (r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch) {
				t.Errorf("patch type %v, want JSONPatch", r.PatchType)
			}
			if tt.wantInMsg != "" && (r.Result == nil || !strings.Contains(r.Result.Message, tt.wantInMsg)) {
				t.Errorf("result %+v lacks %q", r.Result, tt.wantInMsg)
			}
		})
	}
	for result, want := range map[string]float64{"injected": 1, "skipped": 1, "refused": 2, "error": 0} {
		if n := testutil.ToFloat64(h.results.WithLabelValues(result)); n != want {
			t.Errorf("%s count %v, want %v", result, n, want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "weft_inject_admissions_total"); err != nil || n != 4 {
		t.Errorf("registry has %d series (%v), want 4", n, err)
	}
}

func TestNewHandlerErrors(t *testing.T) {
	if _, err := NewHandler(HandlerOptions{Config: Config{Control: []string{"cp:1"}}, Namespace: func(context.Context, string) (*corev1.Namespace, error) { return nil, nil }}); err == nil || !strings.Contains(err.Error(), "image is required") {
		t.Errorf("no image: err = %v", err)
	}
	if _, err := NewHandler(HandlerOptions{Config: Config{Image: "i", Control: []string{"cp:1"}}}); err == nil || !strings.Contains(err.Error(), "namespace getter") {
		t.Errorf("no getter: err = %v", err)
	}
}
