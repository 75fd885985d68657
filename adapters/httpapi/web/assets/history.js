// The History view (seed 000): the executions table with the agent's outcome first,
// search, filters, true counts from the store, and "silent for" on stuck sessions.
//
// The outcome comes with each execution item (outcome, stage, errorMessage). Where a
// server does not send it yet, the view reads it from the session (GET
// /v1/sessions/{id}, a few at a time) and shows "…" until then. The same read gives
// open sessions their last event (silent for X) and redriven executions their attempts.
'use strict';

(() => {
  const { $, el } = AW;
  const PAGE_SIZE = 50;
  const MAX_LIMIT = 1000;
  const RANGES = ['today', '24h', '7d', '30d', 'all', 'custom'];
  const SILENT_AFTER_S = 60; // an open session quiet this long says so
  const DERIVE_MAX_ROWS = 200;
  const DERIVE_OPEN_EVERY_MS = 5000;
  const COUNTS_EVERY_MS = 2000;
  const STUCK_EVERY_MS = 15000;

  const H = (AW.history = {
    filters: { q: '', agent: '', status: '', outcome: '', range: 'today', from: '', to: '' },
    rows: new Map(), // executionArn -> { tr, sig }
    items: [],
    nextCursor: null,
    // version changes whenever the list is reloaded or extended: a refresh that started
    // before is dropped, so it cannot undo a "Load more".
    version: 0,
    refreshSeq: 0,
    agents: new Set(),
    derived: new Map(), // sessionId -> what the session view says (see derive)
    deriving: new Set(),
    stuck: new Map(), // sessionId -> its unresolved stuck alert
    counts: null,
    countsAt: 0,
    countsSupported: true,
    stuckAt: 0,
    loaded: false,
  });

  // ---- Filters and the address ------------------------------------------------------

  H.readRoute = () => {
    const q = AW.route;
    const f = H.filters;
    f.q = q.get('q') || '';
    f.agent = q.get('agent') || '';
    const st = (q.get('status') || '').toUpperCase();
    f.status = AW.STATUS_ICONS[st] ? st : '';
    const oc = q.get('outcome') || '';
    f.outcome = oc === 'failed' || AW.OUTCOMES[oc] ? oc : '';
    const range = q.get('range') || 'today';
    f.range = RANGES.includes(range) ? range : 'today';
    f.from = q.get('from') || '';
    f.to = q.get('to') || '';
    if ((f.from || f.to) && !q.get('range')) f.range = 'custom';
  };

  function writeRoute() {
    const f = H.filters;
    AW.setRoute({
      q: f.q, agent: f.agent, status: f.status, outcome: f.outcome,
      range: f.range !== 'today' ? f.range : '',
      from: f.range === 'custom' ? f.from : '', to: f.range === 'custom' ? f.to : '',
    });
  }

  function localDate(d) {
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  }

  // bounds turns the Date filter into from/to instants; the days are the viewer's. A
  // search spans every date.
  function bounds() {
    const f = H.filters;
    if (f.q) return {};
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

  function outcomeParam() {
    const o = H.filters.outcome;
    return o === 'failed' ? AW.FAILED_OUTCOMES.join(',') : o;
  }

  function filterParams(extra) {
    const f = H.filters;
    return { agent: f.agent, status: f.status, outcome: outcomeParam(), q: f.q, ...bounds(), ...extra };
  }

  // customRangeError checks a custom range here, where the page can name the inputs.
  function customRangeError() {
    const f = H.filters;
    if (f.range === 'custom' && f.from && f.to && f.to < f.from) {
      return Object.assign(new Error('"To" is before "From": pick a To date on or after the From date.'), { field: 'date range', local: true });
    }
    return null;
  }

  // ---- Outcome of a row ---------------------------------------------------------------

  function outcomeOf(it) {
    return it.outcome || H.derived.get(it.sessionId)?.outcome || '';
  }

  function isOpen(it) {
    const o = outcomeOf(it);
    return o ? o === 'in_progress' : it.status === 'RUNNING' || it.status === 'PENDING_REDRIVE';
  }

  // matchesClient applies what the server may not have applied: the search term and
  // the outcome filter (on outcomes known here).
  function matchesClient(it) {
    const f = H.filters;
    if (f.q) {
      const t = f.q.toLowerCase();
      if (![it.executionName, it.sessionId, it.executionArn].some((v) => String(v || '').toLowerCase().includes(t))) return false;
    }
    if (f.outcome) {
      const o = outcomeOf(it);
      if (o) {
        const want = f.outcome === 'failed' ? AW.FAILED_OUTCOMES : [f.outcome];
        if (!want.includes(o)) return false;
      }
    }
    return true;
  }

  // silence is how long an open session has been quiet, and the stuck alert if one is
  // open for it.
  function silence(it) {
    const alert = H.stuck.get(it.sessionId);
    const d = H.derived.get(it.sessionId);
    const last = d?.lastEventAt || alert?.lastEventAt || it.lastEventAt;
    return { last, seconds: last ? AW.secondsSince(last) : 0, alert };
  }

  // attemptsOf reads a redriven execution's attempts from its session's timeline: the
  // journal's execution items carry R<redriveCount> in their sort keys.
  function attemptsOf(timeline) {
    const attempts = new Map();
    for (const e of timeline || []) {
      if (!e.status.startsWith('EXECUTION_')) continue;
      const m = /#R(\d+)#/.exec(e.sk || '');
      const n = m ? Number(m[1]) : 0;
      const a = attempts.get(n) || { n, start: null, stop: null, status: null };
      if (e.status === 'EXECUTION_RUNNING') a.start = a.start || e.timestamp;
      else if (e.status !== 'EXECUTION_PENDING_REDRIVE') {
        a.stop = e.timestamp;
        a.status = e.status.slice('EXECUTION_'.length);
      }
      attempts.set(n, a);
    }
    return [...attempts.values()].sort((a, b) => a.n - b.n);
  }
  H.attemptsOf = attemptsOf;

  // ---- Rows -----------------------------------------------------------------------------

  function signature(it) {
    const d = H.derived.get(it.sessionId);
    const s = silence(it);
    return [it.status, it.stopDate, it.durationSeconds, it.agentName, it.executionName, it.startDate, it.sessionId,
      it.redriveCount, it.outcome, it.stage, it.errorMessage, d?.key, d?.outcome, d?.lastEventAt, s.alert?.raisedAt,
      s.alert?.ackedAt].join('|');
  }

  function durationCell(it) {
    const d = H.derived.get(it.sessionId);
    if (it.redriveCount > 0 && d?.attempts?.length > 1) {
      const last = d.attempts[d.attempts.length - 1];
      const secs = last.start ? ((last.stop ? new Date(last.stop) : new Date()) - new Date(last.start)) / 1000 : null;
      return [
        el('span', { class: 'attempt-duration', text: last.stop ? AW.fmtSeconds(secs) : '-' }),
        el('span', { class: 'sub', text: `attempt ${last.n + 1}${it.durationSeconds != null ? ` · all ${AW.fmtSeconds(it.durationSeconds)}` : ''}` }),
      ];
    }
    return it.durationSeconds != null ? AW.fmtSeconds(it.durationSeconds) : '-';
  }

  function outcomeCell(it) {
    const outcome = outcomeOf(it);
    const d = H.derived.get(it.sessionId);
    const parts = [AW.outcomeBadge(outcome)];
    if (outcome && AW.disagrees(outcome, it.status)) {
      parts.push(el('span', {
        class: 'chip-note disagree', title: `The agent's journal says ${AW.OUTCOMES[outcome]?.label || outcome}; Step Functions says ${it.status}`,
        text: `≠ Step Functions ${it.status}`,
      }));
    }
    if (isOpen(it)) {
      const s = silence(it);
      if (s.last && (s.alert || s.seconds >= SILENT_AFTER_S)) {
        parts.push(el('span', {
          class: `chip-note silent${s.alert ? ' is-stuck' : ''}`, dataset: { since: s.last },
          title: s.alert ? `Stuck: no event since ${AW.fmtFull(s.last)}` : `No event since ${AW.fmtFull(s.last)}`,
          text: `silent for ${AW.fmtSeconds(s.seconds)}`,
        }));
      }
    }
    const err = it.errorMessage || d?.errorMessage;
    if (err && AW.outcomeTone(outcome) === 'fail') {
      const cut = it.errorMessage && it.errorMessageTruncated;
      parts.push(el('span', {
        class: 'row-error', title: cut ? `${err}… (cut short here; the session view shows it whole)` : err,
        text: `${AW.errorCore(err)}${cut ? '…' : ''}`,
      }));
    }
    return parts;
  }

  function fillRow(tr, it) {
    const outcome = outcomeOf(it);
    tr.dataset.status = it.status;
    tr.dataset.outcome = outcome;
    tr.dataset.session = it.sessionId || '';
    tr.className = `t-row-${outcome ? AW.outcomeTone(outcome) : 'pending'}`;
    tr.replaceChildren(
      el('td', { class: 'outcome', 'data-label': 'Outcome' }, outcomeCell(it)),
      el('td', { class: 'status', 'data-label': 'Step Functions' }, AW.statusBadge(it.status),
        it.redriveCount > 0 ? el('span', { class: 'chip-note redrive', text: `↻ redrive ${it.redriveCount}` }) : null),
      el('td', { class: 'name', title: it.executionArn, 'data-label': 'Execution' },
        el('span', { class: 'mono exec-name', text: it.executionName }),
        it.sessionId && it.sessionId !== it.executionName ? el('span', { class: 'sub mono', text: it.sessionId }) : null),
      el('td', { class: 'agent', 'data-label': 'Agent' },
        el('a', { class: 'agent-link', href: `?view=agent&agent=${encodeURIComponent(it.agentName)}`, dataset: { agent: it.agentName }, text: it.agentName })),
      el('td', { class: 'started', 'data-label': 'Started' },
        el('time', { datetime: it.startDate, title: AW.fmtFull(it.startDate), text: AW.fmtStart(it.startDate) })),
      el('td', { class: 'duration num', 'data-label': 'Duration' }, durationCell(it)),
      el('td', { class: 'action' },
        el('button', { type: 'button', class: 'link-button view', onclick: () => AW.session.open(it.sessionId), text: 'View details' })));
  }

  function render(flash) {
    const seen = new Set();
    const tbody = $('rows');
    let prev = null;
    const shown = H.items.filter(matchesClient);
    for (const it of shown) {
      seen.add(it.executionArn);
      const sig = signature(it);
      let row = H.rows.get(it.executionArn);
      if (!row) {
        const tr = el('tr', { dataset: { arn: it.executionArn } });
        row = { tr, sig: '' };
        H.rows.set(it.executionArn, row);
        if (flash) tr.classList.add('is-new');
      }
      if (row.sig !== sig) {
        const changed = row.sig !== '' && flash;
        fillRow(row.tr, it);
        if (changed) row.tr.classList.add('is-changed');
        row.sig = sig;
      }
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== row.tr) tbody.insertBefore(row.tr, want);
      prev = row.tr;
    }
    for (const [arn, row] of H.rows) {
      if (!seen.has(arn)) {
        row.tr.remove();
        H.rows.delete(arn);
      }
    }
    $('empty').hidden = shown.length > 0 || !H.loaded;
    $('load-more').hidden = !H.nextCursor;
    renderSummary();
  }

  // ---- Summary: true counts ---------------------------------------------------------

  const SUMMARY_OUTCOMES = ['completed', 'in_progress', ...AW.FAILED_OUTCOMES, 'aborted', 'execution_only'];

  function renderSummary() {
    const box = $('summary');
    const c = H.counts;
    if (!c) {
      // Without GET /v1/executions/counts: say what is loaded, and no more.
      const n = H.items.filter(matchesClient).length;
      box.replaceChildren(el('span', { class: 'total' },
        `${AW.plural(n, 'execution')} loaded`, H.nextCursor ? ' · more below' : ''));
      return;
    }
    const parts = [el('span', { class: 'total', id: 'total-count', dataset: { n: String(c.total) } }, AW.plural(c.total, 'execution'))];
    const by = c.byOutcome || {};
    const failed = AW.FAILED_OUTCOMES.reduce((n, o) => n + (by[o] || 0), 0);
    const chip = (outcome, n, label) => el('button', {
      type: 'button', class: `count-chip t-${outcome === 'failed' ? 'fail' : AW.outcomeTone(outcome)}${H.filters.outcome === outcome ? ' is-on' : ''}`,
      dataset: { outcome, n: String(n) }, 'aria-pressed': String(H.filters.outcome === outcome),
      title: H.filters.outcome === outcome ? 'Show every outcome' : `Show only: ${label}`,
      onclick: () => setOutcome(H.filters.outcome === outcome ? '' : outcome),
    }, el('strong', { text: AW.fmtNum(n) }), ` ${label}`);
    if (failed) parts.push(chip('failed', failed, 'agent failures'));
    const order = [...SUMMARY_OUTCOMES, ...Object.keys(by).filter((o) => !SUMMARY_OUTCOMES.includes(o)).sort()];
    for (const o of order) {
      if (by[o]) parts.push(chip(o, by[o], (AW.OUTCOMES[o]?.label || o).toLowerCase()));
    }
    const bs = c.byStatus || {};
    const sf = Object.keys(AW.STATUS_ICONS).filter((s) => bs[s]).map((s) => `${AW.fmtNum(bs[s])} ${s.toLowerCase().replace('_', ' ')}`);
    if (sf.length) parts.push(el('span', { class: 'sf-counts muted', text: `Step Functions: ${sf.join(' · ')}` }));
    box.replaceChildren(...parts);
  }

  function setOutcome(outcome) {
    H.filters.outcome = outcome;
    $('outcome-filter').value = outcome;
    writeRoute();
    H.reload();
  }

  async function loadCounts(version) {
    if (!H.countsSupported) return;
    H.countsAt = Date.now();
    try {
      const c = await AW.request(AW.apiURL('v1/executions/counts', filterParams({})));
      if (version !== H.version) return;
      H.counts = c;
    } catch (err) {
      if (err.status === 404 || err.status === 405) {
        H.countsSupported = false;
        H.counts = null;
        return;
      }
      throw err;
    }
  }

  // ---- Loading ------------------------------------------------------------------------

  function showError(err) {
    const box = $('error');
    if (!err) {
      box.hidden = true;
      box.textContent = '';
      return;
    }
    box.textContent = err.local ? err.message : err.field ? `Invalid ${err.field}: ${err.message}` : `Could not load executions: ${err.message}`;
    box.hidden = false;
  }

  // searchLookups finds what a search term names directly, for servers whose listing
  // does not search: the execution of an ARN, the executions of a session id.
  async function searchLookups(term) {
    const found = [];
    const tries = [];
    if (term.startsWith('arn:')) {
      tries.push(AW.request(AW.apiURL(`v1/executions/${encodeURIComponent(term)}`)).then((it) => found.push(it)));
    } else {
      tries.push(AW.request(AW.apiURL(`v1/sessions/${encodeURIComponent(term)}`)).then((v) => {
        found.push(...(v.executions || []));
        if (v.diagnosis) derivedFrom(v);
      }));
    }
    await Promise.allSettled(tries);
    return found;
  }

  function mergeFound(items, found) {
    const arns = new Set(items.map((it) => it.executionArn));
    const extra = found.filter((it) => it.executionArn && !arns.has(it.executionArn));
    return extra.length ? items.concat(extra).sort((a, b) => String(b.startDate).localeCompare(String(a.startDate))) : items;
  }

  async function fetchPage(limit, cursor) {
    const page = await AW.request(AW.apiURL('v1/executions', filterParams({ limit, cursor })));
    let items = page.items || [];
    if (H.filters.q && !cursor) items = mergeFound(items, await searchLookups(H.filters.q));
    return { items, nextCursor: page.nextCursor || null };
  }

  function setPage(page, items, flash) {
    H.items = items;
    H.nextCursor = page.nextCursor || null;
    for (const it of items) noteAgent(it.agentName);
    H.loaded = true;
    render(flash);
    derive();
  }

  H.reload = async () => {
    const version = ++H.version;
    H.counts = null;
    const bad = customRangeError();
    if (bad) {
      setPage({}, [], false);
      showError(bad);
      return;
    }
    try {
      const [page] = await Promise.all([fetchPage(PAGE_SIZE), loadCounts(version)]);
      if (version !== H.version) return;
      setPage(page, page.items, false);
      showError(null);
    } catch (err) {
      if (version !== H.version) return;
      setPage({}, [], false);
      showError(err);
    }
  };

  async function loadMore() {
    if (!H.nextCursor) return;
    const button = $('load-more');
    button.disabled = true;
    const version = ++H.version;
    try {
      const page = await fetchPage(PAGE_SIZE, H.nextCursor);
      if (version !== H.version) return;
      setPage(page, H.items.concat(page.items), false);
      showError(null);
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  }

  // refresh asks again for everything shown, so that new executions appear and changed
  // ones update without a reload. A bad filter is the filter's error, not a lost
  // connection: it is shown once and not retried.
  H.refresh = async () => {
    if (customRangeError()) return;
    const version = H.version;
    const seq = ++H.refreshSeq;
    const limit = Math.min(MAX_LIMIT, Math.max(PAGE_SIZE, H.items.length));
    const now = Date.now();
    // Counts and stuck alerts change less often than the rows: a refresh reads them at
    // most every few seconds (an alerts event reads the stuck ones at once).
    const counts = now - H.countsAt >= COUNTS_EVERY_MS ? loadCounts(version) : null;
    const stuckAlerts = now - H.stuckAt >= STUCK_EVERY_MS ? loadStuck() : null;
    try {
      const [page] = await Promise.all([fetchPage(limit), counts, stuckAlerts]);
      // Refreshes overlap (a live event, a poll): the latest started wins.
      if (version !== H.version || seq !== H.refreshSeq) return;
      setPage(page, page.items, true);
      showError(null);
    } catch (err) {
      if (err.status >= 400 && err.status < 500) {
        showError(err);
        return;
      }
      throw err;
    }
  };

  // applyLive shows the executions a live event carried at once, where they belong under
  // the current filters; the refresh that follows the event reconciles the rest (counts,
  // and what the filters select that the page cannot judge here).
  H.applyLive = (items) => {
    if (!H.loaded || customRangeError()) return;
    const f = H.filters;
    const b = bounds();
    const wanted = f.outcome === 'failed' ? AW.FAILED_OUTCOMES : [f.outcome];
    const oldest = H.items.length ? H.items[H.items.length - 1].startDate : '';
    let changed = false;
    for (const it of items || []) {
      if (!it.executionArn || !it.startDate) continue;
      if ((f.agent && it.agentName !== f.agent) || (f.status && it.status !== f.status)) continue;
      if ((b.from && it.startDate < b.from) || (b.to && it.startDate > b.to)) continue;
      if (f.outcome && it.outcome && !wanted.includes(it.outcome)) continue;
      const i = H.items.findIndex((x) => x.executionArn === it.executionArn);
      if (i >= 0) {
        H.items[i] = it;
        changed = true;
      } else if (!H.nextCursor || it.startDate >= oldest) {
        const at = H.items.findIndex((x) => String(x.startDate) < it.startDate);
        H.items.splice(at < 0 ? H.items.length : at, 0, it);
        noteAgent(it.agentName);
        changed = true;
      }
    }
    if (changed) {
      render(true);
      derive();
    }
  };

  // ---- What the sessions say -----------------------------------------------------

  function derivedFrom(v) {
    const d = v.diagnosis || {};
    const prev = H.derived.get(v.sessionId);
    H.derived.set(v.sessionId, {
      key: prev?.key,
      fetchedAt: Date.now(),
      outcome: d.outcome,
      stage: d.stage,
      errorMessage: d.errorMessage,
      mismatch: d.journalMismatch,
      lastEventAt: v.lastEventAt,
      attempts: (v.executions || []).length === 1 ? attemptsOf(v.timeline) : [],
    });
  }

  // derive reads the sessions of the rows that need them: rows without an outcome,
  // open sessions (their last event), redriven executions (their attempts).
  function derive() {
    const now = Date.now();
    for (const it of H.items.slice(0, DERIVE_MAX_ROWS)) {
      const id = it.sessionId;
      if (!id || H.deriving.has(id)) continue;
      const needs = !it.outcome || isOpen(it) || it.redriveCount > 0;
      if (!needs) continue;
      const key = [it.status, it.stopDate, it.redriveCount, it.outcome, it.stage].join('|');
      const d = H.derived.get(id);
      const fresh = d && d.key === key && !(isOpen(it) && now - d.fetchedAt > DERIVE_OPEN_EVERY_MS);
      if (fresh) continue;
      H.deriving.add(id);
      AW.sessionView(id).then((v) => {
        derivedFrom(v);
        H.derived.get(id).key = key;
      }, () => {
        H.derived.set(id, { key, fetchedAt: Date.now() });
      }).finally(() => {
        H.deriving.delete(id);
        renderSoon();
      });
    }
  }

  let renderTimer = 0;
  function renderSoon() {
    clearTimeout(renderTimer);
    renderTimer = setTimeout(() => render(false), 30);
  }

  // loadStuck reads the unresolved stuck alerts (open or acknowledged), for the rows'
  // "silent for" and their stuck mark.
  async function loadStuck() {
    H.stuckAt = Date.now();
    const pages = await Promise.all(['open', 'acknowledged'].map((state) => AW.request(AW.apiURL('v1/alerts', { state, kind: 'stuck', limit: 500 }))));
    const m = new Map();
    for (const p of pages) for (const a of p.items || []) m.set(a.sessionId, a);
    H.stuck = m;
  }
  H.loadStuck = loadStuck;
  H.rerender = () => render(false);

  // tickSilence keeps the "silent for" texts current between refreshes.
  function tickSilence() {
    for (const n of document.querySelectorAll('.silent[data-since]')) {
      n.textContent = `silent for ${AW.fmtSeconds(AW.secondsSince(n.dataset.since))}`;
    }
    for (const n of document.querySelectorAll('.silent-since[data-since]')) {
      n.textContent = AW.fmtSeconds(AW.secondsSince(n.dataset.since));
    }
  }

  // ---- Agents ---------------------------------------------------------------------------

  function noteAgent(name) {
    if (!name || H.agents.has(name)) return;
    H.agents.add(name);
    fillAgents();
    AW.agent?.noteAgents?.();
  }

  function fillAgents() {
    const select = $('agent-filter');
    const names = [...H.agents];
    if (H.filters.agent && !H.agents.has(H.filters.agent)) names.push(H.filters.agent);
    names.sort((a, b) => a.localeCompare(b));
    select.replaceChildren(el('option', { value: '', text: 'All agents' }), ...names.map((n) => el('option', { value: n, text: n })));
    select.value = H.filters.agent;
  }

  H.loadAgents = async () => {
    const from = new Date(Date.now() - 30 * 86400000).toISOString().slice(0, 10);
    const stats = await AW.request(AW.apiURL('v1/stats', { granularity: 'day', from }));
    for (const v of stats.items || []) if (v.agentName) H.agents.add(v.agentName);
    fillAgents();
    AW.agent?.noteAgents?.();
  };

  // ---- Wiring ---------------------------------------------------------------------------

  H.syncControls = () => {
    const f = H.filters;
    $('search').value = f.q;
    $('status-filter').value = f.status;
    $('outcome-filter').value = f.outcome;
    $('range-filter').value = f.range;
    $('range-filter').disabled = Boolean(f.q);
    $('range-filter').title = f.q ? 'A search looks at every date' : '';
    $('from-filter').value = f.from;
    $('to-filter').value = f.to;
    $('custom-range').hidden = f.range !== 'custom' || Boolean(f.q);
    fillAgents();
  };

  function onFilterChange() {
    const f = H.filters;
    f.agent = $('agent-filter').value;
    f.status = $('status-filter').value;
    f.outcome = $('outcome-filter').value;
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
    H.syncControls();
    writeRoute();
    H.reload();
  }

  let searchTimer = 0;
  function onSearch(now) {
    clearTimeout(searchTimer);
    const run = () => {
      const q = $('search').value.trim();
      if (q === H.filters.q) return;
      H.filters.q = q;
      H.syncControls();
      writeRoute();
      H.reload();
    };
    if (now) run();
    else searchTimer = setTimeout(run, 350);
  }

  H.init = () => {
    for (const id of ['agent-filter', 'status-filter', 'outcome-filter', 'range-filter', 'from-filter', 'to-filter']) {
      $(id).addEventListener('change', onFilterChange);
    }
    $('search').addEventListener('input', () => onSearch(false));
    $('search').addEventListener('search', () => onSearch(true));
    $('filters').addEventListener('submit', (e) => {
      e.preventDefault();
      onSearch(true);
    });
    $('load-more').addEventListener('click', loadMore);
    setInterval(tickSilence, 1000);
  };
})();
