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

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
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
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
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

// row is one row of the History table as the browser shows it.
type row struct {
	Arn      string `json:"arn"`
	Status   string `json:"status"`
	Name     string `json:"name"`
	Agent    string `json:"agent"`
	Started  string `json:"started"`
	Duration string `json:"duration"`
	Action   string `json:"action"`
}

const rowsJS = `[...document.querySelectorAll('#rows tr')].map(tr => ({
	arn: tr.dataset.arn,
	status: tr.querySelector('.status').textContent.trim(),
	name: tr.querySelector('.name').textContent.trim(),
	agent: tr.querySelector('.agent').textContent.trim(),
	started: tr.querySelector('.started').textContent.trim(),
	duration: tr.querySelector('.duration').textContent.trim(),
	action: tr.querySelector('.action').textContent.trim(),
}))`

// The History page in headless Chromium: the table of seed 000, the status filter,
// live updates without a reload, the session timeline with its diagnosis, and the
// alerts panel.
func TestHistoryPageInBrowser(t *testing.T) {
	ctx := browser(t)
	errs := consoleErrors(ctx)
	s := newStack(t, stackOptions{config: httpapi.Config{PollInterval: 200 * time.Millisecond}})

	// The executions of seed 000's example, a few minutes ago.
	base := time.Now().UTC().Add(-20 * time.Minute).Truncate(time.Second)
	succeeded := execution{agent: "my-agent", name: "abc123", session: "sess-abc123", start: base.Add(5 * time.Minute)}
	running := execution{agent: "my-agent", name: "def456", session: "sess-def456", start: base.Add(10*time.Minute + 15*time.Second)}
	failed := execution{agent: "my-agent", name: "ghi789", session: "sess-ghi789", start: base}
	s.post(statusChange(succeeded, "RUNNING", time.Time{}, "", ""), statusChange(succeeded, "SUCCEEDED", succeeded.start.Add(10*time.Second), "", ""))
	s.post(lifecycle(succeeded.session, succeeded.start, 0, 5*time.Second, "")...)
	s.post(statusChange(running, "RUNNING", time.Time{}, "", ""))
	s.post(lifecycle(running.session, running.start, 4, 0, "")...)
	s.post(statusChange(failed, "RUNNING", time.Time{}, "", ""),
		statusChange(failed, "FAILED", failed.start.Add(5*time.Second), "States.TaskFailed", "the background task failed"))
	s.post(lifecycle(failed.session, failed.start, 3, 0, throttled)...)

	run := func(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		require.NoError(t, chromedp.Do(tctx, steps...), what)
	}
	waitFor := func(t *testing.T, what, predicate string) {
		t.Helper()
		run(t, what, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			for {
				_, err := chromedp.Poll[bool](predicate, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))(ctx, tg)
				// A navigation that is still settling replaces the page's JavaScript
				// context under the poll: poll again in the new one.
				if err != nil && strings.Contains(err.Error(), "Cannot find context with specified id") && ctx.Err() == nil {
					continue
				}
				return chromedp.Void{}, err
			}
		})
	}
	eval := func(t *testing.T, js string) {
		t.Helper()
		run(t, js, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Evaluate[chromedp.Void](js)(ctx, tg)
			return chromedp.Void{}, err
		})
	}
	rows := func(t *testing.T) []row {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		rs, err := chromedp.Run(tctx, chromedp.Evaluate[[]row](rowsJS))
		require.NoError(t, err)
		return rs
	}
	byName := func(rs []row) map[string]row {
		m := map[string]row{}
		for _, r := range rs {
			m[r.Name] = r
		}
		return m
	}
	screenshot := func(t *testing.T, name string) {
		dir := os.Getenv("HTTPAPI_SCREENSHOT_DIR")
		if dir == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
	}
	clock := func(at time.Time) string { return at.Local().Format("15:04:05") }

	run(t, "open the History page", chromedp.Navigate(s.http.URL+"/?range=24h"))
	waitFor(t, "three executions", `document.querySelectorAll('#rows tr').length === 3`)

	t.Run("the table shows the executions of seed 000", func(t *testing.T) {
		rs := rows(t)
		require.Len(t, rs, 3)
		assert.Equal(t, []string{"def456", "abc123", "ghi789"}, []string{rs[0].Name, rs[1].Name, rs[2].Name}, "newest first")
		m := byName(rs)
		assert.Equal(t, "✓SUCCEEDED", m["abc123"].Status)
		assert.Equal(t, "10s", m["abc123"].Duration)
		assert.Contains(t, m["abc123"].Started, clock(succeeded.start))
		assert.Equal(t, "⚡RUNNING", m["def456"].Status)
		assert.Equal(t, "-", m["def456"].Duration)
		assert.Contains(t, m["def456"].Started, clock(running.start))
		assert.Equal(t, "✗FAILED", m["ghi789"].Status)
		assert.Equal(t, "5s", m["ghi789"].Duration)
		for _, r := range rs {
			assert.Equal(t, "my-agent", r.Agent)
			assert.Equal(t, "View Details", r.Action)
		}
		waitFor(t, "the agent filter lists the agent", `[...document.querySelectorAll('#agent-filter option')].some(o => o.value === 'my-agent')`)
	})
	screenshot(t, "history")

	t.Run("filter by status", func(t *testing.T) {
		eval(t, `(() => { const s = document.getElementById('status-filter'); s.value = 'FAILED'; s.dispatchEvent(new Event('change')); })()`)
		waitFor(t, "only the failed execution", `(() => { const r = document.querySelectorAll('#rows tr'); return r.length === 1 && r[0].querySelector('.name').textContent === 'ghi789'; })()`)
		waitFor(t, "the filter is in the address", `location.search.includes('status=FAILED')`)
		eval(t, `(() => { const s = document.getElementById('status-filter'); s.value = ''; s.dispatchEvent(new Event('change')); })()`)
		waitFor(t, "all executions again", `document.querySelectorAll('#rows tr').length === 3`)
	})

	t.Run("new and changed executions appear without a reload", func(t *testing.T) {
		eval(t, `window.__sameDocument = true`)
		fresh := execution{agent: "other-agent", name: "jkl012", session: "sess-jkl012", start: time.Now().UTC().Add(-time.Minute).Truncate(time.Second)}
		s.post(statusChange(fresh, "RUNNING", time.Time{}, "", ""))
		waitFor(t, "the new execution", `[...document.querySelectorAll('#rows tr .name')].some(n => n.textContent === 'jkl012')`)
		s.post(statusChange(running, "SUCCEEDED", running.start.Add(95*time.Second), "", ""))
		waitFor(t, "the running execution succeeded", `(() => {
			const tr = [...document.querySelectorAll('#rows tr')].find(tr => tr.querySelector('.name').textContent === 'def456');
			return tr && tr.dataset.status === 'SUCCEEDED';
		})()`)
		m := byName(rows(t))
		assert.Equal(t, "⚡RUNNING", m["jkl012"].Status)
		assert.Equal(t, "other-agent", m["jkl012"].Agent)
		assert.Equal(t, "✓SUCCEEDED", m["def456"].Status)
		assert.Equal(t, "1m 35s", m["def456"].Duration)
		same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__sameDocument === true`))
		require.NoError(t, err)
		assert.True(t, same, "the page was not reloaded")
		waitFor(t, "the new agent joins the agent filter", `[...document.querySelectorAll('#agent-filter option')].some(o => o.value === 'other-agent')`)
	})

	t.Run("View Details shows the timeline and the diagnosis", func(t *testing.T) {
		run(t, "click View Details", chromedp.Click(chromedp.CSS(`tr[data-arn="`+executionArn("my-agent", "ghi789")+`"] button.view`)))
		waitFor(t, "the timeline", `document.getElementById('details').open && document.querySelectorAll('#timeline li').length === 8`)
		screenshot(t, "details")
		type timeline struct {
			Statuses  []string `json:"statuses"`
			Deltas    []string `json:"deltas"`
			Errors    []string `json:"errors"`
			Diagnosis string   `json:"diagnosis"`
			Title     string   `json:"title"`
			Search    string   `json:"search"`
		}
		tl, err := chromedp.Run(ctx, chromedp.Evaluate[timeline](`({
			statuses: [...document.querySelectorAll('#timeline li')].map(li => li.dataset.status),
			deltas: [...document.querySelectorAll('#timeline .tl-delta')].map(d => d.textContent),
			errors: [...document.querySelectorAll('#timeline .error-text')].map(e => e.textContent),
			diagnosis: document.getElementById('diagnosis').textContent,
			title: document.getElementById('details-title').textContent,
			search: location.search,
		})`))
		require.NoError(t, err)
		assert.Equal(t, []string{
			"SESSION_INITIATED", "EXECUTION_RUNNING", "AGENT_RUNTIME_INVOCATION_STARTED", "AGENT_RUNTIME_INVOCATION_SUCCEEDED",
			"AGENT_ENTRYPOINT_STARTED", "AGENT_BACKGROUND_TASK_STARTED", "AGENT_BACKGROUND_TASK_FAILED", "EXECUTION_FAILED",
		}, tl.Statuses)
		assert.Equal(t, []string{"start", "+0ms", "+1s", "+1s", "+1s", "+1s", "+1s", "+0ms"}, tl.Deltas, "time between events")
		assert.Equal(t, []string{throttled, "States.TaskFailed: the background task failed"}, tl.Errors)
		assert.Contains(t, tl.Diagnosis, "Background task failed")
		assert.Contains(t, tl.Diagnosis, "Scenario 3 · Background task failure")
		assert.Contains(t, tl.Diagnosis, throttled)
		assert.Equal(t, "sess-ghi789", tl.Title)
		assert.Contains(t, tl.Search, "session=sess-ghi789", "the open session is in the address (alert links)")

		run(t, "close", chromedp.Click(chromedp.CSS(`#details-close`)))
		waitFor(t, "closed", `!document.getElementById('details').open && !location.search.includes('session=')`)
	})

	t.Run("an alert link opens the session", func(t *testing.T) {
		run(t, "open the link", chromedp.Navigate(s.http.URL+"/?range=24h&session=sess-abc123"))
		waitFor(t, "the timeline", `document.getElementById('details').open && document.querySelectorAll('#timeline li').length === 8`)
		d, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('diagnosis').textContent`))
		require.NoError(t, err)
		assert.Contains(t, d, "Completed")
		run(t, "close", chromedp.Click(chromedp.CSS(`#details-close`)))
	})

	t.Run("Load more follows nextCursor, and polls keep what was loaded", func(t *testing.T) {
		var objs []any
		start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
		for i := range 52 {
			x := execution{agent: "bulk-agent", name: fmt.Sprintf("bulk-%02d", i), session: fmt.Sprintf("sess-bulk-%02d", i), start: start.Add(time.Duration(i) * time.Second)}
			objs = append(objs, statusChange(x, "RUNNING", time.Time{}, "", ""))
		}
		s.post(objs...)
		run(t, "open the agent's history", chromedp.Navigate(s.http.URL+"/?range=24h&agent=bulk-agent"))
		waitFor(t, "the first page", `document.querySelectorAll('#rows tr').length === 50 && !document.getElementById('load-more').hidden`)
		// A poll may re-render the table between the click and its answer on a loaded
		// machine; clicking again is what a person would do, and is harmless.
		second := `document.querySelectorAll('#rows tr').length === 52 && document.getElementById('load-more').hidden`
		for attempt := 0; ; attempt++ {
			run(t, "load more", chromedp.Click(chromedp.CSS(`#load-more`)))
			_, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
				_, err := chromedp.Poll[bool](second, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(4*time.Second))(ctx, tg)
				return chromedp.Void{}, err
			})
			if err == nil || attempt == 3 {
				require.NoError(t, err, "the second page")
				break
			}
		}
		eval(t, `window.__polledAfter = Date.now()`)
		waitFor(t, "a few polls later", `Date.now() - window.__polledAfter > 800`)
		rs := rows(t)
		require.Len(t, rs, 52)
		assert.Equal(t, "bulk-51", rs[0].Name)
		assert.Equal(t, "bulk-00", rs[51].Name)
		sel, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('agent-filter').value`))
		require.NoError(t, err)
		assert.Equal(t, "bulk-agent", sel)
	})

	t.Run("the alerts panel lists open alerts and acknowledges them", func(t *testing.T) {
		require.NoError(t, s.alerts.InsertAlert(t.Context(), app.Alert{
			SessionID: "sess-jkl012", Kind: stuck.KindStuck, AgentName: "other-agent", RaisedAt: time.Now().UTC(),
			Diagnosis: domain.Diagnosis{Outcome: domain.OutcomeInProgress, Summary: "in progress: waiting on the Lambda invoker"},
		}))
		waitFor(t, "the alert", `document.querySelectorAll('#alerts-list li').length === 1 && document.getElementById('alerts-count').textContent === '1'`)
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('alerts-list').textContent`))
		require.NoError(t, err)
		assert.Contains(t, text, "Stuck session")
		assert.Contains(t, text, "sess-jkl012")
		assert.Contains(t, text, "waiting on the Lambda invoker")
		screenshot(t, "alerts")
		run(t, "acknowledge", chromedp.Click(chromedp.CSS(`#alerts-list li button.chip`)))
		waitFor(t, "acknowledged", `document.getElementById('alerts-list').textContent.includes('Acknowledged by history page')`)
	})

	assert.Empty(t, errs(), "console errors")
	assert.NotContains(t, s.logs.String(), "level=ERROR", "server errors")
}
