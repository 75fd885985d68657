package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromiumPath finds Chromium: $CHROMIUM_PATH, then Debian's and others' paths. Without
// it the browser test fails under CI=true (the page must be tested there) and is
// skipped elsewhere.
func chromiumPath(t *testing.T) string {
	t.Helper()
	var candidates []string
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/chromium", "/usr/bin/chromium-browser")
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	msg := fmt.Sprintf("no Chromium at %s; install it with `apt-get install -y chromium` or set CHROMIUM_PATH", strings.Join(candidates, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser starts headless Chromium for the test, with the flags that keep it off the
// network (the machine has none), and returns a tab's context.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	var output bytes.Buffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
		chromedp.CombinedOutput(&output),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		if t.Failed() && output.Len() > 0 {
			t.Logf("chromium output:\n%s", output.String())
		}
	})
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	return ctx
}

// consoleErrors collects the page's console errors and uncaught exceptions.
func consoleErrors(ctx context.Context) func() []string {
	var mu sync.Mutex
	var errs []string
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line))
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

// tab drives one browser tab through the History page.
type tab struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string // where screenshots go
}

// newTab opens a browser for the test. Screenshots go to $HTTPAPI_SCREENSHOT_DIR when
// it is set, else to a temporary folder; the test prints which.
func newTab(t *testing.T, base string) *tab {
	t.Helper()
	dir := os.Getenv("HTTPAPI_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	t.Logf("screenshots: %s", dir)
	return &tab{t: t, ctx: browser(t), base: base, shots: dir}
}

func (p *tab) run(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, steps...), what)
}

// open navigates to a page path ("/?range=24h") and waits for the page's script.
func (p *tab) open(t *testing.T, path string) {
	t.Helper()
	p.run(t, "open "+path, chromedp.Navigate(p.base+path))
	p.waitFor(t, "the page's script", `!!(window.AW && window.AW.live)`)
}

// waitFor polls a JavaScript predicate until it holds, for up to 20 seconds.
func (p *tab) waitFor(t *testing.T, what, predicate string) {
	t.Helper()
	p.run(t, what, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		for {
			_, err := chromedp.Poll[bool](predicate, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))(ctx, tg)
			// A navigation that is still settling replaces the page's JavaScript
			// context under the poll: poll again in the new one.
			if err != nil && strings.Contains(err.Error(), "Cannot find context with specified id") && ctx.Err() == nil {
				continue
			}
			return chromedp.Void{}, err
		}
	})
}

// eval runs JavaScript for its effect.
func (p *tab) eval(t *testing.T, js string) {
	t.Helper()
	p.run(t, js, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[chromedp.Void](js)(ctx, tg)
		return chromedp.Void{}, err
	})
}

// value evaluates JavaScript and decodes its result.
func value[T any](t *testing.T, p *tab, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	require.NoError(t, err, js)
	return v
}

// viewport sets the window's size, as a phone's (mobile, touch) when narrow.
func (p *tab) viewport(t *testing.T, width, height int64) {
	t.Helper()
	var opts []chromedp.EmulateViewportOption
	if width < 600 {
		opts = append(opts, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	p.run(t, fmt.Sprintf("viewport %dx%d", width, height), chromedp.EmulateViewport(width, height, opts...))
}

// colorScheme makes the page see prefers-color-scheme: scheme ("" for the default).
func (p *tab) colorScheme(t *testing.T, scheme string) {
	t.Helper()
	p.run(t, "color scheme "+scheme, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		params := emulation.SetEmulatedMediaParams{}
		if scheme != "" {
			params.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
		}
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, params)
		return chromedp.Void{}, err
	})
}

// screenshot saves the whole page as name.png; with a dialog open, or on a phone, what
// the screen shows (the dialog scrolls inside it).
func (p *tab) screenshot(t *testing.T, name string) {
	t.Helper()
	// Let the last render and the charts' layout settle.
	p.waitFor(t, "two animation frames", `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
	shot := chromedp.FullScreenshot(100)
	if value[bool](t, p, `!!document.querySelector('dialog[open]') || innerWidth < 600`) {
		shot = chromedp.CaptureScreenshot()
	}
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, shot)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(p.shots, name+".png"), png, 0o644))
}
