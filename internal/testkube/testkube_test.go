package testkube

import (
	"context"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestAPIServer(t *testing.T) {
	s := StartAPIServer(t)
	ctx := context.Background()
	cs := s.Clientset()

	// The kubeconfig file reaches the same server as the admin.
	kc, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig())
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	kcs, err := kubernetes.NewForConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kcs.Discovery().ServerVersion(); err != nil {
		t.Fatalf("server version via kubeconfig: %v", err)
	}

	s.Namespace(t, "apps")
	s.ServiceAccount(t, "apps", "web")

	// A Pod is admitted: its ServiceAccount exists (the ServiceAccount
	// admission plugin is on).
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "apps"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			Containers:         []corev1.Container{{Name: "app", Image: "example.invalid/app"}},
		},
	}
	if _, err := cs.CoreV1().Pods("apps").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	// One with a ServiceAccount that does not exist is refused.
	bad := pod.DeepCopy()
	bad.Name, bad.Spec.ServiceAccountName = "q", "nobody"
	if _, err := cs.CoreV1().Pods("apps").Create(ctx, bad, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Fatalf("pod with missing serviceaccount: err = %v, want a refusal naming it", err)
	}

	mint := func(aud string) string {
		t.Helper()
		tr, err := cs.CoreV1().ServiceAccounts("apps").CreateToken(ctx, "web", &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{aud}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("token request (audience %q): %v", aud, err)
		}
		return tr.Status.Token
	}
	review := func(token string) *authenticationv1.TokenReviewStatus {
		t.Helper()
		r, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{"weft"}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("token review: %v", err)
		}
		return &r.Status
	}

	weftTok := mint("weft")
	otherTok := mint("other")
	tests := []struct {
		name     string
		token    string
		ok       bool
		username string
	}{
		{"audience weft", weftTok, true, "system:serviceaccount:apps:web"},
		{"other audience", otherTok, false, ""},
		{"tampered", weftTok[:len(weftTok)-4] + "AAAA", false, ""},
		{"garbage", "not-a-token", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := review(tc.token)
			if st.Authenticated != tc.ok {
				t.Fatalf("authenticated = %v, want %v (error %q)", st.Authenticated, tc.ok, st.Error)
			}
			if !tc.ok {
				return
			}
			if st.User.Username != tc.username {
				t.Errorf("username = %q, want %q", st.User.Username, tc.username)
			}
			if len(st.Audiences) != 1 || st.Audiences[0] != "weft" {
				t.Errorf("audiences = %v, want [weft]", st.Audiences)
			}
		})
	}
}

func TestMissingBinaries(t *testing.T) {
	t.Setenv("WEFT_KUBE_BIN_DIR", t.TempDir())
	if _, _, err := Binaries(); err == nil || !strings.Contains(err.Error(), "test/kube/build.sh") {
		t.Fatalf("Binaries in an empty dir: err = %v, want one naming the build script", err)
	}
}
