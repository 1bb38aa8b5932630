package validation

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/apiserver"
	"weft.dev/weft/internal/control/kube/admission"
	"weft.dev/weft/internal/control/store"
)

// testHandler is the webhook over an empty bbolt store, with the checks
// of `weft apply` for a CA of trust domain cluster.local.
func testHandler(t *testing.T) *Handler {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "weft.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := NewHandler(Options{Check: apiserver.NewValidator(st, apiserver.Options{TrustDomain: "cluster.local"}).Check})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// review is an AdmissionReview of op on the object of doc (YAML), as the
// API server sends it: the namespace in the request, maybe not in the
// object.
func review(t *testing.T, op admissionv1.Operation, group, kind, ns, sub, doc string) []byte {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	rv := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "u-1", Operation: op, Namespace: ns, SubResource: sub,
			Kind:   metav1.GroupVersionKind{Group: group, Version: "v1alpha1", Kind: kind},
			Object: runtime.RawExtension{Raw: raw}},
	}
	b, err := json.Marshal(rv)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReview(t *testing.T) {
	h := testHandler(t)
	const (
		goodDP  = "apiVersion: weft.dev/v1alpha1\nkind: DestinationPolicy\nmetadata: {name: orders}\nspec: {targetRef: {kind: Service, name: orders}, retry: {perTryTimeout: 250ms}}\n"
		badDP   = "apiVersion: weft.dev/v1alpha1\nkind: DestinationPolicy\nmetadata: {name: typo}\nspec: {targetRef: {kind: Service, name: orders}, retry: {perTryTimeout: soon}}\n"
		otherTD = "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {trustDomain: prod.example.com}\n"
		sameTD  = "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {trustDomain: cluster.local, mtls: {mode: PERMISSIVE}}\n"
		badMC   = "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec: {}\n"
		badFI   = "apiVersion: weft.dev/v1alpha1\nkind: FaultInjection\nmetadata: {name: f}\nspec: {abort: {httpStatus: 200}}\n"
	)
	tests := []struct {
		name    string
		body    []byte
		allowed bool
		msg     []string
	}{
		{"valid policy", review(t, admissionv1.Create, api.GroupWeft, "DestinationPolicy", "shop", "", goodDP), true, nil},
		{"invalid duration", review(t, admissionv1.Create, api.GroupWeft, "DestinationPolicy", "shop", "", badDP), false,
			[]string{"weft apply would refuse it", `DestinationPolicy "typo"`, "spec.retry.perTryTimeout", `"soon"`}},
		{"invalid on update too", review(t, admissionv1.Update, api.GroupWeft, "DestinationPolicy", "shop", "", badDP), false, []string{"spec.retry.perTryTimeout"}},
		{"another trust domain", review(t, admissionv1.Create, api.GroupWeft, "MeshConfig", "", "", otherTD), false,
			[]string{"spec.trustDomain", `"prod.example.com"`, `trust domain "cluster.local"`}},
		{"the CA's trust domain", review(t, admissionv1.Create, api.GroupWeft, "MeshConfig", "", "", sameTD), true, nil},
		{"a MeshConfig not named default", review(t, admissionv1.Create, api.GroupWeft, "MeshConfig", "", "", badMC), false, []string{"metadata.name", "singleton"}},
		{"abort status out of range", review(t, admissionv1.Create, api.GroupWeft, "FaultInjection", "shop", "", badFI), false, []string{"spec.abort.httpStatus"}},
		{"not a weft kind", review(t, admissionv1.Create, api.GroupWeft, "Widget", "shop", "", "apiVersion: weft.dev/v1alpha1\nkind: Widget\nmetadata: {name: w}\n"), false, []string{"Widget"}},
		{"not JSON of an object", review(t, admissionv1.Create, api.GroupWeft, "DestinationPolicy", "shop", "", "[1, 2]"), false, []string{"decoding the DestinationPolicy"}},
		{"a delete is not judged", review(t, admissionv1.Delete, api.GroupWeft, "DestinationPolicy", "shop", "", badDP), true, nil},
		{"a status update is not judged", review(t, admissionv1.Update, api.GroupWeft, "DestinationPolicy", "shop", "status", badDP), true, nil},
		{"another group is not judged", review(t, admissionv1.Create, "gateway.networking.k8s.io", "HTTPRoute", "shop", "", "kind: HTTPRoute\nspec: {rules: 7}\n"), true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(tt.body)))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
				t.Fatalf("response %s: %v", rec.Body, err)
			}
			if out.Response.UID != "u-1" || out.Response.Allowed != tt.allowed {
				t.Fatalf("response uid %q allowed %v, want u-1 %v: %+v", out.Response.UID, out.Response.Allowed, tt.allowed, out.Response.Result)
			}
			if tt.allowed {
				return
			}
			if out.Response.Result == nil || out.Response.Result.Code != http.StatusUnprocessableEntity {
				t.Fatalf("result %+v, want 422", out.Response.Result)
			}
			for _, m := range tt.msg {
				if !strings.Contains(out.Response.Result.Message, m) {
					t.Errorf("message %q lacks %q", out.Response.Result.Message, m)
				}
			}
		})
	}
	for result, want := range map[string]float64{"allowed": 2, "refused": 7, "skipped": 3, "error": 0} {
		if n := testutil.ToFloat64(h.results.WithLabelValues(result)); n != want {
			t.Errorf("%s count %v, want %v", result, n, want)
		}
	}
}

func TestMalformedReview(t *testing.T) {
	h := testHandler(t)
	tests := []struct {
		name, method string
		body         []byte
		code         int
		want         string
	}{
		{"GET", http.MethodGet, nil, http.StatusMethodNotAllowed, "POST an admission.k8s.io/v1 AdmissionReview"},
		{"not JSON", http.MethodPost, []byte("{{"), http.StatusBadRequest, "decoding review"},
		{"no request", http.MethodPost, []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), http.StatusBadRequest, "no request"},
		{"no uid", http.MethodPost, []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`), http.StatusBadRequest, "no uid"},
		{"v1beta1", http.MethodPost, []byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"1"}}`), http.StatusBadRequest, "want admission.k8s.io/v1"},
		{"too large", http.MethodPost, append([]byte(`{"apiVersion":"`), bytes.Repeat([]byte("a"), admission.MaxReviewBytes+1)...), http.StatusBadRequest, "reading review"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, Path, bytes.NewReader(tt.body)))
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body, tt.code, tt.want)
			}
		})
	}
	if n := testutil.ToFloat64(h.results.WithLabelValues("error")); n != float64(len(tests)) {
		t.Errorf("error count %v, want %d", n, len(tests))
	}
}
