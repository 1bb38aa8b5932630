package weftv1

import (
	"strings"
	"testing"
)

// TestValidateRouteStage: the route stage's fields a proxy cannot compile
// are refused with the field named.
func TestValidateRouteStage(t *testing.T) {
	ok := func() *Route {
		return &Route{Name: "r", Backends: []*Backend{{Service: "b", Namespace: "n", Weight: 1}}}
	}
	tests := []struct {
		name string
		edit func(r *Route)
		want string // "" for valid
	}{
		{"valid regex path without a leading slash", func(r *Route) {
			r.Matches = []*RouteMatch{{Path: &PathMatch{Kind: PathMatch_REGEX, Value: ".*/items"}}}
		}, ""},
		{"bad path regex", func(r *Route) { r.Matches = []*RouteMatch{{Path: &PathMatch{Kind: PathMatch_REGEX, Value: "a)|(b"}}} }, "matches[0].path.value: invalid regular expression"},
		{"bad header regex", func(r *Route) {
			r.Matches = []*RouteMatch{{Headers: []*HeaderMatch{{Name: "x", Value: "(", Regex: true}}}}
		}, "matches[0].headers[0].value: invalid regular expression"},
		{"query without name", func(r *Route) { r.Matches = []*RouteMatch{{QueryParams: []*QueryParamMatch{{Value: "1"}}}} }, "matches[0].query_params[0].name: must not be empty"},
		{"bad query regex", func(r *Route) {
			r.Matches = []*RouteMatch{{QueryParams: []*QueryParamMatch{{Name: "q", Value: "[", Regex: true}}}}
		}, "matches[0].query_params[0].value: invalid regular expression"},
		{"redirect and rewrite", func(r *Route) { r.Redirect, r.Rewrite = &RequestRedirect{}, &URLRewrite{} }, "redirect: cannot be combined with rewrite"},
		{"redirect status", func(r *Route) { r.Redirect = &RequestRedirect{StatusCode: 200} }, "redirect.status_code: 200 is not 301, 302, 303, 307 or 308"},
		{"redirect scheme", func(r *Route) { r.Redirect = &RequestRedirect{Scheme: "ftp"} }, "redirect.scheme"},
		{"redirect port", func(r *Route) { r.Redirect = &RequestRedirect{Port: 70000} }, "redirect.port: 70000 out of range"},
		{"full path", func(r *Route) { r.Rewrite = &URLRewrite{Path: &PathModifier{Kind: PathModifier_FULL, Value: "x"}} }, "rewrite.path.value"},
		{"prefix without matched prefix", func(r *Route) { r.Rewrite = &URLRewrite{Path: &PathModifier{Kind: PathModifier_PREFIX, Value: "/x"}} }, "rewrite.path.matched_prefix"},
		{"path modifier kind", func(r *Route) { r.Rewrite = &URLRewrite{Path: &PathModifier{Kind: 9}} }, "rewrite.path.kind: unknown kind 9"},
		{"header modifier name", func(r *Route) { r.RequestHeaders = &HeaderModifier{Set: []*HeaderValue{{Name: "a b"}}} }, "request_headers.set[0]: invalid header"},
		{"header modifier value", func(r *Route) {
			r.ResponseHeaders = &HeaderModifier{Add: []*HeaderValue{{Name: "a", Value: "x\r\ny: z"}}}
		}, "response_headers.add[0]: invalid header"},
		{"backend filter", func(r *Route) { r.Backends[0].RequestHeaders = &HeaderModifier{Remove: []string{""}} }, "backends[0].request_headers.remove[0]: invalid header name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok()
			tt.edit(r)
			err := ValidateService(&Service{Name: "s", Namespace: "n", Routes: []*Route{r}})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), "routes[0]: "+tt.want)):
				t.Fatalf("err = %v, want it to contain %q", err, "routes[0]: "+tt.want)
			}
		})
	}
}
