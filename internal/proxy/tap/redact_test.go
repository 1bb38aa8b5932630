package tap

import (
	"net/http"
	"strings"
	"testing"
)

func TestRedactBody(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		want                    []string // substrings of the result
		never                   []string // never in the result
	}{
		{"json", "application/json", `{"user":"ann","password":"hunter2","nested":{"apiToken":"t0k","keep":1},"list":[{"client_secret":"s3"}]}`,
			[]string{`"user":"ann"`, `"keep":1`, Redacted}, []string{"hunter2", "t0k", "s3"}},
		{"json sensitive object", "application/json", `{"session":{"id":"abc"}}`, []string{Redacted}, []string{"abc"}},
		{"truncated json", "application/json", `{"user":"ann","password":"hunter2","token":"xyz`, []string{`"user":"ann"`}, []string{"hunter2", "xyz"}},
		{"form", "application/x-www-form-urlencoded", `user=ann&password=hunter2&csrf_token=abc`, []string{"user=ann"}, []string{"hunter2", "abc"}},
		{"text with pairs", "text/plain", `login user=ann password=hunter2`, []string{"user=ann"}, []string{"hunter2"}},
		{"binary", "application/grpc", "\x00\x00\x00\x00\x05\xff\xfe\xfd\x01\x02", []string{"binary body"}, []string{"\xff"}},
		{"empty", "", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RedactBody(tt.contentType, []byte(tt.body))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q does not contain %q", got, w)
				}
			}
			for _, n := range tt.never {
				if strings.Contains(got, n) {
					t.Errorf("%q contains %q", got, n)
				}
			}
		})
	}
}

func TestRedactHeader(t *testing.T) {
	h := http.Header{"Authorization": {"Bearer abc"}, "Cookie": {"sid=1"}, "X-Api-Key": {"k"}, "Accept": {"*/*"}, "X-Forwarded-Client-Cert": {"By=..."}}
	got := RedactHeader(h)
	for _, k := range []string{"Authorization", "Cookie", "X-Api-Key", "X-Forwarded-Client-Cert"} {
		if v := got.Get(k); v != Redacted {
			t.Errorf("%s = %q, want redacted", k, v)
		}
	}
	if got.Get("Accept") != "*/*" {
		t.Errorf("Accept = %q", got.Get("Accept"))
	}
	if h.Get("Authorization") != "Bearer abc" {
		t.Error("RedactHeader changed its input")
	}
}

func TestCaptureLimit(t *testing.T) {
	r, _ := http.NewRequest("POST", "http://x/", strings.NewReader(strings.Repeat("a", BodyLimit+100)))
	r.Header.Set("Cookie", "sid=1")
	c := NewCapture(r)
	buf := make([]byte, 1000)
	for {
		if _, err := r.Body.Read(buf); err != nil {
			break
		}
	}
	b := c.Bodies(http.Header{"Content-Type": {"text/plain"}})
	if len(b.Request) != BodyLimit || !b.RequestTrunc {
		t.Errorf("captured %d bytes, truncated %v; want %d, true", len(b.Request), b.RequestTrunc, BodyLimit)
	}
	if b.RequestHeaders.Get("Cookie") != Redacted {
		t.Errorf("cookie not redacted: %v", b.RequestHeaders)
	}
}
