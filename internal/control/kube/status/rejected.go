package status

import (
	"context"
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/apiserver"
	kubestore "weft.dev/weft/internal/control/kube/store"
)

// ReasonInvalid is the reason of the Accepted=False condition of a weft
// object that the control plane ignores because it is not valid weft
// configuration (a kubectl apply that `weft apply` would have refused).
const ReasonInvalid = "Invalid"

// maxMessage bounds a condition message (the CRD schema allows 32768).
const maxMessage = 32 << 10

// writeRejected writes, to an object the store ignores, a status that says
// so and why: on a weft.dev object, Accepted=False, reason Invalid; on a
// route, for every parent, Accepted=False, reason UnsupportedValue, as the
// Gateway API asks of a route that its implementation cannot serve. The
// message is the validation error, naming the field. Other kinds (Gateway,
// Service) keep their status: the error is in the control plane's log.
func (w *Writer) writeRejected(ctx context.Context, r kubestore.Rejection) error {
	info, ok := api.LookupKind(r.Key.Kind)
	if !ok {
		return nil
	}
	route := false
	switch r.Key.Kind {
	case api.KindHTTPRoute, api.KindGRPCRoute, api.KindTCPRoute, api.KindTLSRoute:
		route = true
	default:
		if info.Group() != api.GroupWeft {
			return nil
		}
	}
	w.mu.Lock()
	settled := w.settled[r.Key] == r.ResourceVersion
	w.mu.Unlock()
	if settled {
		return nil
	}
	res, live, err := w.live(ctx, r.Key)
	if err != nil || live == nil {
		return err
	}
	if live.GetResourceVersion() != r.ResourceVersion {
		return nil // changed meanwhile: the store sees the new version first
	}
	msg := r.Err.Error()
	if len(msg) > maxMessage {
		msg = msg[:maxMessage-3] + "..."
	}
	c := metav1.Condition{Type: "Accepted", Status: metav1.ConditionFalse, ObservedGeneration: live.GetGeneration(),
		Reason: ReasonInvalid, Message: "ignored by weft: " + msg}
	var st any
	if route {
		c.Reason = string(gatewayv1.RouteReasonUnsupportedValue)
		st, err = rejectedRouteStatus(live, c)
	} else {
		st, err = toJSONValue(api.PolicyStatus{Conditions: []metav1.Condition{c}})
	}
	if err != nil {
		return err
	}
	want, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if w.unchanged(r.Key, live.GetUID(), want) {
		// Written before and still there: nothing to read until the
		// object changes.
		w.mu.Lock()
		w.settled[r.Key] = r.ResourceVersion
		w.mu.Unlock()
		return nil
	}
	return w.update(ctx, res, live, r.Key, st, want)
}

// rejectedRouteStatus is the status of a rejected route: condition c for
// each of its parentRefs, under weft's controller name.
func rejectedRouteStatus(live *unstructured.Unstructured, c metav1.Condition) (any, error) {
	refs, _, _ := unstructured.NestedSlice(live.Object, "spec", "parentRefs")
	parents := make([]any, 0, len(refs))
	for _, ref := range refs {
		var p gatewayv1.ParentReference
		b, err := json.Marshal(ref)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &p); err != nil || p.Name == "" {
			continue // not a parentRef the schema allows: nothing to report it under
		}
		ps, err := toJSONValue(gatewayv1.RouteParentStatus{ParentRef: p, ControllerName: apiserver.ControllerName, Conditions: []metav1.Condition{c}})
		if err != nil {
			return nil, err
		}
		parents = append(parents, ps)
	}
	return map[string]any{"parents": parents}, nil
}

// toJSONValue is v as the generic JSON value the dynamic client sends.
func toJSONValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	return out, json.Unmarshal(b, &out)
}

// keepForeignParents adds to want, a route status weft computed, the
// parent statuses of live that other controllers wrote: status.parents
// is shared by every implementation the route's parents belong to, and
// each owns only its own entries.
func keepForeignParents(want, live any) {
	w, ok := want.(map[string]any)
	if !ok {
		return
	}
	l, _ := live.(map[string]any)
	lp, _ := l["parents"].([]any)
	if len(lp) == 0 {
		return
	}
	if _, isRoute := w["parents"]; !isRoute {
		return
	}
	wp, _ := w["parents"].([]any)
	for _, p := range lp {
		if m, ok := p.(map[string]any); ok && m["controllerName"] != string(apiserver.ControllerName) {
			wp = append(wp, p)
		}
	}
	w["parents"] = wp
}
