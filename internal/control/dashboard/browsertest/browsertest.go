// Package browsertest drives the dashboard in a real headless Chromium
// (Debian's chromium package) for tests, through chromedp.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// RequireEnv, set to 1, makes a missing Chromium fail the tests instead of
// skipping them (CI sets it).
const RequireEnv = "WEFT_REQUIRE_CHROMIUM"

// ArtifactsEnv names a directory to keep screenshots in; without it they
// go to the test's temporary directory (removed after the test).
const ArtifactsEnv = "WEFT_TEST_ARTIFACTS"

// Browser is one headless Chromium tab.
type Browser struct {
	// Ctx runs chromedp actions in the tab, bounded by New's timeout.
	Ctx     context.Context
	t       *testing.T
	tab     context.Context
	timeout time.Duration
	dir     string

	mu sync.Mutex
	// errors are the console errors and uncaught exceptions of the page
	// (a Content-Security-Policy violation among them).
	errors []string
}

// New starts a headless Chromium for t (skipped if none is installed,
// unless RequireEnv is 1) and closes it when t ends; actions run under
// timeout. The browser trusts any server certificate: the dashboard's test
// servers use their own CA.
func New(t *testing.T, timeout time.Duration) *Browser {
	t.Helper()
	exe := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("no chromium on PATH and %s=1: apt-get install -y chromium", RequireEnv)
		}
		t.Skipf("no chromium on PATH: apt-get install -y chromium to run the dashboard's browser tests (%s=1 makes this a failure)", RequireEnv)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.NoSandbox, // tests often run as root in containers
		chromedp.DisableGPU,
		chromedp.Flag("renderer-process-limit", "1"),
		chromedp.WindowSize(1400, 1000),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	dir := t.TempDir()
	if d := os.Getenv(ArtifactsEnv); d != "" {
		dir = filepath.Join(d, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return open(t, actx, timeout, dir)
}

// NewProfile opens a tab in the same browser with a profile of its own:
// no cookies shared with b's.
func (b *Browser) NewProfile() *Browser {
	b.t.Helper()
	return open(b.t, b.tab, b.timeout, b.dir, chromedp.WithNewBrowserContext())
}

// open opens a tab from parent (an allocator or another tab) and collects
// its console errors until t ends.
func open(t *testing.T, parent context.Context, timeout time.Duration, dir string, opts ...chromedp.ContextOption) *Browser {
	t.Helper()
	tab, cancelTab := chromedp.NewContext(parent, opts...)
	// The first call starts the browser, which lives as long as its
	// context: no timeout on it.
	if err := chromedp.Do(tab); err != nil {
		cancelTab()
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(tab, timeout)
	b := &Browser{Ctx: ctx, t: t, tab: tab, timeout: timeout, dir: dir}
	messages := chromedp.Console(tab)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == "error" {
				b.mu.Lock()
				b.errors = append(b.errors, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m.Text))
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		<-done
	})
	return b
}

// Do runs actions in the tab, failing the test (with a screenshot) on
// error.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, actions...); err != nil {
		b.Screenshot("failed")
		b.t.Fatalf("%s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression in the tab (awaiting a promise)
// and decodes its value, failing the test on error.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.Screenshot("failed")
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// WaitTrue waits until the JavaScript expression expr is true, failing
// the test (with a screenshot) after within.
func (b *Browser) WaitTrue(what, expr string, within time.Duration) {
	b.t.Helper()
	if _, err := chromedp.Run(b.Ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(within))); err != nil {
		b.Screenshot("failed")
		b.t.Fatalf("%s (%s): %v", what, expr, err)
	}
}

// Errors returns the console errors and exceptions seen so far.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.errors)
}

// Screenshot saves a full-page PNG named name.png and logs its path.
func (b *Browser) Screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.t.Logf("screenshot: %s", p)
}
