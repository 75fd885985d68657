// The session view (seed 002): the outcome first, each distinct error once (Lambda
// error JSON pretty-printed), a proportional timeline of the stages with gaps, failures
// and a now-marker, the executions with their redrive attempts and links, the journal's
// events with seed 002's queries, and the session's alerts.
'use strict';

(() => {
  const { $, el } = AW;

  const S = (AW.session = {
    id: null,
    json: '',
    view: null,
    query: { order: 'asc', status: '', failures: false, latest: '', after: '' },
    eventsJSON: '',
    seq: 0,
    eventsSeq: 0,
  });

  // ---- Errors, each once ----------------------------------------------------------

  // collectErrors gathers the session's distinct errors and where each was seen: the
  // failure events' ErrorMessage, the executions' error and cause, the diagnosis.
  function collectErrors(v) {
    const list = [];
    const add = (text, source) => {
      if (!text) return;
      const core = AW.errorCore(text);
      if (!core) return;
      let e = list.find((x) => x.core === core || x.core.includes(core) || core.includes(x.core));
      if (!e) {
        e = { text, core, sources: [] };
        list.push(e);
      } else if (text.length > e.text.length) {
        e.text = text; // keep the fuller form (the JSON payload over its message)
      }
      if (source && !e.sources.includes(source)) e.sources.push(source);
    };
    for (const t of v.timeline || []) {
      if (t.errorMessage) add(t.errorMessage, `${t.status} at ${AW.fmtClock(t.timestamp)}`);
    }
    for (const x of v.executions || []) {
      const text = [x.error, x.cause].filter(Boolean).join(': ');
      add(text, `Step Functions ${x.status} (${x.executionName})`);
    }
    add(v.diagnosis?.errorMessage, null);
    return list.map((e, i) => ({ ...e, n: i + 1 }));
  }

  function errorRef(errors, text) {
    if (!text) return null;
    const core = AW.errorCore(text);
    const e = errors.find((x) => x.core === core || x.core.includes(core) || core.includes(x.core));
    if (!e) return null;
    return el('a', { class: 'err-ref', href: `#err-${e.n}`, title: e.core, onclick: (ev) => {
      ev.preventDefault();
      $(`err-${e.n}`)?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
      $(`err-${e.n}`)?.focus();
    }, text: `error ${e.n}` });
  }

  function renderErrors(errors) {
    if (!errors.length) return null;
    return el('section', { id: 'errors', class: 'errors', 'aria-labelledby': 'details-errors' },
      el('h3', { id: 'details-errors', text: errors.length === 1 ? 'Error' : `Errors · ${errors.length}` }),
      el('ol', { class: 'error-list' }, errors.map((e) => el('li', { id: `err-${e.n}`, tabindex: '-1' },
        el('div', { class: 'err-where muted' }, el('span', { class: 'err-n', text: `${e.n}` }),
          e.sources.length ? `seen in ${e.sources.join(' · ')}` : 'from the diagnosis'),
        AW.prettyError(e.text)))));
  }

  // ---- Outcome ---------------------------------------------------------------------

  function isOpenSession(v) {
    const d = v.diagnosis || {};
    return d.outcome === 'in_progress' || (v.executions || []).some((x) => x.status === 'RUNNING');
  }

  // summaryWithoutError drops the error from the one-sentence summary: the error is
  // shown once, in the Errors section.
  function summaryWithoutError(d) {
    let s = d.summary || '';
    if (d.errorMessage) s = s.replace(`: ${d.errorMessage}`, '');
    return s;
  }

  function renderDiagnosis(v) {
    const d = v.diagnosis || {};
    const rows = [];
    const row = (k, val) => {
      if (val) rows.push(el('dt', { text: k }), el('dd', {}, val));
    };
    row(d.outcome === 'in_progress' ? 'Waiting on' : 'Stage', d.stage ? `${AW.STAGES[d.stage] || d.stage}${d.component ? ` · ${d.component}` : ''}` : d.component);
    row('Step Functions', d.executionStatus ? AW.statusBadge(d.executionStatus) : '');
    if (isOpenSession(v) && v.lastEventAt) {
      row('Silent for', el('span', { class: 'silent-since', dataset: { since: v.lastEventAt }, text: AW.fmtSeconds(AW.secondsSince(v.lastEventAt)) }));
    }
    const tl = v.timeline || [];
    if (tl.length > 1) row('Journal span', AW.fmtSeconds(tl[tl.length - 1].sinceStartMs / 1000));
    const tone = AW.outcomeTone(d.outcome);
    let mismatch = null;
    if (d.journalMismatch) {
      mismatch = el('p', { class: 'disagree-banner', role: 'note' },
        el('strong', { text: 'Step Functions and the journal disagree: ' }),
        tone === 'fail'
          ? `Step Functions says ${d.executionStatus}, but the agent recorded a failure.`
          : `the agent completed, but Step Functions says ${d.executionStatus}.`);
    }
    return el('section', { id: 'diagnosis', class: `diagnosis t-box-${tone}`, 'aria-label': 'Outcome' },
      el('div', { class: 'diag-head' },
        AW.outcomeBadge(d.outcome),
        d.scenario ? el('span', { class: 'scenario', text: `Scenario ${d.scenario} · ${AW.SCENARIOS[d.scenario] || ''}` }) : null),
      mismatch,
      el('p', { class: 'summary-line', text: summaryWithoutError(d) }),
      rows.length ? el('dl', {}, rows) : null);
  }

  // ---- Proportional timeline -------------------------------------------------------

  const LANES = [
    { key: 'sfn', label: 'Step Functions' },
    { key: 'initiated', label: 'Initiated' },
    { key: 'invocation', label: 'Invocation' },
    { key: 'entrypoint', label: 'Entrypoint' },
    { key: 'background_task', label: 'Background task' },
  ];
  // STEPS: what each event does to the lanes: end one bar (ok or failed), start one.
  const STEPS = {
    SESSION_INITIATED: { start: 'initiated' },
    AGENT_RUNTIME_INVOCATION_STARTED: { end: 'initiated', start: 'invocation' },
    AGENT_RUNTIME_INVOCATION_SUCCEEDED: { end: 'invocation' },
    AGENT_RUNTIME_INVOCATION_FAILED: { end: 'invocation', fail: true },
    AGENT_ENTRYPOINT_STARTED: { start: 'entrypoint' },
    AGENT_BACKGROUND_TASK_STARTED: { end: 'entrypoint', start: 'background_task' },
    AGENT_ENTRYPOINT_FAILED: { end: 'entrypoint', fail: true },
    AGENT_BACKGROUND_TASK_COMPLETED: { end: 'background_task' },
    AGENT_BACKGROUND_TASK_FAILED: { end: 'background_task', fail: true },
  };

  // lanesOf turns the timeline into bars per lane. A bar left open ends now while the
  // session is open, else at the last event (and says it never finished).
  function lanesOf(v, open, t1) {
    const bars = Object.fromEntries(LANES.map((l) => [l.key, []]));
    const current = {};
    const ms = (iso) => new Date(iso).getTime();
    const close = (lane, at, how) => {
      const b = current[lane];
      if (b) {
        Object.assign(b, { end: at }, how);
        delete current[lane];
        return b;
      }
      // An end without its start (a lost event): a bar of no length, still visible.
      const z = { start: at, end: at, ...how };
      bars[lane].push(z);
      return z;
    };
    for (const e of v.timeline || []) {
      const at = ms(e.timestamp);
      if (e.status.startsWith('EXECUTION_')) {
        const m = /#R(\d+)#/.exec(e.sk || '');
        const n = m ? Number(m[1]) : 0;
        if (e.status === 'EXECUTION_RUNNING') {
          if (current.sfn) close('sfn', at, { status: 'superseded' });
          current.sfn = { start: at, attempt: n };
          bars.sfn.push(current.sfn);
        } else if (e.status !== 'EXECUTION_PENDING_REDRIVE') {
          const st = e.status.slice('EXECUTION_'.length);
          const b = close('sfn', at, { status: st, fail: st === 'FAILED' || st === 'TIMED_OUT' });
          if (b.attempt == null) b.attempt = n;
        }
        continue;
      }
      const step = STEPS[e.status];
      if (!step) continue;
      if (step.end) close(step.end, at, { fail: Boolean(step.fail), message: e.errorMessage || '', status: e.status });
      if (step.start) {
        if (current[step.start]) close(step.start, at, { status: 'retried' });
        current[step.start] = { start: at };
        bars[step.start].push(current[step.start]);
      }
    }
    const missing = v.diagnosis?.outcome === 'missing_completion';
    for (const lane of Object.keys(current)) {
      const b = current[lane];
      b.end = t1;
      if (open) b.open = true;
      else {
        b.unfinished = true;
        if (missing && lane !== 'sfn') {
          b.fail = true;
          b.message = 'no completion event';
        }
      }
    }
    return bars;
  }

  const STEP_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5,
    72e5, 216e5, 432e5, 864e5];

  function ticksOf(span) {
    const step = STEP_MS.find((s) => span / s <= 6) || STEP_MS[STEP_MS.length - 1];
    const out = [];
    for (let t = 0; t <= span + 1e-9; t += step) out.push(t);
    return out;
  }

  // fmtOffset renders a tick's offset from the first event: "+500ms", "+30s", "+1m",
  // "+1m 30s", "+2h".
  function fmtOffset(ms) {
    if (ms === 0) return '0';
    if (ms < 1000) return `+${Math.round(ms)}ms`;
    const units = [[86400e3, 'd'], [3600e3, 'h'], [60e3, 'm'], [1e3, 's']];
    const parts = [];
    let rest = Math.round(ms);
    for (const [size, name] of units) {
      if (rest >= size) {
        parts.push(`${Math.floor(rest / size)}${name}`);
        rest %= size;
      }
    }
    return `+${parts.slice(0, 2).join(' ')}`;
  }

  function renderTimelineChart(v) {
    const tl = v.timeline || [];
    if (!tl.length) return null;
    const open = isOpenSession(v);
    const t0 = new Date(tl[0].timestamp).getTime();
    const last = new Date(tl[tl.length - 1].timestamp).getTime();
    const now = Date.now();
    let t1 = open ? Math.max(now, last) : last;
    if (t1 <= t0) t1 = t0 + 1000;
    const span = t1 - t0;
    const pct = (t) => `${(((t - t0) / span) * 100).toFixed(3)}%`;
    const bars = lanesOf(v, open, t1);

    const lanes = LANES.filter((l) => bars[l.key].length).map((l) => {
      const items = bars[l.key];
      const track = el('div', { class: 'tl-track' });
      const notes = [];
      for (const b of items) {
        const dur = b.end - b.start;
        const startPct = ((b.start - t0) / span) * 100;
        const widthPct = (dur / span) * 100;
        const cls = ['tl-bar', b.fail ? 'is-fail' : '', b.open ? 'is-open' : '', b.unfinished ? 'is-unfinished' : '',
          startPct > 50 && widthPct < 35 ? 'text-left' : '',
          l.key === 'sfn' ? `sfn-${b.status || 'RUNNING'}` : ''].filter(Boolean).join(' ');
        let text = AW.fmtSeconds(dur / 1000);
        if (l.key === 'sfn') text = `${b.attempt ? `redrive ${b.attempt} · ` : ''}${b.status || 'RUNNING'} · ${text}`;
        else if (b.open) text = `${text}, running`;
        const title = `${l.label}: ${AW.fmtClock(new Date(b.start).toISOString())} → ${b.open ? 'now' : AW.fmtClock(new Date(b.end).toISOString())} (${AW.fmtSeconds(dur / 1000)})${b.message ? ` · ${b.message}` : ''}`;
        track.append(el('span', {
          class: cls, title, dataset: { lane: l.key, fail: b.fail ? 'true' : 'false' },
          style: { left: pct(b.start), width: `max(4px, ${((dur / span) * 100).toFixed(3)}%)` },
        }, el('span', { class: 'tl-bar-text', text })));
        if (b.fail && b.message) {
          notes.push(el('div', { class: 'tl-fail-msg', style: { paddingLeft: `min(${pct(b.start)}, 60%)` }, title: b.message, text: `✗ ${AW.errorCore(b.message)}` }));
        }
      }
      return el('div', { class: 'tl-lane', dataset: { lane: l.key } },
        el('span', { class: 'tl-label', text: l.label }),
        el('div', { class: 'tl-track-wrap' }, track, notes));
    });

    // Gaps: stretches where no agent stage was open, a tenth of the span or more.
    const overlay = el('div', { class: 'tl-overlay', 'aria-hidden': 'true' });
    const agentBars = LANES.slice(1).flatMap((l) => bars[l.key]).sort((a, b) => a.start - b.start);
    let covered = agentBars.length ? agentBars[0].start : t0;
    for (const b of agentBars) {
      if (b.start - covered >= span / 10) {
        overlay.append(el('span', { class: 'tl-gap', style: { left: pct(covered), width: pct(t0 + (b.start - covered)) } },
          el('span', { class: 'tl-gap-text', text: `gap ${AW.fmtSeconds((b.start - covered) / 1000)}` })));
      }
      covered = Math.max(covered, b.end);
    }
    if (open) {
      overlay.append(el('span', { class: 'tl-now', style: { left: pct(now) }, title: 'now' }, el('span', { class: 'tl-now-text', text: 'now' })));
    }
    const axis = el('div', { class: 'tl-lane tl-axis' },
      el('span', { class: 'tl-label muted', text: AW.fmtClock(tl[0].timestamp) }),
      el('div', { class: 'tl-track' }, ticksOf(span).map((t) => el('span', { class: 'tl-tick', style: { left: pct(t0 + t) } },
        el('span', { text: fmtOffset(t) })))));
    const failed = LANES.filter((l) => bars[l.key].some((b) => b.fail)).map((l) => l.label);
    const label = `Timeline over ${AW.fmtSeconds(span / 1000)}${failed.length ? `; failed: ${failed.join(', ')}` : ''}${open ? '; still open' : ''}`;
    return el('section', { class: 'tl-section', 'aria-labelledby': 'details-timeline' },
      el('h3', { id: 'details-timeline', text: `Timeline · ${AW.plural(tl.length, 'event')} · ${AW.fmtSeconds(span / 1000)}${open ? ' so far' : ''}` }),
      el('div', { id: 'timeline-chart', class: 'tl-chart', role: 'img', 'aria-label': label },
        el('div', { class: 'tl-body' }, lanes, overlay), axis));
  }

  // declutter hides the labels of a drawn timeline that would overlap a label before
  // them or leave the chart (short bars close together, a narrow screen); their bars
  // keep the text as a tooltip.
  function declutter(chart) {
    if (!chart) return;
    const box = chart.getBoundingClientRect();
    const groups = [...chart.querySelectorAll('.tl-track')].map((t) => [...t.querySelectorAll('.tl-bar-text, .tl-tick > span')]);
    for (const labels of groups) {
      const placed = [];
      for (const l of labels) {
        l.style.visibility = '';
        const r = l.getBoundingClientRect();
        const clash = r.right > box.right + 1 || r.left < box.left - 1 ||
          placed.some((p) => r.left < p.right + 4 && r.right + 4 > p.left);
        if (clash) l.style.visibility = 'hidden';
        else placed.push(r);
      }
    }
  }
  S.declutter = () => declutter($('timeline-chart'));

  // ---- Executions and their attempts ---------------------------------------------------

  function renderExecutions(v, errors) {
    const xs = v.executions || [];
    if (!xs.length) return null;
    return el('section', { 'aria-labelledby': 'details-execs' },
      el('h3', { id: 'details-execs', text: xs.length === 1 ? 'Execution' : `Executions · ${xs.length}` }),
      el('ul', { id: 'session-executions', class: 'exec-list' }, xs.map((x) => {
        const attempts = xs.length === 1 ? AW.history.attemptsOf(v.timeline) : [];
        const redriven = x.redriveCount > 0 || attempts.length > 1;
        return el('li', { class: 'exec-item', dataset: { arn: x.executionArn } },
          el('div', { class: 'exec-head' },
            AW.statusBadge(x.status),
            el('span', { class: 'mono exec-name', title: x.executionArn, text: x.executionName }),
            el('span', { class: 'muted', text: x.durationSeconds != null ? `${redriven ? 'all attempts ' : ''}${AW.fmtSeconds(x.durationSeconds)}` : 'running' }),
            errorRef(errors, [x.error, x.cause].filter(Boolean).join(': '))),
          el('div', { class: 'exec-meta muted' },
            `started ${AW.fmtFull(x.startDate)}`, x.stopDate ? ` · stopped ${AW.fmtFull(x.stopDate)}` : ''),
          redriven && attempts.length ? el('ol', { class: 'attempts' }, attempts.map((a) => {
            const secs = a.start && a.stop ? (new Date(a.stop) - new Date(a.start)) / 1000 : null;
            return el('li', { class: `attempt a-${a.status || 'RUNNING'}`, dataset: { attempt: String(a.n) } },
              el('span', { class: 'attempt-label', text: a.n === 0 ? 'Attempt 1' : `Attempt ${a.n + 1} · redrive ${a.n}` }),
              AW.statusBadge(a.status || 'RUNNING'),
              el('span', { class: 'attempt-duration', text: secs != null ? AW.fmtSeconds(secs) : a.start ? `running ${AW.fmtSeconds(AW.secondsSince(a.start))}` : '-' }),
              el('span', { class: 'muted', text: a.start ? `${AW.fmtClock(a.start)} → ${a.stop ? AW.fmtClock(a.stop) : 'now'}` : '' }));
          })) : null,
          AW.linkList(x));
      })));
  }

  // ---- Events table with seed 002's queries -------------------------------------------

  const EVENT_TYPES = Object.keys(AW.EVENT_INFO);

  function eventsParams() {
    const q = S.query;
    const p = { order: q.order };
    if (q.status) p.status = q.status;
    if (q.failures) p.contains = 'FAILED';
    if (q.after) p.after = new Date(q.after).toISOString();
    if (q.latest) {
      p.order = 'desc';
      p.limit = q.latest;
    }
    return p;
  }

  function renderEventsControls() {
    const q = S.query;
    const onChange = () => {
      const f = $('events-form');
      q.order = f.elements.order.value;
      q.status = f.elements.status.value;
      q.failures = f.elements.failures.checked;
      q.latest = f.elements.latest.value;
      q.after = f.elements.after.value;
      f.elements.order.disabled = Boolean(q.latest);
      loadEvents(true);
    };
    return el('form', { id: 'events-form', class: 'events-form', 'aria-label': 'Event query', onchange: onChange, onsubmit: (e) => {
      e.preventDefault();
      onChange();
    } },
    el('label', { class: 'field' }, el('span', { text: 'Order' }),
      el('select', { name: 'order', disabled: Boolean(q.latest) },
        el('option', { value: 'asc', text: 'Oldest first', selected: q.order === 'asc' }),
        el('option', { value: 'desc', text: 'Newest first', selected: q.order === 'desc' }))),
    el('label', { class: 'field' }, el('span', { text: 'Type' }),
      el('select', { name: 'status' }, el('option', { value: '', text: 'All types' }),
        EVENT_TYPES.map((t) => el('option', { value: t, text: t, selected: q.status === t })))),
    el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'failures', checked: q.failures }), el('span', { text: 'Failures only' })),
    el('label', { class: 'field' }, el('span', { text: 'Latest' }),
      el('input', { type: 'number', name: 'latest', min: '1', max: '10000', placeholder: 'all', value: q.latest, inputmode: 'numeric', class: 'narrow' })),
    el('label', { class: 'field' }, el('span', { text: 'Since' }),
      el('input', { type: 'datetime-local', name: 'after', step: '1', value: q.after })));
  }

  function renderEventsTable(items, errors) {
    const body = items.map((it, i) => {
      const prev = items[i - 1];
      const delta = prev ? Math.abs(new Date(it.Timestamp) - new Date(prev.Timestamp)) : null;
      const isExec = it.Status.startsWith('EXECUTION_');
      const failed = it.Status.endsWith('_FAILED') || it.Status === 'EXECUTION_TIMED_OUT';
      const detail = [];
      if (AW.EVENT_INFO[it.Status]) detail.push(el('span', { class: 'muted', text: AW.EVENT_INFO[it.Status] }));
      else detail.push(el('span', { class: 'tl-tag', text: 'unknown status' }));
      if (isExec && it.RedriveCount > 0) detail.push(el('span', { class: 'chip-note redrive', text: `redrive ${it.RedriveCount}` }));
      const err = it.ErrorMessage || [it.Error, it.Cause].filter(Boolean).join(': ');
      if (err) detail.push(errorRef(errors, err) || el('span', { class: 'row-error', text: AW.errorCore(err) }));
      return el('tr', { class: failed ? 'ev-fail' : isExec ? 'ev-exec' : '', dataset: { status: it.Status } },
        el('td', { class: 'ev-time mono' }, el('time', { datetime: it.Timestamp, title: AW.fmtFull(it.Timestamp), text: AW.fmtClock(it.Timestamp) })),
        el('td', { class: `ev-delta${delta >= 60000 ? ' slow' : ''}`, text: delta == null ? '' : AW.fmtDelta(delta) }),
        el('td', { class: 'ev-status mono', text: it.Status }),
        el('td', { class: 'ev-detail' }, detail));
    });
    return el('table', { id: 'events-table', class: 'mini events-table' },
      el('thead', {}, el('tr', {}, ['Time', 'Δ', 'Event', 'Detail'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, body));
  }

  async function loadEvents(force) {
    const id = S.id;
    if (!id || !S.view) return;
    const box = $('events-result');
    if (!box) return;
    const params = eventsParams();
    const seq = ++S.eventsSeq;
    try {
      const page = await AW.request(AW.apiURL(`v1/sessions/${encodeURIComponent(id)}/events`, params));
      if (S.id !== id || seq !== S.eventsSeq) return;
      const json = JSON.stringify([params, page.items]);
      if (!force && json === S.eventsJSON) return;
      S.eventsJSON = json;
      const items = page.items || [];
      const api = AW.apiURL(`v1/sessions/${encodeURIComponent(id)}/events`, params);
      box.replaceChildren(
        el('p', { class: 'muted events-count' }, `${AW.plural(items.length, 'event')} · `,
          el('a', { href: api.pathname + api.search, target: '_blank', rel: 'noopener', text: 'as JSON ↗' })),
        items.length ? renderEventsTable(items, S.errors || []) : el('p', { class: 'empty', text: 'No event matches this query.' }));
    } catch (err) {
      if (S.id !== id || seq !== S.eventsSeq) return;
      box.replaceChildren(el('p', { class: 'banner banner-error', text: err.field ? `Invalid ${err.field}: ${err.message}` : `Could not load events: ${err.message}` }));
    }
  }

  function renderEvents() {
    return el('section', { class: 'events-section', 'aria-labelledby': 'details-events' },
      el('h3', { id: 'details-events', text: 'Journal events' }),
      renderEventsControls(),
      el('div', { id: 'events-result', 'aria-live': 'polite' }));
  }

  // ---- Alerts of the session ---------------------------------------------------------

  function renderSessionAlerts(v) {
    if (!v.alerts?.length) return null;
    const now = v.diagnosis?.outcome;
    return el('section', { 'aria-labelledby': 'details-alerts' },
      el('h3', { id: 'details-alerts', text: 'Alerts' }),
      el('ul', { class: 'alert-list compact' }, v.alerts.map((a) => AW.alerts.item(a, { compact: true, currentOutcome: now }))));
  }

  // ---- The dialog ------------------------------------------------------------------

  function render(v) {
    S.view = v;
    const errors = collectErrors(v);
    S.errors = errors;
    $('details-title').textContent = v.sessionId;
    $('details-sub').textContent = [
      v.agentName || 'unknown agent',
      v.startedAt ? `started ${AW.fmtFull(v.startedAt)}` : '',
      v.lastEventAt ? `last event ${AW.fmtFull(v.lastEventAt)}` : '',
    ].filter(Boolean).join(' · ');
    const current = (v.executions || [])[v.executions.length - 1];
    $('details-links').replaceChildren(...(current ? [AW.linkList(current, 'links')] : []).filter(Boolean));
    $('details-body').replaceChildren(
      renderDiagnosis(v),
      ...[renderErrors(errors)].filter(Boolean),
      el('div', { class: 'details-grid' },
        el('div', { class: 'details-col' }, renderTimelineChart(v), renderExecutions(v, errors)),
        el('div', { class: 'details-col' }, renderEvents())),
      ...[renderSessionAlerts(v)].filter(Boolean));
    requestAnimationFrame(S.declutter);
    loadEvents(true);
  }

  S.refresh = async (force) => {
    const id = S.id;
    if (!id) return;
    const seq = ++S.seq;
    try {
      const v = await AW.request(AW.apiURL(`v1/sessions/${encodeURIComponent(id)}`));
      if (S.id !== id || seq !== S.seq) return;
      const json = JSON.stringify(v);
      if (!force && json === S.json) {
        loadEvents(false);
        return;
      }
      S.json = json;
      render(v);
    } catch (err) {
      if (S.id !== id || seq !== S.seq) return;
      S.json = '';
      S.view = null;
      $('details-sub').textContent = '';
      $('details-body').replaceChildren(el('p', {
        class: 'banner banner-error',
        text: err.status === 404 ? 'The journal has no events of this session yet.' : `Could not load the session: ${err.message}`,
      }));
    }
  };

  S.open = (id) => {
    if (!id) return;
    const again = S.id === id;
    S.id = id;
    if (!again) {
      S.json = '';
      S.eventsJSON = '';
      S.view = null;
      S.query = { order: 'asc', status: '', failures: false, latest: '', after: '' };
      $('details-title').textContent = id;
      $('details-sub').textContent = 'Loading…';
      $('details-links').replaceChildren();
      $('details-body').replaceChildren();
    }
    if (AW.route.get('session') !== id) AW.setRoute({ session: id });
    const dialog = $('details');
    if (!dialog.open) dialog.showModal();
    S.refresh(true);
  };

  S.close = () => {
    const dialog = $('details');
    if (dialog.open) dialog.close();
  };

  S.init = () => {
    const dialog = $('details');
    $('details-close').addEventListener('click', () => dialog.close());
    dialog.addEventListener('click', (e) => {
      if (e.target === dialog) dialog.close();
    });
    dialog.addEventListener('close', () => {
      S.id = null;
      S.json = '';
      S.view = null;
      if (AW.route.get('session')) AW.setRoute({ session: '' });
    });
    let resized = 0;
    window.addEventListener('resize', () => {
      clearTimeout(resized);
      resized = setTimeout(S.declutter, 100);
    });
    // The open session's "silent for" and now-marker move with the clock.
    setInterval(() => {
      if (S.view && isOpenSession(S.view)) {
        const chart = $('timeline-chart');
        const fresh = renderTimelineChart(S.view);
        if (chart && fresh) {
          chart.closest('.tl-section').replaceWith(fresh);
          S.declutter();
        }
      }
    }, 5000);
  };
})();
