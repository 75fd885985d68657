// agentwatch History page (seed 000): filters, a live executions table, open alerts
// and each session's timeline (seed 002). Plain JavaScript, no framework, no build
// step. Every value that comes from the API is inserted as text, never as HTML.
//
// Live updates: every poll interval (the agentwatch-poll-ms meta tag) the page asks
// GET v1/executions again for everything it shows, and merges the answer into the
// table by executionArn: new rows appear, changed rows update in place, both flash.
// Answers carry ETags, so an unchanged poll costs a 304. Polling pauses while the tab
// is hidden.
'use strict';

(() => {
  const POLL_MS = Number(document.querySelector('meta[name="agentwatch-poll-ms"]')?.content) || 2000;
  const PAGE_SIZE = 50;
  const MAX_LIMIT = 1000;
  const AGENTS_EVERY = 15; // polls between refreshes of the agent list

  const STATUS_ICONS = {
    RUNNING: '⚡', SUCCEEDED: '✓', FAILED: '✗', TIMED_OUT: '◷', ABORTED: '⊘', PENDING_REDRIVE: '↻',
  };
  const RANGES = ['today', '24h', '7d', '30d', 'all', 'custom'];
  const EVENT_INFO = {
    SESSION_INITIATED: 'Step Function starts the workflow',
    AGENT_RUNTIME_INVOCATION_STARTED: 'Lambda invoker calls AgentCore',
    AGENT_RUNTIME_INVOCATION_SUCCEEDED: 'AgentCore accepted the request',
    AGENT_RUNTIME_INVOCATION_FAILED: 'AgentCore invocation failed',
    AGENT_ENTRYPOINT_STARTED: 'Agent entrypoint received the request',
    AGENT_ENTRYPOINT_FAILED: 'Agent entrypoint failed',
    AGENT_BACKGROUND_TASK_STARTED: 'Background task created',
    AGENT_BACKGROUND_TASK_COMPLETED: 'Agent processing completed',
    AGENT_BACKGROUND_TASK_FAILED: 'Agent processing failed',
    EXECUTION_RUNNING: 'Step Functions: execution running',
    EXECUTION_SUCCEEDED: 'Step Functions: execution succeeded',
    EXECUTION_FAILED: 'Step Functions: execution failed',
    EXECUTION_TIMED_OUT: 'Step Functions: execution timed out',
    EXECUTION_ABORTED: 'Step Functions: execution aborted',
    EXECUTION_PENDING_REDRIVE: 'Step Functions: execution pending redrive',
  };
  const SCENARIOS = {
    1: 'Lambda invocation failure',
    2: 'Agent entrypoint failure',
    3: 'Background task failure',
    4: 'Missing completion event',
  };
  const OUTCOMES = {
    completed: 'Completed',
    in_progress: 'In progress',
    invocation_failed: 'Invocation failed',
    entrypoint_failed: 'Entrypoint failed',
    background_task_failed: 'Background task failed',
    missing_completion: 'Missing completion',
    never_started: 'Never started',
    aborted: 'Aborted',
    execution_only: 'Execution only',
    empty: 'No events',
  };
  const KINDS = {
    stuck: 'Stuck session',
    missing_completion: 'Missing completion',
    never_started: 'Never started',
    journal_mismatch: 'Journal mismatch',
    recovered: 'Recovered',
  };

  const $ = (id) => document.getElementById(id);

  // el builds an element: attrs may hold class, text, dataset, on<event> handlers and
  // plain attributes; children are nodes or strings (inserted as text).
  function el(tag, attrs = {}, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') n.className = v;
      else if (k === 'text') n.textContent = v;
      else if (k === 'dataset') Object.assign(n.dataset, v);
      else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c == null || c === false) continue;
      n.append(c instanceof Node ? c : String(c));
    }
    return n;
  }

  // ---- API ---------------------------------------------------------------------

  function apiURL(path, params = {}) {
    const u = new URL(path, document.baseURI);
    for (const [k, v] of Object.entries(params)) {
      if (v !== '' && v != null) u.searchParams.set(k, v);
    }
    return u;
  }

  async function request(url, init = {}) {
    const res = await fetch(url, { cache: 'no-cache', headers: { Accept: 'application/json' }, ...init });
    let body = null;
    try {
      body = await res.json();
    } catch {
      // Not JSON: the status says enough.
    }
    if (!res.ok) {
      const err = new Error(body?.error || `${res.status} ${res.statusText}`);
      err.status = res.status;
      err.field = body?.field;
      throw err;
    }
    return body;
  }

  // ---- Formatting --------------------------------------------------------------

  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
  const fullFmt = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  });

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  // fmtStart is "12:35:00" today, "Nov 3 12:35:00" on other days.
  function fmtStart(iso) {
    if (!iso) return '-';
    const d = new Date(iso);
    return sameDay(d, new Date()) ? timeFmt.format(d) : `${dayFmt.format(d)} ${timeFmt.format(d)}`;
  }

  function fmtFull(iso) {
    return iso ? fullFmt.format(new Date(iso)) : '-';
  }

  // fmtClock is the local time of day with milliseconds, for timelines.
  function fmtClock(iso) {
    const d = new Date(iso);
    return `${timeFmt.format(d)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  }

  // fmtSeconds renders a duration the way seed 000 does ("10s"), growing units as
  // needed: "0.4s", "10s", "1m 05s", "2h 03m".
  function fmtSeconds(s) {
    if (s == null || Number.isNaN(s)) return '-';
    if (s < 1) return `${Math.max(0, s).toFixed(1).replace(/\.0$/, '')}s`;
    if (s < 60) return `${Math.round(s)}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
    const h = Math.floor(m / 60);
    return `${h}h ${String(m - h * 60).padStart(2, '0')}m`;
  }

  // fmtDelta renders milliseconds between events: "+120ms", "+1.2s", "+5m 41s".
  function fmtDelta(ms) {
    if (ms < 1000) return `+${ms}ms`;
    if (ms < 60000) return `+${(ms / 1000).toFixed(1).replace(/\.0$/, '')}s`;
    return `+${fmtSeconds(ms / 1000)}`;
  }

  function fmtAgo(iso) {
    const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (s < 60) return 'just now';
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }

  function statusBadge(status) {
    return el('span', { class: `badge s-${status}` },
      el('span', { class: 'icon', 'aria-hidden': 'true', text: STATUS_ICONS[status] || '•' }),
      status);
  }

  function outcomeBadge(outcome) {
    return el('span', { class: `badge o-${outcome}` }, OUTCOMES[outcome] || outcome);
  }

  // ---- State -------------------------------------------------------------------

  const state = {
    filters: { agent: '', status: '', range: 'today', from: '', to: '' },
    rows: new Map(), // executionArn -> { tr, sig }
    items: [],
    nextCursor: null,
    // version changes whenever the list is reloaded or extended: a poll that started
    // before is dropped, so it cannot undo a "Load more".
    version: 0,
    agents: new Set(),
    session: null,
    sessionJSON: '',
    alertsJSON: '',
    ticking: false,
    polls: 0,
    timer: 0,
  };

  function readURL() {
    const q = new URLSearchParams(location.search);
    const f = state.filters;
    f.agent = q.get('agent') || '';
    const st = (q.get('status') || '').toUpperCase();
    f.status = STATUS_ICONS[st] ? st : '';
    const range = q.get('range') || 'today';
    f.range = RANGES.includes(range) ? range : 'today';
    f.from = q.get('from') || '';
    f.to = q.get('to') || '';
    if ((f.from || f.to) && !q.get('range')) f.range = 'custom';
    state.session = q.get('session') || null;
  }

  function writeURL() {
    const f = state.filters;
    const q = new URLSearchParams();
    if (f.agent) q.set('agent', f.agent);
    if (f.status) q.set('status', f.status);
    if (f.range !== 'today') q.set('range', f.range);
    if (f.range === 'custom') {
      if (f.from) q.set('from', f.from);
      if (f.to) q.set('to', f.to);
    }
    if (state.session) q.set('session', state.session);
    const s = q.toString();
    history.replaceState(null, '', s ? `?${s}` : location.pathname);
  }

  function localDate(d) {
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  }

  // bounds turns the Date filter into from/to instants; the days are the viewer's.
  function bounds() {
    const f = state.filters;
    const now = new Date();
    const ago = (days) => new Date(now.getTime() - days * 86400000).toISOString();
    switch (f.range) {
      case 'today': {
        const d = new Date(now);
        d.setHours(0, 0, 0, 0);
        return { from: d.toISOString() };
      }
      case '24h': return { from: ago(1) };
      case '7d': return { from: ago(7) };
      case '30d': return { from: ago(30) };
      case 'custom': {
        const b = {};
        if (f.from) b.from = new Date(`${f.from}T00:00:00`).toISOString();
        if (f.to) b.to = new Date(`${f.to}T23:59:59.999`).toISOString();
        return b;
      }
      default: return {};
    }
  }

  function listParams(extra) {
    const f = state.filters;
    return { agent: f.agent, status: f.status, ...bounds(), ...extra };
  }

  // ---- Executions table --------------------------------------------------------

  function signature(it) {
    return [it.status, it.stopDate, it.durationSeconds, it.agentName, it.executionName, it.startDate, it.sessionId].join('|');
  }

  function fillRow(tr, it) {
    tr.dataset.status = it.status;
    tr.dataset.session = it.sessionId || '';
    const running = !it.stopDate;
    const duration = it.durationSeconds != null ? fmtSeconds(it.durationSeconds) : '-';
    tr.replaceChildren(
      el('td', { class: 'status' }, statusBadge(it.status)),
      el('td', { class: 'name', title: it.executionArn }, el('span', { class: 'mono', text: it.executionName })),
      el('td', { class: 'agent', text: it.agentName }),
      el('td', { class: 'started' }, el('time', { datetime: it.startDate, title: fmtFull(it.startDate), text: fmtStart(it.startDate) })),
      el('td', {
        class: 'duration num',
        title: running && it.startDate ? `running for ${fmtSeconds((Date.now() - new Date(it.startDate)) / 1000)}` : null,
        text: duration,
      }),
      el('td', { class: 'action' }, el('button', {
        type: 'button',
        class: 'link-button view',
        'aria-label': `View details of ${it.executionName}`,
        onclick: () => openSession(it.sessionId || it.executionName),
        text: 'View Details',
      })),
    );
  }

  function flash(tr, cls) {
    tr.classList.remove('is-new', 'is-changed');
    void tr.offsetWidth; // restart the animation
    tr.classList.add(cls);
  }

  // render makes the table show items, in order, reusing the rows it already has.
  function render(items, { flashChanges }) {
    const tbody = $('rows');
    const seen = new Set();
    const shown = [];
    let prev = null;
    for (const it of items) {
      if (seen.has(it.executionArn)) continue;
      seen.add(it.executionArn);
      shown.push(it);
      const sig = signature(it);
      let r = state.rows.get(it.executionArn);
      if (!r) {
        r = { tr: el('tr', { dataset: { arn: it.executionArn } }), sig };
        fillRow(r.tr, it);
        state.rows.set(it.executionArn, r);
        if (flashChanges) flash(r.tr, 'is-new');
      } else if (r.sig !== sig) {
        fillRow(r.tr, it);
        r.sig = sig;
        if (flashChanges) flash(r.tr, 'is-changed');
      }
      const at = prev ? prev.nextSibling : tbody.firstChild;
      if (at !== r.tr) tbody.insertBefore(r.tr, at);
      prev = r.tr;
      if (it.agentName) noteAgent(it.agentName);
    }
    for (const [arn, r] of state.rows) {
      if (!seen.has(arn)) {
        r.tr.remove();
        state.rows.delete(arn);
      }
    }
    state.items = shown;
    $('empty').hidden = shown.length > 0;
  }

  function setPage(page, items, flashChanges) {
    render(items, { flashChanges });
    state.nextCursor = page.nextCursor || null;
    $('load-more').hidden = !state.nextCursor;
    summarize();
  }

  function summarize() {
    const n = state.items.length;
    const count = (s) => state.items.filter((it) => it.status === s).length;
    const parts = [`${n} execution${n === 1 ? '' : 's'}${state.nextCursor ? ' shown (more below)' : ''}`];
    const running = count('RUNNING');
    const failed = count('FAILED') + count('TIMED_OUT');
    if (running) parts.push(`${running} running`);
    if (failed) parts.push(`${failed} failed`);
    $('summary').textContent = parts.join(' · ');
  }

  function showError(err) {
    const box = $('error');
    if (!err) {
      box.hidden = true;
      box.textContent = '';
      return;
    }
    box.textContent = err.field ? `Invalid ${err.field}: ${err.message}` : `Could not load executions: ${err.message}`;
    box.hidden = false;
  }

  async function reload() {
    const version = ++state.version;
    try {
      const page = await request(apiURL('v1/executions', listParams({ limit: PAGE_SIZE })));
      if (version !== state.version) return;
      setPage(page, page.items, false);
      showError(null);
    } catch (err) {
      if (version !== state.version) return;
      setPage({}, [], false);
      showError(err);
    }
  }

  async function loadMore() {
    if (!state.nextCursor) return;
    const button = $('load-more');
    button.disabled = true;
    const version = ++state.version;
    try {
      const page = await request(apiURL('v1/executions', listParams({ limit: PAGE_SIZE, cursor: state.nextCursor })));
      if (version !== state.version) return;
      setPage(page, state.items.concat(page.items), false);
      showError(null);
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  }

  // pollExecutions asks again for everything shown, so that new executions appear and
  // changed ones update without a reload.
  async function pollExecutions() {
    const version = state.version;
    const limit = Math.min(MAX_LIMIT, Math.max(PAGE_SIZE, state.items.length));
    const page = await request(apiURL('v1/executions', listParams({ limit })));
    if (version !== state.version) return;
    setPage(page, page.items, true);
    showError(null);
  }

  // ---- Agents ------------------------------------------------------------------

  function noteAgent(name) {
    if (state.agents.has(name)) return;
    state.agents.add(name);
    fillAgents();
  }

  function fillAgents() {
    const select = $('agent-filter');
    const names = [...state.agents];
    if (state.filters.agent && !state.agents.has(state.filters.agent)) names.push(state.filters.agent);
    names.sort((a, b) => a.localeCompare(b));
    select.replaceChildren(el('option', { value: '', text: 'All agents' }), ...names.map((n) => el('option', { value: n, text: n })));
    select.value = state.filters.agent;
  }

  async function loadAgents() {
    const from = new Date(Date.now() - 30 * 86400000).toISOString().slice(0, 10);
    const stats = await request(apiURL('v1/stats', { granularity: 'day', from }));
    for (const v of stats.items || []) if (v.agentName) state.agents.add(v.agentName);
    fillAgents();
  }

  // ---- Alerts ------------------------------------------------------------------

  async function ack(a, button) {
    button.disabled = true;
    try {
      await request(apiURL(`v1/alerts/${encodeURIComponent(a.sessionId)}/${encodeURIComponent(a.kind)}/ack`), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ by: 'history page' }),
      });
      await pollAlerts();
      if (state.session === a.sessionId) await refreshSession(true);
    } catch (err) {
      button.disabled = false;
      button.title = err.message;
    }
  }

  function alertItem(a, compact) {
    const acked = Boolean(a.ackedAt);
    return el('li', { class: `alert-item k-${a.kind}${acked ? ' is-acked' : ''}`, dataset: { session: a.sessionId, kind: a.kind } },
      el('div', { class: 'alert-head' },
        el('span', { text: KINDS[a.kind] || a.kind }),
        el('time', { class: 'muted', datetime: a.raisedAt, title: fmtFull(a.raisedAt), text: fmtAgo(a.raisedAt) })),
      compact ? null : el('p', { class: 'muted' }, `${a.agentName || 'unknown agent'} · `, el('span', { class: 'mono', text: a.sessionId })),
      a.diagnosis?.summary ? el('p', { text: a.diagnosis.summary }) : null,
      a.resolvedAt ? el('p', { class: 'muted', text: `Resolved ${fmtFull(a.resolvedAt)}` }) : null,
      el('div', { class: 'alert-actions' },
        compact ? null : el('button', { type: 'button', class: 'link-button', onclick: () => openSession(a.sessionId), text: 'View session' }),
        acked
          ? el('span', { class: 'muted', text: `Acknowledged by ${a.ackedBy || 'someone'}` })
          : el('button', { type: 'button', class: 'chip', onclick: (e) => ack(a, e.currentTarget), text: 'Acknowledge' })));
  }

  // pollAlerts re-renders the panel only when the alerts changed, so that a poll never
  // takes the keyboard focus away from an Acknowledge button; otherwise it only
  // refreshes the "n min ago" texts.
  async function pollAlerts() {
    const page = await request(apiURL('v1/alerts', { state: 'open', limit: 50 }));
    const items = page.items || [];
    const json = JSON.stringify(items);
    if (json === state.alertsJSON) {
      for (const t of $('alerts-list').querySelectorAll('.alert-head time')) t.textContent = fmtAgo(t.dateTime);
      return;
    }
    state.alertsJSON = json;
    $('alerts-list').replaceChildren(...items.map((a) => alertItem(a, false)));
    $('alerts-empty').hidden = items.length > 0;
    const count = $('alerts-count');
    count.textContent = String(items.length);
    count.dataset.n = String(items.length);
  }

  // ---- Session details ---------------------------------------------------------

  function eventClass(e) {
    if (!e.known) return 'ev-unknown';
    if (e.status.startsWith('EXECUTION_')) return e.status === 'EXECUTION_RUNNING' || e.status === 'EXECUTION_SUCCEEDED' ? 'ev-exec' : 'ev-exec ev-fail';
    if (e.status.endsWith('_FAILED')) return 'ev-fail';
    if (e.status.endsWith('_COMPLETED') || e.status.endsWith('_SUCCEEDED')) return 'ev-ok';
    return 'ev-start';
  }

  function renderDiagnosis(v) {
    const d = v.diagnosis || {};
    const rows = [];
    const row = (k, val) => { if (val) rows.push(el('dt', { text: k }), el('dd', {}, val)); };
    row('Stage', d.stage ? d.stage.replaceAll('_', ' ') : '');
    row('Component', d.component);
    row('Execution', d.executionStatus ? statusBadge(d.executionStatus) : '');
    row('Mismatch', d.journalMismatch ? 'Step Functions and the journal disagree' : '');
    return el('section', { id: 'diagnosis', class: 'diagnosis', 'aria-label': 'Diagnosis' },
      el('div', {},
        outcomeBadge(d.outcome),
        d.scenario ? el('span', { class: 'scenario', text: ` Scenario ${d.scenario} · ${SCENARIOS[d.scenario] || ''}` }) : null),
      el('p', { class: 'summary-line', text: d.summary || '' }),
      rows.length ? el('dl', {}, rows) : null,
      d.errorMessage ? el('pre', { class: 'error-text', text: d.errorMessage }) : null);
  }

  function renderExecutions(v) {
    if (!v.executions?.length) return null;
    return el('section', { 'aria-labelledby': 'details-execs' },
      el('h3', { id: 'details-execs', text: 'Executions' }),
      el('table', { class: 'mini' },
        el('thead', {}, el('tr', {}, ['Status', 'Execution', 'Started', 'Stopped', 'Duration'].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, v.executions.map((x) => [
          el('tr', {},
            el('td', {}, statusBadge(x.status)),
            el('td', { class: 'mono', title: x.executionArn, text: x.executionName }),
            el('td', { text: fmtFull(x.startDate) }),
            el('td', { text: x.stopDate ? fmtFull(x.stopDate) : '-' }),
            el('td', { text: x.durationSeconds != null ? fmtSeconds(x.durationSeconds) : '-' })),
          x.error || x.cause
            ? el('tr', {}, el('td', { colspan: 5 }, el('pre', { class: 'error-text', text: [x.error, x.cause].filter(Boolean).join(': ') })))
            : null,
        ]))));
  }

  function renderTimeline(v) {
    const tl = v.timeline || [];
    const total = tl.length ? tl[tl.length - 1].sinceStartMs : 0;
    const items = tl.map((e, i) => el('li', { class: eventClass(e), dataset: { status: e.status } },
      el('div', { class: 'tl-time' },
        el('time', { datetime: e.timestamp, title: fmtFull(e.timestamp), text: fmtClock(e.timestamp) }),
        el('span', { class: `tl-delta${e.sincePreviousMs >= 60000 ? ' slow' : ''}`, text: i === 0 ? 'start' : fmtDelta(e.sincePreviousMs) })),
      el('div', { class: 'tl-rail', 'aria-hidden': 'true' }, el('span', { class: 'tl-dot' })),
      el('div', { class: 'tl-body' },
        el('div', {}, el('span', { class: 'tl-status', text: e.status }), e.known ? null : el('span', { class: 'tl-tag', text: 'unknown status' })),
        EVENT_INFO[e.status] ? el('div', { class: 'tl-desc', text: EVENT_INFO[e.status] }) : null,
        e.errorMessage ? el('pre', { class: 'error-text', text: e.errorMessage }) : null)));
    if (v.diagnosis?.outcome === 'missing_completion') {
      items.push(el('li', { class: 'tl-gap' },
        el('div', { class: 'tl-time' }),
        el('div', { class: 'tl-rail', 'aria-hidden': 'true' }, el('span', { class: 'tl-dot' })),
        el('div', { class: 'tl-body', text: '(no completion event)' })));
    }
    return el('section', { 'aria-labelledby': 'details-timeline' },
      el('h3', { id: 'details-timeline', text: `Timeline · ${tl.length} event${tl.length === 1 ? '' : 's'} · ${fmtDelta(total).slice(1)} total` }),
      el('ol', { id: 'timeline', class: 'timeline' }, items));
  }

  function renderSessionAlerts(v) {
    if (!v.alerts?.length) return null;
    return el('section', { 'aria-labelledby': 'details-alerts' },
      el('h3', { id: 'details-alerts', text: 'Alerts' }),
      el('ul', { class: 'alert-list' }, v.alerts.map((a) => alertItem(a, true))));
  }

  function renderSession(v) {
    $('details-title').textContent = v.sessionId;
    $('details-sub').textContent = [
      v.agentName || 'unknown agent',
      v.startedAt ? `started ${fmtFull(v.startedAt)}` : '',
      v.lastEventAt ? `last event ${fmtFull(v.lastEventAt)}` : '',
    ].filter(Boolean).join(' · ');
    $('details-body').replaceChildren(...[renderDiagnosis(v), renderExecutions(v), renderTimeline(v), renderSessionAlerts(v)].filter(Boolean));
  }

  async function refreshSession(force) {
    const id = state.session;
    if (!id) return;
    try {
      const v = await request(apiURL(`v1/sessions/${encodeURIComponent(id)}`));
      if (state.session !== id) return;
      const json = JSON.stringify(v);
      if (!force && json === state.sessionJSON) return;
      state.sessionJSON = json;
      renderSession(v);
    } catch (err) {
      if (state.session !== id) return;
      state.sessionJSON = '';
      $('details-sub').textContent = '';
      $('details-body').replaceChildren(el('p', {
        class: 'banner banner-error',
        text: err.status === 404 ? 'The journal has no events of this session yet.' : `Could not load the session: ${err.message}`,
      }));
    }
  }

  function openSession(id) {
    if (!id) return;
    state.session = id;
    state.sessionJSON = '';
    writeURL();
    $('details-title').textContent = id;
    $('details-sub').textContent = 'Loading…';
    $('details-body').replaceChildren();
    const dialog = $('details');
    if (!dialog.open) dialog.showModal();
    refreshSession(true);
  }

  // ---- Live updates ------------------------------------------------------------

  function setLive(kind, text) {
    $('live').dataset.state = kind;
    $('live-text').textContent = text;
  }

  // tick polls once and schedules the next poll. Only one runs at a time: a tick
  // asked for while one runs (the tab became visible) leaves the scheduling to it.
  async function tick() {
    clearTimeout(state.timer);
    if (state.ticking) return;
    if (document.hidden) {
      setLive('paused', 'Paused while hidden');
      return;
    }
    state.ticking = true;
    try {
      const work = [pollExecutions(), pollAlerts()];
      if (state.session) work.push(refreshSession(false));
      if (++state.polls % AGENTS_EVERY === 0) work.push(loadAgents());
      await Promise.all(work);
      setLive('live', `Live · updated ${timeFmt.format(new Date())}`);
    } catch (err) {
      setLive('error', `Offline · retrying (${err.message})`);
    } finally {
      state.ticking = false;
    }
    state.timer = setTimeout(tick, POLL_MS);
  }

  // ---- Wiring ------------------------------------------------------------------

  function syncControls() {
    const f = state.filters;
    $('status-filter').value = f.status;
    $('range-filter').value = f.range;
    $('from-filter').value = f.from;
    $('to-filter').value = f.to;
    $('custom-range').hidden = f.range !== 'custom';
    fillAgents();
  }

  function onFilterChange() {
    const f = state.filters;
    f.agent = $('agent-filter').value;
    f.status = $('status-filter').value;
    f.range = $('range-filter').value;
    if (f.range === 'custom') {
      f.from = $('from-filter').value;
      f.to = $('to-filter').value;
      if (!f.from && !f.to) {
        // A first switch to Custom starts from the last 7 days.
        f.from = localDate(new Date(Date.now() - 6 * 86400000));
        f.to = localDate(new Date());
      }
    }
    syncControls();
    writeURL();
    reload();
  }

  function init() {
    readURL();
    syncControls();
    for (const id of ['agent-filter', 'status-filter', 'range-filter', 'from-filter', 'to-filter']) {
      $(id).addEventListener('change', onFilterChange);
    }
    $('filters').addEventListener('submit', (e) => e.preventDefault());
    $('load-more').addEventListener('click', loadMore);
    $('alerts-toggle').addEventListener('click', (e) => {
      const hidden = document.querySelector('.layout').classList.toggle('alerts-hidden');
      e.currentTarget.setAttribute('aria-expanded', String(!hidden));
    });
    const dialog = $('details');
    $('details-close').addEventListener('click', () => dialog.close());
    dialog.addEventListener('click', (e) => { if (e.target === dialog) dialog.close(); });
    dialog.addEventListener('close', () => {
      state.session = null;
      state.sessionJSON = '';
      writeURL();
    });
    document.addEventListener('visibilitychange', () => { if (!document.hidden) tick(); });

    const session = state.session;
    reload().then(() => setLive('live', `Live · updated ${timeFmt.format(new Date())}`));
    loadAgents().catch(() => {});
    pollAlerts().catch(() => {});
    if (session) openSession(session);
    state.timer = setTimeout(tick, POLL_MS);
  }

  init();
})();
