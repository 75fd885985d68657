// Wiring: the views and their addresses, live updates, and polling.
//
// Live updates: the page listens to GET v1/live (server-sent events). The server reads
// the store for every page at once and says when the newest executions or the alerts
// changed; the page then refreshes what it shows (answers carry ETags, so an unchanged
// refresh costs a 304). Without a stream (an old browser, a proxy that buffers, a
// server at its stream limit) the page polls every poll interval instead; with one it
// still polls, ten times less often, for changes outside the stream's window. Polling
// pauses while the tab is hidden.
'use strict';

(() => {
  const { $ } = AW;
  const VIEWS = ['history', 'agent', 'alerts'];
  const AGENTS_EVERY = 15; // polls between refreshes of the agent list
  const LIVE_RETRY_MS = 30000; // after the server refused a stream
  const TITLES = { history: 'History', agent: 'Agent', alerts: 'Alerts' };

  const app = {
    view: '',
    saved: {}, // view -> its address when last left
    ticking: false,
    polls: 0,
    timer: 0,
  };
  const live = (AW.live = { source: null, connected: false, stats: { hello: 0, executions: 0, alerts: 0 }, retry: 0 });

  // ---- Views ------------------------------------------------------------------------

  function viewOf(route) {
    const v = route.get('view') || 'history';
    return VIEWS.includes(v) ? v : 'history';
  }

  function show(view) {
    const changed = view !== app.view;
    app.view = view;
    for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
    for (const a of document.querySelectorAll('.tabs .tab')) {
      if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    document.title = `${TITLES[view]} · agentwatch`;
    if (view === 'history') {
      AW.history.readRoute();
      AW.history.syncControls();
      AW.history.reload();
    } else if (view === 'agent') {
      AW.agent.readRoute();
      AW.agent.syncControls();
      AW.agent.load(changed);
    } else {
      AW.alerts.readRoute();
      AW.alerts.syncControls();
      AW.alerts.load(true);
    }
  }

  // navigate switches views; each view keeps its own filters in the address, restored
  // when one comes back to it.
  function navigate(view, extra = {}) {
    if (view === app.view && !Object.keys(extra).length) return;
    app.saved[app.view] = AW.route.toString();
    const q = new URLSearchParams(app.saved[view] || '');
    q.set('view', view);
    q.delete('session');
    for (const [k, v] of Object.entries(extra)) {
      if (v) q.set(k, v);
      else q.delete(k);
    }
    if (view === 'history') q.delete('view');
    AW.route = q;
    const s = q.toString();
    history.pushState(null, '', s ? `?${s}` : location.pathname);
    AW.session.close();
    show(view);
    $('main').focus({ preventScroll: true });
  }
  AW.navigate = navigate;

  function onRoute(changes) {
    if (changes === null) {
      // Back or forward: the address is the truth.
      const v = viewOf(AW.route);
      show(v);
      const id = AW.route.get('session');
      if (id) AW.session.open(id);
      else AW.session.close();
    }
  }

  // ---- Live updates -------------------------------------------------------------------

  function setLive(kind, text) {
    $('live').dataset.state = kind;
    $('live').dataset.transport = live.connected ? 'sse' : 'poll';
    $('live-text').textContent = text;
  }

  function pollEvery() {
    return live.connected ? AW.config.pollMs * 10 : AW.config.pollMs;
  }

  // refreshSoon gathers live events into refreshes of what they changed: one at a time,
  // the next no sooner than REFRESH_GAP_MS after the last ended, however fast the events
  // come.
  const REFRESH_GAP_MS = 250;
  let refreshTimer = 0;
  let refreshing = false;
  const pending = new Set();
  function refreshSoon(what) {
    pending.add(what);
    if (!refreshTimer && !refreshing) refreshTimer = setTimeout(flushRefresh, 40);
  }
  async function flushRefresh() {
    refreshTimer = 0;
    const kinds = new Set(pending);
    pending.clear();
    refreshing = true;
    try {
      await refreshView(kinds);
    } catch {
      // The next event or poll tries again.
    } finally {
      refreshing = false;
      if (pending.size) refreshTimer = setTimeout(flushRefresh, REFRESH_GAP_MS);
    }
  }

  // refreshView refreshes the current view for changes of some kinds: executions,
  // alerts, or both ('all').
  async function refreshView(kinds) {
    const execs = kinds.has('all') || kinds.has('executions');
    const alerts = kinds.has('all') || kinds.has('alerts');
    const work = [];
    if (app.view === 'history' && execs) work.push(AW.history.refresh());
    else if (app.view === 'history' && alerts) work.push(AW.history.loadStuck().then(() => AW.history.rerender()));
    if (app.view === 'alerts' && alerts) work.push(AW.alerts.load(false));
    if (app.view === 'agent' && execs) work.push(AW.agent.load(false));
    if (AW.session.id) work.push(AW.session.refresh(false));
    await Promise.all(work);
  }

  function connectLive() {
    clearTimeout(live.retry);
    if (!window.EventSource || live.source) return;
    const es = new EventSource(AW.apiURL('v1/live'), { withCredentials: true });
    live.source = es;
    es.addEventListener('hello', () => {
      live.stats.hello++;
      live.connected = true;
      setLive('live', 'Live');
      schedule();
    });
    es.addEventListener('executions', (e) => {
      live.stats.executions++;
      if (app.view === 'history') {
        try {
          AW.history.applyLive(JSON.parse(e.data).items);
        } catch {
          // The refresh below shows them anyway.
        }
      }
      refreshSoon('executions');
    });
    es.addEventListener('alerts', (e) => {
      live.stats.alerts++;
      try {
        AW.alerts.setBadge(JSON.parse(e.data).open);
      } catch {
        // A bad event changes nothing; the next poll corrects the badge.
      }
      refreshSoon('alerts');
    });
    es.addEventListener('error', () => {
      const wasLive = live.connected;
      live.connected = false;
      if (es.readyState === EventSource.CLOSED) {
        // Refused (too many streams, shutting down): poll, and try again later.
        live.source = null;
        es.close();
        live.retry = setTimeout(connectLive, LIVE_RETRY_MS);
      }
      setLive('polling', `Polling every ${Math.round(AW.config.pollMs / 100) / 10}s`);
      if (wasLive) schedule(true);
    });
  }

  // ---- Polling ------------------------------------------------------------------------

  function schedule(soon) {
    clearTimeout(app.timer);
    app.timer = setTimeout(tick, soon ? 0 : pollEvery());
  }

  // tick polls once and schedules the next poll. Only one runs at a time: a tick asked
  // for while one runs (the tab became visible) leaves the scheduling to it.
  async function tick() {
    clearTimeout(app.timer);
    if (app.ticking) return;
    if (document.hidden) {
      setLive('paused', 'Paused while hidden');
      return;
    }
    app.ticking = true;
    try {
      const work = [refreshView(new Set(['all'])), AW.alerts.loadBadge()];
      if (++app.polls % AGENTS_EVERY === 0) work.push(AW.history.loadAgents());
      await Promise.all(work);
      if (live.connected) setLive('live', 'Live');
      else setLive('polling', `Updated ${AW.timeFmt.format(new Date())} · polling`);
    } catch (err) {
      setLive('error', `Offline · retrying (${err.message})`);
    } finally {
      app.ticking = false;
    }
    schedule();
  }

  // ---- Start --------------------------------------------------------------------------

  function init() {
    AW.history.init();
    AW.session.init();
    AW.agent.init();
    AW.alerts.init();
    AW.onRoute(onRoute);
    for (const a of document.querySelectorAll('.tabs .tab')) {
      a.addEventListener('click', (e) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(a.dataset.view, a.dataset.view === 'agent' && AW.history.filters.agent ? { agent: AW.history.filters.agent } : {});
      });
    }
    $('rows').addEventListener('click', (e) => {
      const a = e.target.closest('a.agent-link');
      if (!a || e.metaKey || e.ctrlKey) return;
      e.preventDefault();
      navigate('agent', { agent: a.dataset.agent });
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) tick();
    });
    // A page kept in the back-forward cache must not keep its stream: browsers allow a
    // handful of connections per server, and cached pages would use them up.
    window.addEventListener('pagehide', () => {
      clearTimeout(live.retry);
      live.source?.close();
      live.source = null;
      live.connected = false;
    });
    window.addEventListener('pageshow', (e) => {
      if (e.persisted) {
        connectLive();
        tick();
      }
    });

    show(viewOf(AW.route));
    const session = AW.route.get('session');
    if (session) AW.session.open(session);
    AW.history.loadAgents().catch(() => {});
    AW.alerts.loadBadge().catch(() => {});
    AW.history.loadStuck().then(() => AW.history.refresh()).catch(() => {});
    setLive('connecting', 'Connecting…');
    connectLive();
    schedule();
  }

  init();
})();
