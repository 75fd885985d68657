package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
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

// lambdaError is a Lambda error payload as an agent records it: JSON whose stack trace
// holds newlines, escaped (\n) in the text.
const lambdaError = `{"errorMessage": "An error occurred (ThrottlingException) when calling the Converse operation: Rate exceeded", ` +
	`"errorType": "ClientError", "requestId": "8f1c2a0e-5b7d-4c1e-9a51-1e0c6f2b7d93", "stackTrace": [` +
	`"  File \"/var/task/agent.py\", line 88, in run\n    resp = bedrock.converse(**req)\n", ` +
	`"  File \"/var/runtime/botocore/client.py\", line 1023, in _make_api_call\n    raise error_class(parsed_response, operation_name)\n"]}`

const throttledCore = "An error occurred (ThrottlingException) when calling the Converse operation: Rate exceeded"

// statusChangeAt is statusChange of attempt redrive (0 for the first run), which the
// redrive restarted at redriveAt.
func statusChangeAt(x execution, status string, stop time.Time, redrive int, redriveAt time.Time, errCode, cause string) map[string]any {
	m := statusChange(x, status, stop, errCode, cause)
	d := m["detail"].(map[string]any)
	d["redriveCount"] = redrive
	if redrive > 0 {
		d["redriveDate"] = redriveAt.UnixMilli()
		m["id"] = fmt.Sprintf("%s-R%d", m["id"], redrive)
	}
	return m
}

// fleet is the History page's test data: one execution of each case the page must
// tell apart, a page of bulk executions, a few agents' statistics over two days, and
// enough alerts for two pages.
type fleet struct {
	ok, mismatch, missing, stuck, redriven, invocation, failedTask, running execution
}

func seedFleet(t *testing.T, s *stack) fleet {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	base := now.Add(-40 * time.Minute)
	f := fleet{
		ok:         execution{agent: "report-writer", name: "ok-7f3a", session: "sess-ok-7f3a", start: base},
		mismatch:   execution{agent: "report-writer", name: "s3-b81c", session: "sess-s3-b81c", start: base.Add(2 * time.Minute)},
		missing:    execution{agent: "invoice-extractor", name: "s4-c92d", session: "sess-s4-c92d", start: base.Add(4 * time.Minute)},
		stuck:      execution{agent: "invoice-extractor", name: "stuck-d0e1", session: "sess-stuck-d0e1", start: now.Add(-16 * time.Minute)},
		redriven:   execution{agent: "code-reviewer", name: "redrive-e5f6", session: "sess-redrive-e5f6", start: base.Add(8 * time.Minute)},
		invocation: execution{agent: "code-reviewer", name: "s1-f7a8", session: "sess-s1-f7a8", start: base.Add(10 * time.Minute)},
		failedTask: execution{agent: "report-writer", name: "s3f-a9b0", session: "sess-s3f-a9b0", start: base.Add(12 * time.Minute)},
		running:    execution{agent: "report-writer", name: "run-b1c2", session: "sess-run-b1c2", start: now.Add(-20 * time.Second)},
	}
	// Completed, and Step Functions agrees.
	s.post(statusChange(f.ok, "RUNNING", time.Time{}, "", ""), statusChange(f.ok, "SUCCEEDED", f.ok.start.Add(42*time.Second), "", ""))
	s.post(lifecycle(f.ok.session, f.ok.start, 0, 36*time.Second, "")...)
	// Scenario 3, which Step Functions calls SUCCEEDED.
	s.post(statusChange(f.mismatch, "RUNNING", time.Time{}, "", ""), statusChange(f.mismatch, "SUCCEEDED", f.mismatch.start.Add(95*time.Second), "", ""))
	s.post(lifecycle(f.mismatch.session, f.mismatch.start, 3, 80*time.Second, lambdaError)...)
	// Scenario 4: no completion event, and Step Functions SUCCEEDED.
	s.post(statusChange(f.missing, "RUNNING", time.Time{}, "", ""), statusChange(f.missing, "SUCCEEDED", f.missing.start.Add(3*time.Minute), "", ""))
	s.post(lifecycle(f.missing.session, f.missing.start, 4, 0, "")...)
	// Stuck: the background task started 15 minutes ago and has said nothing since.
	s.post(statusChange(f.stuck, "RUNNING", time.Time{}, "", ""))
	s.post(lifecycle(f.stuck.session, f.stuck.start, 4, 0, "")...)
	// Redriven: the first attempt failed at the invocation after 5s; the redrive, two
	// minutes later, completed in 12s.
	redriveAt := f.redriven.start.Add(2 * time.Minute)
	s.post(statusChangeAt(f.redriven, "RUNNING", time.Time{}, 0, time.Time{}, "", ""),
		statusChangeAt(f.redriven, "FAILED", f.redriven.start.Add(5*time.Second), 0, time.Time{}, "States.TaskFailed", "AgentCore timed out"),
		statusChangeAt(f.redriven, "RUNNING", time.Time{}, 1, redriveAt, "", ""),
		statusChangeAt(f.redriven, "SUCCEEDED", redriveAt.Add(12*time.Second), 1, redriveAt, "", ""))
	s.post(lifecycle(f.redriven.session, f.redriven.start, 1, 0, "Failed to invoke AgentCore: Timeout")...)
	s.post(lifecycle(f.redriven.session, redriveAt.Add(time.Second), 0, 2*time.Second, "")...)
	// Scenario 1, and Step Functions FAILED too.
	s.post(statusChange(f.invocation, "RUNNING", time.Time{}, "", ""),
		statusChange(f.invocation, "FAILED", f.invocation.start.Add(4*time.Second), "States.TaskFailed", "Failed to invoke AgentCore: Timeout"))
	s.post(lifecycle(f.invocation.session, f.invocation.start, 1, 0, "Failed to invoke AgentCore: Timeout")...)
	// Scenario 3 where Step Functions failed with the same Lambda error as its cause.
	s.post(statusChange(f.failedTask, "RUNNING", time.Time{}, "", ""),
		statusChange(f.failedTask, "FAILED", f.failedTask.start.Add(70*time.Second), "States.TaskFailed", lambdaError))
	s.post(lifecycle(f.failedTask.session, f.failedTask.start, 3, 60*time.Second, lambdaError)...)
	// Running normally.
	s.post(statusChange(f.running, "RUNNING", time.Time{}, "", ""))
	s.post(lifecycle(f.running.session, f.running.start, 4, 0, "")[:3]...)

	// Statistics over two days: report-writer sessions every few hours.
	var objs []any
	for i := range 14 {
		x := execution{agent: "report-writer", name: fmt.Sprintf("hist-%02d", i), session: fmt.Sprintf("sess-hist-%02d", i),
			start: now.Add(-time.Duration(3+i*3) * time.Hour)}
		scenario := []int{0, 0, 0, 3, 0, 1, 0, 4, 0, 0, 2, 0, 0, 3}[i]
		objs = append(objs, statusChange(x, "RUNNING", time.Time{}, "", ""))
		objs = append(objs, lifecycle(x.session, x.start, scenario, time.Duration(20+i*7)*time.Second, []string{"", lambdaError, "ValueError: Invalid request format"}[i%3])...)
		objs = append(objs, statusChange(x, "SUCCEEDED", x.start.Add(time.Duration(30+i*8)*time.Second), "", ""))
	}
	s.post(objs...)

	// Alerts: the stuck session's, and 30 older ones for other sessions.
	require.NoError(t, s.alerts.InsertAlert(t.Context(), app.Alert{
		SessionID: f.stuck.session, Kind: stuck.KindStuck, AgentName: f.stuck.agent, Stage: domain.StageBackgroundTask,
		LastStatus: domain.StatusBackgroundTaskStarted, LastEventAt: f.stuck.start.Add(4 * time.Second), OverdueBy: "5m0s",
		RaisedAt: now.Add(-time.Minute), ExecutionArn: executionArn(f.stuck.agent, f.stuck.name),
		Diagnosis: domain.Diagnosis{Outcome: domain.OutcomeInProgress, Stage: domain.StageBackgroundTask,
			Component: domain.ComponentBackgroundTask, Summary: "in progress: waiting on the Agent background task (last: AGENT_BACKGROUND_TASK_STARTED)"},
	}))
	require.NoError(t, s.alerts.InsertAlert(t.Context(), app.Alert{
		SessionID: f.missing.session, Kind: stuck.KindMissingCompletion, AgentName: f.missing.agent, RaisedAt: now.Add(-2 * time.Minute),
		Diagnosis: domain.Diagnosis{Outcome: domain.OutcomeMissingCompletion, Scenario: 4,
			Summary: "scenario 4: execution SUCCEEDED but no completion event (last: AGENT_BACKGROUND_TASK_STARTED)"},
	}))
	// An alert raised while the completed session looked as if it would never start; a
	// later event resolved it.
	require.NoError(t, s.alerts.InsertAlert(t.Context(), app.Alert{
		SessionID: f.ok.session, Kind: stuck.KindNeverStarted, AgentName: f.ok.agent, RaisedAt: f.ok.start.Add(time.Second),
		Diagnosis: domain.Diagnosis{Outcome: domain.OutcomeNeverStarted, Summary: "never started: initiated, nothing after; execution RUNNING"},
	}))
	require.NoError(t, s.alerts.Resolve(t.Context(), f.ok.session, []stuck.Kind{stuck.KindNeverStarted}, f.ok.start.Add(2*time.Second)))
	for i := range 30 {
		require.NoError(t, s.alerts.InsertAlert(t.Context(), app.Alert{
			SessionID: fmt.Sprintf("sess-old-%02d", i), Kind: stuck.KindStuck, AgentName: "invoice-extractor",
			RaisedAt:  now.Add(-time.Duration(10+i) * time.Minute),
			Diagnosis: domain.Diagnosis{Outcome: domain.OutcomeInProgress, Summary: "in progress: waiting on the Lambda invoker (last: SESSION_INITIATED)"},
		}))
	}
	return f
}

// rowInfo is one row of the History table as the browser shows it.
type rowInfo struct {
	Arn      string `json:"arn"`
	Outcome  string `json:"outcome"`
	Tone     string `json:"tone"`
	Badge    string `json:"badge"`
	Notes    string `json:"notes"`
	Status   string `json:"status"`
	Name     string `json:"name"`
	Agent    string `json:"agent"`
	Duration string `json:"duration"`
	Action   string `json:"action"`
}

const rowsJS = `[...document.querySelectorAll('#rows tr')].map(tr => ({
	arn: tr.dataset.arn,
	outcome: tr.dataset.outcome,
	tone: [...tr.classList].find(c => c.startsWith('t-row-')),
	badge: tr.querySelector('.outcome .badge').textContent.trim(),
	notes: [...tr.querySelectorAll('.outcome .chip-note')].map(n => n.className + ':' + n.textContent).join(' | '),
	status: tr.querySelector('.status').textContent.trim(),
	name: tr.querySelector('.name .exec-name').textContent.trim(),
	agent: tr.querySelector('.agent').textContent.trim(),
	duration: tr.querySelector('.duration').textContent.trim(),
	action: tr.querySelector('.action').textContent.trim(),
}))`

func rowsByName(t *testing.T, p *tab) map[string]rowInfo {
	t.Helper()
	m := map[string]rowInfo{}
	for _, r := range value[[]rowInfo](t, p, rowsJS) {
		m[r.Name] = r
	}
	return m
}

// setSelect changes a select as a person would.
func setSelect(t *testing.T, p *tab, id, v string) {
	t.Helper()
	p.eval(t, fmt.Sprintf(`(() => { const s = document.getElementById(%q); s.value = %q; s.dispatchEvent(new Event('change', {bubbles: true})); })()`, id, v))
}

// The History page in headless Chromium: the agent's outcome first, search, true
// counts, the session view (timeline, errors once, redrive attempts, seed 002's
// queries), the agent page, alert paging and acknowledgement, the phone layout, dark
// mode, the keyboard, and live updates over server-sent events. Screenshots of each
// view at 1400 and 390 px go to the folder the test prints.
func TestHistoryPageInBrowser(t *testing.T) {
	// Polling alone would take a minute: what appears sooner came over the live stream.
	s := newStack(t, stackOptions{config: httpapi.Config{PollInterval: time.Minute,
		LogLinks: []httpapi.LogLink{{Label: "Lambda logs", URL: "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:logs-insights?session={sessionId}"}}}})
	f := seedFleet(t, s)
	p := newTab(t, s.http.URL)
	errs := consoleErrors(p.ctx)
	p.viewport(t, 1400, 900)
	p.open(t, "/?range=7d")
	p.waitFor(t, "the rows, every outcome known", `document.querySelectorAll('#rows tr').length === 22 &&
		![...document.querySelectorAll('#rows tr')].some(tr => !tr.dataset.outcome)`)
	p.waitFor(t, "live", `document.getElementById('live').dataset.transport === 'sse'`)
	// Outcomes come with the items; what only the sessions say (a redrive's attempts, how
	// long an open session has been silent) comes once they are read.
	p.waitFor(t, "the sessions read", `document.querySelector('#rows .attempt-duration') !== null &&
		document.querySelector('#rows .silent') !== null`)

	t.Run("the agent's outcome comes first and a failed agent is red", func(t *testing.T) {
		m := rowsByName(t, p)
		for _, tt := range []struct {
			x                     execution
			outcome, tone, status string
			badge, note, duration string
			noteAbsent, durAbsent bool
		}{
			{x: f.ok, outcome: "completed", tone: "t-row-ok", badge: "✓Completed", status: "✓SUCCEEDED", duration: "42s", noteAbsent: true},
			{x: f.mismatch, outcome: "background_task_failed", tone: "t-row-fail", badge: "✗Background task failed", status: "✓SUCCEEDED",
				note: "disagree:≠ Step Functions SUCCEEDED", duration: "1m 35s"},
			{x: f.missing, outcome: "missing_completion", tone: "t-row-fail", badge: "✗Missing completion", status: "✓SUCCEEDED",
				note: "disagree:≠ Step Functions SUCCEEDED", duration: "3m 00s"},
			{x: f.invocation, outcome: "invocation_failed", tone: "t-row-fail", badge: "✗Invocation failed", status: "✗FAILED", duration: "4s", noteAbsent: true},
			{x: f.stuck, outcome: "in_progress", tone: "t-row-run", badge: "⚡In progress", status: "⚡RUNNING",
				note: "silent is-stuck:silent for 1", duration: "-"},
			{x: f.running, outcome: "in_progress", tone: "t-row-run", badge: "⚡In progress", status: "⚡RUNNING", duration: "-", noteAbsent: true},
		} {
			t.Run(tt.x.name, func(t *testing.T) {
				r := m[tt.x.name]
				assert.Equal(t, tt.outcome, r.Outcome)
				assert.Equal(t, tt.tone, r.Tone)
				assert.Equal(t, tt.badge, r.Badge)
				assert.Equal(t, tt.status, r.Status)
				assert.Equal(t, tt.duration, r.Duration)
				assert.Equal(t, "View details", r.Action)
				if tt.noteAbsent {
					assert.Empty(t, r.Notes)
				} else {
					assert.Contains(t, r.Notes, tt.note)
				}
			})
		}
		red := value[string](t, p, `getComputedStyle(document.querySelector('#rows tr[data-outcome="background_task_failed"] .outcome .badge')).color`)
		green := value[string](t, p, `getComputedStyle(document.querySelector('#rows tr[data-outcome="completed"] .outcome .badge')).color`)
		assert.NotEqual(t, red, green)
		assert.Equal(t, value[string](t, p, `getComputedStyle(document.querySelector('#rows tr[data-status="FAILED"] .status .badge')).color`), red,
			"a failed agent in a SUCCEEDED execution is as red as a FAILED execution")
	})

	t.Run("the redriven execution is labelled, with its last attempt's duration", func(t *testing.T) {
		r := rowsByName(t, p)[f.redriven.name]
		assert.Equal(t, "completed", r.Outcome)
		assert.Contains(t, r.Status, "↻ redrive 1")
		assert.Contains(t, r.Duration, "12s")
		assert.Contains(t, r.Duration, "attempt 2")
	})

	t.Run("true counts from the store", func(t *testing.T) {
		q := url.Values{"from": {time.Now().Add(-7 * 24 * time.Hour).UTC().Format(time.RFC3339)}}
		a := s.get("/v1/executions/counts?" + q.Encode())
		if a.status == http.StatusNotFound {
			// A server without the counts endpoint: the page says what it loaded, and
			// claims no total.
			text := value[string](t, p, `document.getElementById('summary').textContent`)
			assert.Contains(t, text, "22 executions loaded")
			assert.False(t, value[bool](t, p, `!!document.getElementById('total-count')`))
			return
		}
		require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
		var c struct {
			Total     int64            `json:"total"`
			ByOutcome map[string]int64 `json:"byOutcome"`
		}
		a.decode(t, &c)
		p.waitFor(t, "the total", fmt.Sprintf(`document.getElementById('total-count')?.dataset.n === '%d'`, c.Total))
		chips := value[map[string]string](t, p, `Object.fromEntries([...document.querySelectorAll('#summary .count-chip')].map(b => [b.dataset.outcome, b.dataset.n]))`)
		for o, n := range c.ByOutcome {
			if n > 0 {
				assert.Equal(t, fmt.Sprint(n), chips[o], o)
			}
		}
	})
	p.screenshot(t, "history-1400")

	t.Run("search finds an execution by name, session id or ARN", func(t *testing.T) {
		for _, term := range []string{f.mismatch.name, f.mismatch.session, executionArn(f.mismatch.agent, f.mismatch.name)} {
			t.Run(term, func(t *testing.T) {
				p.eval(t, fmt.Sprintf(`(() => { const s = document.getElementById('search'); s.value = %q; s.dispatchEvent(new Event('search')); })()`, term))
				p.waitFor(t, "only the match", fmt.Sprintf(`(() => { const r = document.querySelectorAll('#rows tr');
					return r.length === 1 && r[0].querySelector('.exec-name').textContent === %q; })()`, f.mismatch.name))
				assert.Contains(t, value[string](t, p, `location.search`), "q=")
			})
		}
		p.eval(t, `(() => { const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('search')); })()`)
		p.waitFor(t, "every row again", `document.querySelectorAll('#rows tr').length === 22`)
	})

	t.Run("filter by outcome", func(t *testing.T) {
		setSelect(t, p, "outcome-filter", "failed")
		p.waitFor(t, "only agent failures", `(() => { const r = [...document.querySelectorAll('#rows tr')];
			return r.length > 0 && r.every(tr => ['invocation_failed','entrypoint_failed','background_task_failed','missing_completion','never_started'].includes(tr.dataset.outcome)); })()`)
		names := value[[]string](t, p, `[...document.querySelectorAll('#rows .exec-name')].map(n => n.textContent)`)
		assert.Contains(t, names, f.mismatch.name, "a scenario-3 failure that Step Functions calls SUCCEEDED is a failure")
		assert.Contains(t, names, f.missing.name)
		assert.NotContains(t, names, f.ok.name)
		setSelect(t, p, "outcome-filter", "")
		p.waitFor(t, "every row again", `document.querySelectorAll('#rows tr').length === 22`)
	})

	t.Run("a scenario-3 session: outcome, the error once and pretty, the timeline", func(t *testing.T) {
		p.run(t, "View details", chromedp.Click(chromedp.CSS(`tr[data-arn="`+executionArn(f.mismatch.agent, f.mismatch.name)+`"] button.view`)))
		p.waitFor(t, "the session", `document.getElementById('details').open && !!document.getElementById('timeline-chart') &&
			document.querySelectorAll('#events-table tbody tr').length === 8`)
		type view struct {
			Diagnosis string   `json:"diagnosis"`
			Errors    int      `json:"errors"`
			ErrorText []string `json:"errorText"`
			Trace     string   `json:"trace"`
			Pres      int      `json:"pres"`
			FailLanes []string `json:"failLanes"`
			FailMsgs  []string `json:"failMsgs"`
			Links     []string `json:"links"`
			Now       bool     `json:"now"`
		}
		v := value[view](t, p, `({
			diagnosis: document.getElementById('diagnosis').textContent,
			errors: document.querySelectorAll('#errors li').length,
			errorText: [...document.querySelectorAll('#errors .err-head')].map(e => e.textContent),
			trace: document.querySelector('#errors .err-trace')?.textContent || '',
			pres: document.querySelectorAll('#details .error-text').length,
			failLanes: [...document.querySelectorAll('#timeline-chart .tl-bar.is-fail')].map(b => b.dataset.lane),
			failMsgs: [...document.querySelectorAll('#timeline-chart .tl-fail-msg')].map(m => m.textContent),
			links: [...document.querySelectorAll('#details-links a')].map(a => a.href),
			now: !!document.querySelector('#timeline-chart .tl-now'),
		})`)
		assert.Contains(t, v.Diagnosis, "Background task failed")
		assert.Contains(t, v.Diagnosis, "Scenario 3 · Background task failure")
		assert.Contains(t, v.Diagnosis, "Step Functions and the journal disagree")
		assert.NotContains(t, v.Diagnosis, "ThrottlingException", "the error is shown once, under Errors")
		assert.Equal(t, 1, v.Errors)
		assert.Equal(t, 1, v.Pres, "one error block in the whole view")
		assert.Equal(t, []string{"ClientError: " + throttledCore}, v.ErrorText)
		assert.Contains(t, v.Trace, "line 88, in run\n    resp = bedrock.converse(**req)\n", "the stack trace's \\n are line breaks")
		assert.NotContains(t, v.Trace, `\n`)
		assert.Equal(t, []string{"background_task"}, v.FailLanes)
		assert.Equal(t, []string{"✗ " + throttledCore}, v.FailMsgs)
		assert.False(t, v.Now, "a finished session has no now-marker")
		arn := executionArn(f.mismatch.agent, f.mismatch.name)
		assert.Equal(t, []string{
			"https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/" + arn,
			"https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:logs-insights?session=" + f.mismatch.session,
		}, v.Links)
		p.screenshot(t, "session-scenario3-1400")
	})

	t.Run("seed 002's queries on the events table", func(t *testing.T) {
		statuses := func() []string {
			return value[[]string](t, p, `[...document.querySelectorAll('#events-table tbody tr')].map(tr => tr.dataset.status)`)
		}
		query := func(t *testing.T, js, want string) {
			t.Helper()
			p.eval(t, `(() => { const f = document.getElementById('events-form'); `+js+` f.dispatchEvent(new Event('change')); })()`)
			p.waitFor(t, want, `(() => { const r = [...document.querySelectorAll('#events-table tbody tr')].map(tr => tr.dataset.status).join(','); return r === `+want+`; })()`)
		}
		all := statuses()
		require.Len(t, all, 8)
		assert.Equal(t, "SESSION_INITIATED", all[0], "oldest first")
		query(t, `f.elements.order.value = 'desc';`, `'EXECUTION_SUCCEEDED,AGENT_BACKGROUND_TASK_FAILED,AGENT_BACKGROUND_TASK_STARTED,AGENT_ENTRYPOINT_STARTED,AGENT_RUNTIME_INVOCATION_SUCCEEDED,AGENT_RUNTIME_INVOCATION_STARTED,EXECUTION_RUNNING,SESSION_INITIATED'`)
		query(t, `f.elements.order.value = 'asc'; f.elements.failures.checked = true;`, `'AGENT_BACKGROUND_TASK_FAILED'`)
		query(t, `f.elements.failures.checked = false; f.elements.status.value = 'AGENT_ENTRYPOINT_STARTED';`, `'AGENT_ENTRYPOINT_STARTED'`)
		query(t, `f.elements.status.value = ''; f.elements.latest.value = '2';`, `'EXECUTION_SUCCEEDED,AGENT_BACKGROUND_TASK_FAILED'`)
		since := f.mismatch.start.Add(3500 * time.Millisecond).Local().Format("2006-01-02T15:04:05")
		query(t, `f.elements.latest.value = ''; f.elements.after.value = '`+since+`';`, `'AGENT_BACKGROUND_TASK_STARTED,AGENT_BACKGROUND_TASK_FAILED,EXECUTION_SUCCEEDED'`)
		ref := value[string](t, p, `document.querySelector('#events-table tr[data-status="AGENT_BACKGROUND_TASK_FAILED"] .err-ref')?.textContent || ''`)
		assert.Equal(t, "error 1", ref, "the events table points at the error instead of repeating it")
		p.run(t, "close", chromedp.Click(chromedp.CSS(`#details-close`)))
		p.waitFor(t, "closed", `!document.getElementById('details').open && !location.search.includes('session=')`)
	})

	t.Run("the error of a scenario-3 session that Step Functions also failed is shown once", func(t *testing.T) {
		p.open(t, "/?range=7d&session="+f.failedTask.session)
		p.waitFor(t, "the session", `document.getElementById('details').open && !!document.getElementById('errors')`)
		assert.Equal(t, 1, value[int](t, p, `document.querySelectorAll('#errors li').length`))
		assert.Contains(t, value[string](t, p, `document.querySelector('#errors .err-where').textContent`), "Step Functions FAILED",
			"the one error says where it was seen: the agent's event and the execution's cause")
	})

	t.Run("an alert raised earlier does not contradict the session as it is now", func(t *testing.T) {
		p.open(t, "/?range=7d&session="+f.ok.session)
		p.waitFor(t, "the session's alerts", `document.getElementById('details').open && !!document.querySelector('.alert-list.compact li')`)
		li := value[string](t, p, `document.querySelector('.alert-list.compact li').textContent`)
		assert.Contains(t, li, "Never started")
		assert.Contains(t, li, "Resolved")
		assert.Contains(t, li, "When raised: never started")
		assert.Contains(t, li, "The session has moved on: it is now completed.")
	})

	t.Run("a stuck session says how long it has been silent, with a now-marker", func(t *testing.T) {
		p.open(t, "/?range=7d&session="+f.stuck.session)
		p.waitFor(t, "the session", `document.getElementById('details').open && !!document.querySelector('#timeline-chart .tl-now')`)
		d := value[string](t, p, `document.getElementById('diagnosis').textContent`)
		assert.Contains(t, d, "In progress")
		assert.Regexp(t, `Silent for1[56]m`, d)
		assert.True(t, value[bool](t, p, `!!document.querySelector('#timeline-chart .tl-bar.is-open[data-lane="background_task"]')`))
		assert.Contains(t, value[string](t, p, `document.querySelector('.alert-list.compact').textContent`), "Stuck session")
		p.screenshot(t, "session-stuck-1400")
	})

	t.Run("a redriven execution: each attempt with its own duration", func(t *testing.T) {
		p.open(t, "/?range=7d&session="+f.redriven.session)
		p.waitFor(t, "the attempts", `document.querySelectorAll('#session-executions .attempt').length === 2`)
		type attempt struct {
			Label    string `json:"label"`
			Status   string `json:"status"`
			Duration string `json:"duration"`
		}
		as := value[[]attempt](t, p, `[...document.querySelectorAll('#session-executions .attempt')].map(a => ({
			label: a.querySelector('.attempt-label').textContent, status: a.querySelector('.badge').textContent,
			duration: a.querySelector('.attempt-duration').textContent }))`)
		assert.Equal(t, []attempt{{"Attempt 1", "✗FAILED", "5s"}, {"Attempt 2 · redrive 1", "✓SUCCEEDED", "12s"}}, as)
		sfn := value[[]string](t, p, `[...document.querySelectorAll('#timeline-chart .tl-bar[data-lane="sfn"]')].map(b => b.textContent)`)
		assert.Equal(t, []string{"FAILED · 5s", "redrive 1 · SUCCEEDED · 12s"}, sfn)
		p.screenshot(t, "session-redrive-1400")
		p.run(t, "close", chromedp.Click(chromedp.CSS(`#details-close`)))
	})

	t.Run("the agent page: statistics over time, per hour and per day", func(t *testing.T) {
		p.open(t, "/?view=agent&agent=report-writer&granularity=day&range=7d")
		p.waitFor(t, "the charts", `!!document.querySelector('#chart-outcomes svg rect.bar') && !!document.querySelector('#chart-durations svg path.line')`)
		type charts struct {
			Buckets  string   `json:"buckets"`
			Keys     []string `json:"keys"`
			Failures []string `json:"failures"`
			Errors   []string `json:"errors"`
			Tiles    string   `json:"tiles"`
		}
		read := func() charts {
			return value[charts](t, p, `({
				buckets: document.querySelector('.agent-range').dataset.buckets,
				keys: [...new Set([...document.querySelectorAll('#chart-outcomes rect.bar:not(.empty)')].map(r => r.dataset.bucket))],
				failures: [...new Set([...document.querySelectorAll('#chart-failures rect.bar:not(.empty)')].map(r => r.dataset.series))].sort(),
				errors: [...document.querySelectorAll('#chart-errors .hbar-label')].map(l => l.textContent),
				tiles: document.querySelector('.tiles').textContent,
			})`)
		}
		day := read()
		assert.Equal(t, "8", day.Buckets, "7 days and today")
		require.NotEmpty(t, day.Keys)
		for _, k := range day.Keys {
			assert.True(t, strings.HasPrefix(k, "DAY#"), k)
		}
		assert.LessOrEqual(t, len(day.Keys), 3, "two days of sessions")
		assert.Equal(t, []string{"background_task", "entrypoint", "invocation", "missing_completion"}, day.Failures)
		assert.NotEmpty(t, day.Errors, "top errors")
		assert.Contains(t, day.Tiles, "sessions started")
		p.screenshot(t, "agent-day-1400")

		p.eval(t, `document.querySelector('#granularity input[value="hour"]').click()`)
		p.waitFor(t, "hourly buckets", `document.querySelector('.agent-range')?.dataset.granularity === 'hour' && !!document.querySelector('#chart-outcomes rect.bar')`)
		hour := read()
		assert.Greater(t, len(hour.Keys), len(day.Keys), "hours split what days add up")
		for _, k := range hour.Keys {
			assert.True(t, strings.HasPrefix(k, "HOUR#"), k)
		}
		assert.NotEqual(t, day.Buckets, hour.Buckets)
		assert.Contains(t, value[string](t, p, `location.search`), "granularity=hour")
		p.screenshot(t, "agent-1400")
	})

	t.Run("alerts: paged, filtered, acknowledged off the open list", func(t *testing.T) {
		p.open(t, "/?view=alerts")
		p.waitFor(t, "the first page", `document.querySelectorAll('#alerts-list li').length === 25`)
		assert.Equal(t, "32", value[string](t, p, `document.getElementById('alerts-total').dataset.n`))
		p.waitFor(t, "the badge's true count", `document.getElementById('alerts-count').textContent === '32'`)
		p.screenshot(t, "alerts-1400")
		p.run(t, "older", chromedp.Click(chromedp.CSS(`#alerts-next`)))
		p.waitFor(t, "the second page", `document.querySelectorAll('#alerts-list li').length === 7 && document.getElementById('alerts-next').disabled`)
		assert.Equal(t, "26–32 of 32", value[string](t, p, `document.getElementById('alerts-page').textContent`))
		p.run(t, "newer", chromedp.Click(chromedp.CSS(`#alerts-prev`)))
		p.waitFor(t, "the first page again", `document.querySelectorAll('#alerts-list li').length === 25`)

		setSelect(t, p, "alert-kind", "missing_completion")
		p.waitFor(t, "one missing completion", `document.querySelectorAll('#alerts-list li').length === 1`)
		assert.Contains(t, value[string](t, p, `location.search`), "kind=missing_completion")
		setSelect(t, p, "alert-kind", "")
		p.waitFor(t, "every kind", `document.querySelectorAll('#alerts-list li').length === 25`)

		first := value[string](t, p, `document.querySelector('#alerts-list li').dataset.session`)
		assert.Equal(t, f.stuck.session, first, "newest first")
		p.run(t, "acknowledge", chromedp.Click(chromedp.CSS(`#alerts-list li button.ack`)))
		p.waitFor(t, "off the open list and out of the badge", fmt.Sprintf(`document.getElementById('alerts-count').textContent === '31' &&
			document.getElementById('alerts-total').dataset.n === '31' && !document.querySelector('#alerts-list li[data-session=%q]')`, f.stuck.session))
		p.eval(t, `document.querySelector('#alert-state input[value="acknowledged"]').click()`)
		p.waitFor(t, "on the acknowledged list", fmt.Sprintf(`(() => { const l = document.querySelectorAll('#alerts-list li'); return l.length === 1 && l[0].dataset.session === %q && l[0].textContent.includes('Acknowledged by history page'); })()`, f.stuck.session))
	})

	t.Run("a new RUNNING execution arrives over the live stream", func(t *testing.T) {
		p.open(t, "/?range=7d")
		p.waitFor(t, "live, every outcome known", `document.getElementById('live').dataset.transport === 'sse' && document.querySelectorAll('#rows tr').length === 22 &&
			![...document.querySelectorAll('#rows tr')].some(tr => !tr.dataset.outcome)`)
		before := value[int](t, p, `AW.live.stats.executions`)
		fresh := execution{agent: "code-reviewer", name: "live-c3d4", session: "sess-live-c3d4", start: time.Now().UTC().Truncate(time.Millisecond)}
		p.eval(t, `window.__sameDocument = true`)
		posted := time.Now()
		s.post(statusChange(fresh, "RUNNING", time.Time{}, "", ""))
		p.waitFor(t, "the new row", `[...document.querySelectorAll('#rows .exec-name')].some(n => n.textContent === 'live-c3d4')`)
		t.Logf("a new RUNNING execution appeared %s after its POST answered (live interval %s, polling every minute)",
			time.Since(posted).Round(time.Millisecond), httpapi.DefaultLiveInterval)
		assert.Greater(t, value[int](t, p, `AW.live.stats.executions`), before, "it came with an executions event")
		assert.True(t, value[bool](t, p, `window.__sameDocument === true`), "without a reload")
		assert.Equal(t, "sse", value[string](t, p, `document.getElementById('live').dataset.transport`))
	})

	t.Run("the keyboard reaches every control and the session view", func(t *testing.T) {
		p.open(t, "/?range=7d")
		p.waitFor(t, "rows", `document.querySelectorAll('#rows tr').length === 23`)
		// Tab from the top of the page to the first "View details" button.
		p.eval(t, `document.activeElement?.blur(); window.scrollTo(0, 0);`)
		reached := false
		for range 60 {
			p.run(t, "tab", chromedp.KeyEvent("\t"))
			if value[bool](t, p, `document.activeElement?.classList.contains('view') === true`) {
				reached = true
				break
			}
		}
		require.True(t, reached, "Tab reaches View details")
		p.run(t, "enter", chromedp.KeyEvent("\r"))
		p.waitFor(t, "the session", `document.getElementById('details').open`)
		p.run(t, "escape", chromedp.KeyEvent("\x1b"))
		p.waitFor(t, "closed, focus back on the button", `!document.getElementById('details').open && document.activeElement?.classList.contains('view')`)
	})

	t.Run("dark mode", func(t *testing.T) {
		p.colorScheme(t, "dark")
		defer p.colorScheme(t, "")
		bg := value[string](t, p, `getComputedStyle(document.body).backgroundColor`)
		assert.Equal(t, "rgb(15, 18, 23)", bg)
		p.screenshot(t, "history-dark-1400")
	})

	t.Run("a phone at 390 px: nothing overflows, View details is reachable, the session scrolls", func(t *testing.T) {
		p.viewport(t, 390, 844)
		defer p.viewport(t, 1400, 900)
		noOverflow := func(t *testing.T, where string) {
			t.Helper()
			w := value[int](t, p, `document.documentElement.scrollWidth`)
			assert.LessOrEqual(t, w, 390, "%s: the page is %d px wide", where, w)
		}
		p.open(t, "/?range=7d")
		p.waitFor(t, "rows", `document.querySelectorAll('#rows tr').length === 23 && ![...document.querySelectorAll('#rows tr')].some(tr => !tr.dataset.outcome)`)
		noOverflow(t, "History")
		right := value[float64](t, p, `Math.max(...[...document.querySelectorAll('#rows button.view')].map(b => b.getBoundingClientRect().right))`)
		assert.LessOrEqual(t, right, 390.0, "every View details button is on screen")
		p.screenshot(t, "history-390")

		for _, tt := range []struct{ name, session string }{
			{"session-scenario3-390", f.mismatch.session},
			{"session-stuck-390", f.stuck.session},
			{"session-redrive-390", f.redriven.session},
		} {
			p.open(t, "/?range=7d&session="+tt.session)
			p.waitFor(t, "the session", `document.getElementById('details').open && !!document.getElementById('timeline-chart') && !!document.querySelector('#events-table tbody tr')`)
			noOverflow(t, tt.name)
			// The dialog fits the screen, and its body scrolls to its last section.
			fits := value[bool](t, p, `(() => { const r = document.getElementById('details').getBoundingClientRect(); return r.left >= 0 && r.right <= 390 && r.bottom <= 844; })()`)
			assert.True(t, fits, "the dialog fits the screen")
			p.eval(t, `(() => { const b = document.getElementById('details-body'); b.scrollTop = b.scrollHeight; })()`)
			reach := value[map[string]any](t, p, `(() => { const b = document.getElementById('details-body'); const last = b.lastElementChild.getBoundingClientRect();
				const wide = [...b.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > b.getBoundingClientRect().right + 1).slice(0, 5).map(e => e.tagName + '.' + e.className);
				return { reachable: last.bottom <= b.getBoundingClientRect().bottom + 1, scrollWidth: b.scrollWidth, clientWidth: b.clientWidth, wide }; })()`)
			assert.Equal(t, true, reach["reachable"], "%s: the last section is reachable", tt.name)
			assert.LessOrEqual(t, reach["scrollWidth"], reach["clientWidth"], "%s: nothing is cut off sideways: %v", tt.name, reach["wide"])
			p.eval(t, `document.getElementById('details-body').scrollTop = 0`)
			p.screenshot(t, tt.name)
		}
		p.open(t, "/?view=agent&agent=report-writer&granularity=hour&range=24h")
		p.waitFor(t, "the charts", `!!document.querySelector('#chart-outcomes svg rect.bar')`)
		noOverflow(t, "agent")
		p.screenshot(t, "agent-390")
		p.open(t, "/?view=alerts")
		p.waitFor(t, "alerts", `document.querySelectorAll('#alerts-list li').length > 0`)
		noOverflow(t, "alerts")
		p.screenshot(t, "alerts-390")
	})

	assert.Empty(t, unexpectedConsoleErrors(errs()), "console errors")
	assert.NotContains(t, s.logs.String(), "level=ERROR", "server errors")
}

// unexpectedConsoleErrors drops the browser's own log lines of answers the page asks
// for knowing they may be 404: the counts endpoint of a server without it, and the
// session a search term might name.
func unexpectedConsoleErrors(errs []string) []string {
	var out []string
	for _, e := range errs {
		if strings.Contains(e, "status of 404") && (strings.Contains(e, "/v1/executions/counts") || strings.Contains(e, "/v1/sessions/")) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// With no live stream the page polls: here the server refuses every stream (its limit
// is reached), and a new execution still appears, by polling.
func TestHistoryPagePollsWithoutLiveStream(t *testing.T) {
	s := newStack(t, stackOptions{config: httpapi.Config{PollInterval: 200 * time.Millisecond, MaxLiveClients: 1}})
	// Hold the one stream the server allows.
	hold := openStream(t, s.http.URL)
	hold.next(t, "hello", nil)
	p := newTab(t, s.http.URL)
	errs := consoleErrors(p.ctx)
	p.open(t, "/?range=24h")
	p.waitFor(t, "polling", `document.getElementById('live').dataset.state === 'polling' || document.getElementById('live').textContent.includes('polling')`)
	x := execution{agent: "my-agent", name: "polled-1", session: "sess-polled-1", start: time.Now().UTC().Truncate(time.Second)}
	s.post(statusChange(x, "RUNNING", time.Time{}, "", ""))
	p.waitFor(t, "the new row", `[...document.querySelectorAll('#rows .exec-name')].some(n => n.textContent === 'polled-1')`)
	assert.Zero(t, value[int](t, p, `AW.live.stats.hello`), "no stream was open")
	for _, e := range unexpectedConsoleErrors(errs()) {
		// The refused stream is the browser's own console error; nothing else may be.
		assert.Contains(t, e, "v1/live")
	}
}

// A custom range whose end is before its start says so in the page's words, and is
// not mistaken for a lost connection.
func TestHistoryPageBadRange(t *testing.T) {
	s := newStack(t, stackOptions{})
	p := newTab(t, s.http.URL)
	p.open(t, "/?range=custom&from=2024-11-05&to=2024-11-01")
	p.waitFor(t, "the error", `!document.getElementById('error').hidden`)
	assert.Equal(t, `"To" is before "From": pick a To date on or after the From date.`, value[string](t, p, `document.getElementById('error').textContent`))
	p.waitFor(t, "still live", `document.getElementById('live').dataset.state === 'live'`)
}
