// The alerts view: alerts newest first, a page at a time (GET /v1/alerts with its
// cursor), filtered by state and kind, with the true counts (GET /v1/alerts/counts).
// Acknowledging an alert takes it off the open list and out of the badge's count.
'use strict';

(() => {
  const { $, el } = AW;
  const PAGE_SIZE = 25;
  const STATES = ['open', 'acknowledged', 'resolved', 'all'];

  const L = (AW.alerts = {
    state: 'open',
    kind: '',
    cursors: [''], // cursors[i] starts page i
    page: 0,
    nextCursor: null,
    json: '',
    counts: null,
    seq: 0,
  });

  L.readRoute = () => {
    const q = AW.route;
    const st = q.get('state');
    const kind = q.get('kind') || '';
    const changed = (STATES.includes(st) ? st : 'open') !== L.state || (AW.KINDS[kind] ? kind : '') !== L.kind;
    L.state = STATES.includes(st) ? st : 'open';
    L.kind = AW.KINDS[kind] ? kind : '';
    if (changed) {
      L.cursors = [''];
      L.page = 0;
    }
  };

  function writeRoute() {
    AW.setRoute({ state: L.state === 'open' ? '' : L.state, kind: L.kind });
  }

  // ---- One alert ----------------------------------------------------------------------

  function stateOf(a) {
    if (a.kind === 'recovered') return 'recovered';
    if (a.resolvedAt) return 'resolved';
    if (a.ackedAt) return 'acknowledged';
    return 'open';
  }

  async function ack(a, button) {
    button.disabled = true;
    try {
      await AW.request(AW.apiURL(`v1/alerts/${encodeURIComponent(a.sessionId)}/${encodeURIComponent(a.kind)}/ack`), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ by: 'history page' }),
      });
      await Promise.all([L.loadBadge(), L.load(true), AW.history.loadStuck().catch(() => {})]);
      if (AW.session.id === a.sessionId) await AW.session.refresh(true);
    } catch (err) {
      button.disabled = false;
      button.title = err.message;
    }
  }

  // item renders one alert. Its summary is what was true when it was raised; where the
  // session has moved on (currentOutcome differs), it says so instead of contradicting
  // the session's diagnosis.
  L.item = (a, { compact = false, currentOutcome = '' } = {}) => {
    const state = stateOf(a);
    const raisedOutcome = a.diagnosis?.outcome;
    const moved = currentOutcome && raisedOutcome && raisedOutcome !== currentOutcome;
    const status = {
      open: el('span', { class: 'state-tag st-open', text: 'Open' }),
      acknowledged: el('span', { class: 'state-tag st-acked', text: `Acknowledged by ${a.ackedBy || 'someone'}`, title: AW.fmtFull(a.ackedAt) }),
      resolved: el('span', { class: 'state-tag st-resolved', text: `Resolved ${AW.fmtAgo(a.resolvedAt)}`, title: AW.fmtFull(a.resolvedAt) }),
      recovered: el('span', { class: 'state-tag st-resolved', text: 'Recovery' }),
    }[state];
    return el('li', { class: `alert-item k-${a.kind} st-${state}`, dataset: { session: a.sessionId, kind: a.kind, state } },
      el('div', { class: 'alert-main' },
        el('div', { class: 'alert-head' },
          el('span', { class: 'alert-kind', text: AW.KINDS[a.kind] || a.kind }),
          status),
        compact ? null : el('p', { class: 'alert-who muted' }, `${a.agentName || 'unknown agent'} · `, el('span', { class: 'mono', text: a.sessionId }))),
      el('time', { class: 'alert-time muted', datetime: a.raisedAt, title: AW.fmtFull(a.raisedAt), text: AW.fmtAgo(a.raisedAt) }),
      el('div', { class: 'alert-text' },
        a.diagnosis?.summary ? el('p', { class: 'alert-summary' }, el('span', { class: 'muted', text: 'When raised: ' }), AW.errorCore(a.diagnosis.summary)) : null,
        moved ? el('p', { class: 'alert-moved', text: `The session has moved on: it is now ${AW.OUTCOMES[currentOutcome]?.label.toLowerCase() || currentOutcome}.` }) : null),
      el('div', { class: 'alert-actions' },
        compact ? null : el('button', { type: 'button', class: 'link-button view', onclick: () => AW.session.open(a.sessionId), text: 'View session' }),
        state === 'open' ? el('button', { type: 'button', class: 'chip ack', onclick: (e) => ack(a, e.currentTarget), text: 'Acknowledge' }) : null));
  };

  // ---- The badge ----------------------------------------------------------------------

  L.setBadge = (n) => {
    const count = $('alerts-count');
    count.textContent = AW.fmtNum(n);
    count.dataset.n = String(n);
    count.setAttribute('aria-label', `${AW.plural(n, 'open alert')}`);
  };

  L.loadBadge = async () => {
    const c = await AW.request(AW.apiURL('v1/alerts/counts', { state: 'open' }));
    L.setBadge(c.total);
  };

  // ---- The view -----------------------------------------------------------------------

  function showError(err) {
    const box = $('alerts-error');
    box.hidden = !err;
    box.textContent = err ? (err.field ? `Invalid ${err.field}: ${err.message}` : `Could not load alerts: ${err.message}`) : '';
  }

  function renderSummary() {
    const c = L.counts;
    const box = $('alerts-summary');
    if (!c) {
      box.replaceChildren();
      return;
    }
    const label = L.state === 'all' ? 'alert' : `${L.state} alert`;
    const parts = [el('span', { class: 'total', id: 'alerts-total', dataset: { n: String(c.total) } }, AW.plural(c.total, label))];
    for (const [k, n] of Object.entries(c.byKind || {})) {
      parts.push(el('button', {
        type: 'button', class: `count-chip${L.kind === k ? ' is-on' : ''}`, 'aria-pressed': String(L.kind === k),
        onclick: () => {
          L.kind = L.kind === k ? '' : k;
          $('alert-kind').value = L.kind;
          L.cursors = [''];
          L.page = 0;
          writeRoute();
          L.load(true);
        },
      }, el('strong', { text: AW.fmtNum(n) }), ` ${(AW.KINDS[k] || k).toLowerCase()}`));
    }
    box.replaceChildren(...parts);
  }

  // load shows the current page. Loads overlap (a live event, a click): only the
  // latest one started may show its answer.
  L.load = async (force) => {
    const params = { state: L.state, kind: L.kind };
    const seq = ++L.seq;
    try {
      const [page, counts] = await Promise.all([
        AW.request(AW.apiURL('v1/alerts', { ...params, limit: PAGE_SIZE, cursor: L.cursors[L.page] })),
        AW.request(AW.apiURL('v1/alerts/counts', params)),
      ]);
      if (seq !== L.seq) return undefined;
      L.counts = counts;
      renderSummary();
      showError(null);
      const items = page.items || [];
      if (!items.length && L.page > 0) {
        // The page emptied (its alerts were acknowledged): go back one.
        L.page--;
        return L.load(true);
      }
      L.nextCursor = page.nextCursor || null;
      const json = JSON.stringify(items);
      if (force || json !== L.json) {
        L.json = json;
        $('alerts-list').replaceChildren(...items.map((a) => L.item(a)));
      } else {
        for (const t of $('alerts-list').querySelectorAll('time.alert-time')) t.textContent = AW.fmtAgo(t.dateTime);
      }
      $('alerts-empty').hidden = items.length > 0;
      const first = L.page * PAGE_SIZE + 1;
      $('alerts-page').textContent = items.length ? `${AW.fmtNum(first)}–${AW.fmtNum(first + items.length - 1)} of ${AW.fmtNum(counts.total)}` : '';
      $('alerts-prev').disabled = L.page === 0;
      $('alerts-next').disabled = !L.nextCursor;
    } catch (err) {
      if (seq === L.seq) showError(err);
    }
    return undefined;
  };

  L.syncControls = () => {
    for (const r of document.querySelectorAll('#alert-state input')) r.checked = r.value === L.state;
    $('alert-kind').value = L.kind;
  };

  L.init = () => {
    for (const r of document.querySelectorAll('#alert-state input')) {
      r.addEventListener('change', () => {
        L.state = r.value;
        L.cursors = [''];
        L.page = 0;
        writeRoute();
        L.load(true);
      });
    }
    $('alert-kind').addEventListener('change', (e) => {
      L.kind = e.target.value;
      L.cursors = [''];
      L.page = 0;
      writeRoute();
      L.load(true);
    });
    $('alert-filters').addEventListener('submit', (e) => e.preventDefault());
    $('alerts-next').addEventListener('click', () => {
      if (!L.nextCursor) return;
      L.cursors[L.page + 1] = L.nextCursor;
      L.page++;
      L.load(true);
    });
    $('alerts-prev').addEventListener('click', () => {
      if (L.page === 0) return;
      L.page--;
      L.load(true);
    });
  };
})();
