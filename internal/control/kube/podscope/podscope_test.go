package podscope

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/testkube"
)

// TestMembership on a real API server: which services the sidecars of a
// service account may join follows its pods, the Services that select
// them, and the account itself.
func TestMembership(t *testing.T) {
	srv := testkube.StartAPIServer(t)
	kube := srv.Clientset()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv.Namespace(t, "shop")
	srv.Namespace(t, "other")
	for _, sa := range []string{"web", "pay", "idle", "batch"} {
		srv.ServiceAccount(t, "shop", sa)
	}
	pod := func(name, sa string, labels, annotations map[string]string) *corev1.Pod {
		return srv.Pod(t, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: labels, Annotations: annotations},
			Spec:       corev1.PodSpec{ServiceAccountName: sa},
		})
	}
	pod("web-1", "web", map[string]string{"app": "web"}, nil)
	pod("pay-1", "pay", map[string]string{"app": "payments", "tier": "backend"}, nil)
	pod("pay-admin", "pay", map[string]string{"app": "pay-admin"}, nil)
	pod("pay-canary", "pay", map[string]string{"app": "payments-canary"}, map[string]string{"weft.dev/service": "payments"})
	// A finished Job's pod is not live.
	done := pod("batch-1", "batch", map[string]string{"app": "batch"}, nil)
	done.Status.Phase = corev1.PodSucceeded
	if _, err := kube.CoreV1().Pods("shop").UpdateStatus(ctx, done, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := func(name string, selector map[string]string) {
		_, err := kube.CoreV1().Services("shop").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	svc("payments", map[string]string{"app": "payments"})
	svc("web", map[string]string{"app": "web", "tier": "frontend"}) // selects no pod
	svc("legacy", nil)                                              // no selector

	s := New(kube, Options{})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, account, service string
		want                   string // "" for a member, else part of the error
	}{
		{"pod selected by its Service", "pay", "payments", ""},
		{"service named by a label, no Service of that name", "pay", "pay-admin", ""},
		{"a label that an annotation overrides", "pay", "payments-canary", `is of service "payments-canary"`},
		{"another account's service", "web", "payments", `no live pod of service account shop/web is of service "payments"`},
		{"a pod's service, but its Service selects other pods", "web", "web", "the Service shop/web selects none of the live pods"},
		{"service account name is the fallback service", "idle", "idle", "no live pod runs as service account shop/idle"},
		{"account whose only pod finished", "batch", "batch", "no live pod runs as service account shop/batch"},
		{"missing account", "ghost", "ghost", "service account shop/ghost does not exist"},
		{"Service without a selector is not claimed by name", "pay", "legacy", `is of service "legacy"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Member("shop", tc.account, tc.service)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Member(%s, %s) = %v, want nil", tc.account, tc.service, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Member(%s, %s) = %v, want an error containing %q", tc.account, tc.service, err, tc.want)
			}
		})
	}
	if err := s.Live("other", "default"); err == nil || !strings.Contains(err.Error(), "no live pod") {
		t.Errorf("Live(other/default) = %v, want no live pod", err)
	}

	eventually := func(what string, ok func() error) {
		t.Helper()
		var err error
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if err = ok(); err == nil {
				return
			}
		}
		t.Fatalf("%s: not within 5s: %v", what, err)
	}
	// The account's pods go: it is no longer live, nor a member.
	srv.DeletePod(t, "shop", "pay-1")
	eventually("payments needs pay-1", func() error {
		if err := s.Member("shop", "pay", "payments"); err == nil || !strings.Contains(err.Error(), "selects none") {
			return fmt.Errorf("Member(pay, payments) = %v after pay-1 was deleted", err)
		}
		return nil
	})
	if err := s.Live("shop", "pay"); err != nil {
		t.Errorf("Live(shop/pay) = %v while pay-canary runs", err)
	}
	srv.DeletePod(t, "shop", "pay-canary")
	srv.DeletePod(t, "shop", "pay-admin")
	eventually("no pod left", func() error {
		if err := s.Live("shop", "pay"); err == nil {
			return fmt.Errorf("shop/pay still live")
		}
		return nil
	})
	// The account is deleted while its pod runs: it is not live either.
	if err := kube.CoreV1().ServiceAccounts("shop").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("account deleted", func() error {
		if err := s.Live("shop", "web"); err == nil || !strings.Contains(err.Error(), "does not exist") {
			return fmt.Errorf("Live(shop/web) = %v", err)
		}
		return nil
	})
}

// TestNamespaceLimit: with Options.Namespace, accounts of other namespaces
// are refused, saying why.
func TestNamespaceLimit(t *testing.T) {
	srv := testkube.StartAPIServer(t)
	srv.Namespace(t, "shop")
	srv.Namespace(t, "other")
	srv.Pod(t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "other"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := New(srv.Clientset(), Options{Namespace: "shop"})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Live("other", "default"); err == nil || !strings.Contains(err.Error(), "namespace other is not watched") {
		t.Errorf("Live(other/default) = %v, want the namespace named", err)
	}
}
