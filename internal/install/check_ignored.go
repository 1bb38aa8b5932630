package install

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/apiserver"
	kubestatus "weft.dev/weft/internal/control/kube/status"
)

// maxListed bounds how many ignored objects the check names.
const maxListed = 5

// checkIgnored lists the weft objects and routes the control plane ignores
// because they are not valid weft configuration (written around the
// validating webhook): its status writer marks them Accepted=False with
// reason Invalid (weft.dev kinds) or UnsupportedValue (route parents).
func checkIgnored(ctx context.Context, c *clients) (string, error) {
	var ignored []string
	total := 0
	for _, k := range api.Kinds() {
		route := k.Kind == api.KindHTTPRoute || k.Kind == api.KindGRPCRoute || k.Kind == api.KindTCPRoute || k.Kind == api.KindTLSRoute
		if k.Group() != api.GroupWeft && !route {
			continue
		}
		gv, _ := schema.ParseGroupVersion(k.APIVersion)
		res := c.dyn.Resource(gv.WithResource(k.Plural))
		var list *unstructured.UnstructuredList
		var err error
		if k.Namespaced && c.o.WatchNamespace != "" {
			list, err = res.Namespace(c.o.WatchNamespace).List(ctx, metav1.ListOptions{})
		} else {
			list, err = res.List(ctx, metav1.ListOptions{})
		}
		if err != nil {
			return "", fmt.Errorf("listing %s: %s", k.Plural, reason(err))
		}
		for _, u := range list.Items {
			total++
			if msg, ok := ignoredBecause(&u, route); ok {
				name := u.GetName()
				if ns := u.GetNamespace(); ns != "" {
					name = ns + "/" + name
				}
				ignored = append(ignored, fmt.Sprintf("%s %s: %s", k.Kind, name, msg))
			}
		}
	}
	if len(ignored) == 0 {
		return fmt.Sprintf("none of %d weft objects and routes", total), nil
	}
	listed := ignored
	if len(listed) > maxListed {
		listed = append(listed[:maxListed:maxListed], fmt.Sprintf("and %d more", len(ignored)-maxListed))
	}
	return "", fmt.Errorf("%d of %d ignored as invalid (kubectl get … -o yaml shows each one's status): %s", len(ignored), total, strings.Join(listed, "; "))
}

// ignoredBecause returns the message of the condition with which weft's
// status writer marked u as ignored, if it did.
func ignoredBecause(u *unstructured.Unstructured, route bool) (string, bool) {
	var conds []any
	if route {
		parents, _, _ := unstructured.NestedSlice(u.Object, "status", "parents")
		for _, p := range parents {
			if p, ok := p.(map[string]any); ok && p["controllerName"] == string(apiserver.ControllerName) {
				c, _, _ := unstructured.NestedSlice(p, "conditions")
				conds = append(conds, c...)
			}
		}
	} else {
		conds, _, _ = unstructured.NestedSlice(u.Object, "status", "conditions")
	}
	want := kubestatus.ReasonInvalid
	if route {
		want = "UnsupportedValue"
	}
	for _, c := range conds {
		c, ok := c.(map[string]any)
		if ok && c["type"] == "Accepted" && c["status"] == "False" && c["reason"] == want {
			msg, _ := c["message"].(string)
			return msg, true
		}
	}
	return "", false
}
