package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// evilHost is the other site's name; Chromium resolves it to this machine.
const evilHost = "evil.example"

// attackBrowser starts headless Chromium with evil.example resolving to 127.0.0.1, so
// that a page of another site can be served by the test.
func attackBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	var output bytes.Buffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("host-resolver-rules", "MAP "+evilHost+" 127.0.0.1"),
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

// attackPage is the other site's page: an auto-submitted <form enctype="text/plain">
// whose name=value body is a journal item in JSON, the same item by
// fetch(..., {mode: "no-cors"}), and an alert acknowledgement both ways. It records
// in window.done what finished.
var attackPage = template.Must(template.New("attack").Parse(`<!doctype html>
<html><body>
<iframe name="sink-form"></iframe><iframe name="sink-ack"></iframe>
<form id="write" action="{{.Target}}/v1/events" method="POST" enctype="text/plain" target="sink-form">
<input name='{"PK":"SESSION#{{.Tag}}-form","SK":"EVENT#2024-11-04T10:30:00.000Z","Status":"SESSION_INITIATED","Timestamp":"2024-11-04T10:30:00.000Z","pad":"' value='"}'>
</form>
<form id="ack" action="{{.Target}}/v1/alerts/victim/stuck/ack" method="POST" enctype="text/plain" target="sink-ack">
<input name='{"by":"evil.example","pad":"' value='"}'>
</form>
<script>
window.done = {};
document.querySelector('iframe[name=sink-form]').addEventListener('load', () => { window.done.form = true; });
document.querySelector('iframe[name=sink-ack]').addEventListener('load', () => { window.done.formAck = true; });
document.getElementById('write').submit();
document.getElementById('ack').submit();
const item = {PK: 'SESSION#{{.Tag}}-fetch', SK: 'EVENT#2024-11-04T10:30:00.000Z', Status: 'SESSION_INITIATED', Timestamp: '2024-11-04T10:30:00.000Z'};
const finish = (k) => () => { window.done[k] = true; };
fetch('{{.Target}}/v1/events', {method: 'POST', mode: 'no-cors', credentials: 'include', body: JSON.stringify(item)}).then(finish('fetch'), finish('fetch'));
fetch('{{.Target}}/v1/events', {method: 'POST', mode: 'no-cors', credentials: 'include', body: new Blob([JSON.stringify({...item, PK: 'SESSION#{{.Tag}}-blob'})])}).then(finish('blob'), finish('blob'));
fetch('{{.Target}}/v1/alerts/victim/stuck/ack', {method: 'POST', mode: 'no-cors', credentials: 'include', body: JSON.stringify({by: 'evil.example'})}).then(finish('fetchAck'), finish('fetchAck'));
</script>
</body></html>`))

// attackServer serves the attack page against target.
func attackServer(t *testing.T, target string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = attackPage.Execute(w, map[string]string{"Target": target, "Tag": r.URL.Query().Get("tag")})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// chromeRun runs steps with a deadline.
func chromeRun(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(tctx, steps...), what)
}

// chromePoll waits until predicate holds in the page.
func chromePoll(t *testing.T, ctx context.Context, what, predicate string) {
	t.Helper()
	chromeRun(t, ctx, what, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		for {
			_, err := chromedp.Poll[bool](predicate, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))(ctx, tg)
			// A navigation replaces the page's JavaScript context under the poll: poll
			// again in the new one.
			if err != nil && (strings.Contains(err.Error(), "Cannot find context with specified id") || strings.Contains(err.Error(), "Inspected target navigated")) && ctx.Err() == nil {
				continue
			}
			if err != nil {
				state, _ := chromedp.Evaluate[string](`location.href + ' rows=' + document.querySelectorAll('#rows tr').length`)(ctx, tg)
				return chromedp.Void{}, fmt.Errorf("%w (page: %s)", err, state)
			}
			return chromedp.Void{}, nil
		}
	})
}

// runAttack opens the attack page from origin and waits until its five requests
// finished, then checks that none wrote or acknowledged anything.
func runAttack(t *testing.T, ctx context.Context, s *stack, origin, tag string, auth ...string) {
	t.Helper()
	before := refusedCrossOrigin(t, s, auth...)
	chromeRun(t, ctx, "open the other site's page", chromedp.Navigate(origin+"/?tag="+url.QueryEscape(tag)))
	chromePoll(t, ctx, "its requests finished",
		`window.done && window.done.form && window.done.formAck && window.done.fetch && window.done.blob && window.done.fetchAck`)
	for _, id := range []string{tag + "-form", tag + "-fetch", tag + "-blob"} {
		a := s.do(http.MethodGet, "/v1/sessions/"+id, "", nil, auth...)
		assert.Equal(t, http.StatusNotFound, a.status, "%s was written: %s", id, a.body)
	}
	alerts := s.do(http.MethodGet, "/v1/alerts?session=victim", "", nil, auth...)
	require.Equal(t, http.StatusOK, alerts.status, "body: %s", alerts.body)
	assert.NotContains(t, string(alerts.body), "evil.example", "the alert was acknowledged")
	assert.NotContains(t, string(alerts.body), "ackedAt", "the alert was acknowledged")
	// The requests reached the server and were refused there (not lost on the way).
	assert.GreaterOrEqual(t, refusedCrossOrigin(t, s, auth...)-before, 5, "cross-origin refusals")
}

// refusedCrossOrigin reads agentwatch_http_requests_refused_total{reason="cross_origin"}.
func refusedCrossOrigin(t *testing.T, s *stack, auth ...string) int {
	t.Helper()
	m := s.do(http.MethodGet, "/metrics", "", nil, auth...)
	require.Equal(t, http.StatusOK, m.status)
	for _, l := range strings.Split(string(m.body), "\n") {
		if v, ok := strings.CutPrefix(l, `agentwatch_http_requests_refused_total{reason="cross_origin"} `); ok {
			var n int
			_, err := fmt.Sscan(v, &n)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no cross_origin refusal counter in /metrics")
	return 0
}

// TestCrossSiteAttacksInBrowser: a page of another origin, opened in Chromium, wrote
// journal items with an auto-submitted <form enctype="text/plain"> and with
// fetch(..., {mode: "no-cors"}), and acknowledged an alert as "evil.example". Now
// nothing it sends is written or acknowledged: without a token, and with a token
// while the user's browser holds the History page's cookie.
func TestCrossSiteAttacksInBrowser(t *testing.T) {
	ctx := attackBrowser(t)

	t.Run("no token", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		require.NoError(t, s.alerts.InsertAlert(t.Context(), app.Alert{SessionID: "victim", Kind: stuck.KindStuck, AgentName: "a", RaisedAt: day}))
		evil := attackServer(t, s.http.URL)
		_, port, _ := strings.Cut(strings.TrimPrefix(evil.URL, "http://"), ":")
		t.Run("from another site", func(t *testing.T) {
			runAttack(t, ctx, s, "http://"+evilHost+":"+port, "cross-site")
		})
		t.Run("from another port of the same host", func(t *testing.T) {
			runAttack(t, ctx, s, evil.URL, "same-site")
		})
	})

	t.Run("with a token, the page logged in", func(t *testing.T) {
		s := newStack(t, stackOptions{config: httpapi.Config{AuthToken: testToken, PollInterval: 200 * time.Millisecond}})
		bearer := []string{"Authorization", "Bearer " + testToken}
		require.NoError(t, s.alerts.InsertAlert(t.Context(), app.Alert{SessionID: "victim", Kind: stuck.KindStuck, AgentName: "a", RaisedAt: day}))
		x := execution{agent: "my-agent", name: "logged-in", session: "sess-logged-in", start: time.Now().UTC().Add(-time.Minute).Truncate(time.Second)}
		_, err := s.ingester.IngestBody(t.Context(), "http", []byte(mustJSON([]any{statusChange(x, "RUNNING", time.Time{}, "", "")})))
		require.NoError(t, err)

		// The History page sends the browser to the token prompt, which comes back
		// to the page; the page's own requests then carry the cookie.
		chromeRun(t, ctx, "open the History page", chromedp.Navigate(s.http.URL+"/?range=24h"))
		chromePoll(t, ctx, "the token prompt", `location.pathname === '/login' && !!document.getElementById('token')`)
		chromeRun(t, ctx, "type a wrong token", chromedp.SendKeys(chromedp.CSS(`#token`), "this is not the token, clearly"),
			chromedp.Click(chromedp.CSS(`button[type=submit]`)))
		chromePoll(t, ctx, "the prompt says so", `!document.getElementById('error').hidden && document.getElementById('error').textContent.includes('wrong token')`)
		chromeRun(t, ctx, "type the token", chromedp.SetValue(chromedp.CSS(`#token`), testToken),
			chromedp.Click(chromedp.CSS(`button[type=submit]`)))
		chromePoll(t, ctx, "back on the History page with its executions",
			`location.pathname === '/' && location.search === '?range=24h' && document.querySelectorAll('#rows tr').length === 1`)
		cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
		require.NoError(t, err)
		assert.Empty(t, cookies, "the cookie is HttpOnly: scripts cannot read it")

		evil := attackServer(t, s.http.URL)
		_, port, _ := strings.Cut(strings.TrimPrefix(evil.URL, "http://"), ":")
		t.Run("from another site", func(t *testing.T) {
			runAttack(t, ctx, s, "http://"+evilHost+":"+port, "cross-site-authed", bearer...)
		})
		t.Run("from another port of the same host, which gets the cookie", func(t *testing.T) {
			runAttack(t, ctx, s, evil.URL, "same-site-authed", bearer...)
		})
	})
}
