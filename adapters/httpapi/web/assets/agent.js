// The agent view: one agent's statistics over time (GET /v1/agents/{name}/stats) as
// hand-written SVG charts: sessions by outcome, duration quantiles, failures by stage,
// top errors; per hour or per day. Buckets are UTC hours and days, as the store keeps
// them; every bucket of the range is drawn, empty ones too, so the time axis is true.
'use strict';

(() => {
  const { $, el, svg } = AW;
  const RANGES = { '24h': 1, '7d': 7, '30d': 30 };
  const OUTCOME_SERIES = ['completed', 'in_progress', 'invocation_failed', 'entrypoint_failed', 'background_task_failed',
    'missing_completion', 'never_started', 'aborted', 'execution_only'];
  const FAILURE_SERIES = [
    { key: 'invocation', label: 'Invocation' },
    { key: 'entrypoint', label: 'Entrypoint' },
    { key: 'background_task', label: 'Background task' },
    { key: 'missing_completion', label: 'Missing completion' },
  ];
  const QUANTILES = [
    { key: 'p50', label: 'p50' },
    { key: 'p90', label: 'p90' },
    { key: 'p99', label: 'p99' },
  ];

  const A = (AW.agent = { name: '', granularity: 'day', range: '7d', data: null, json: '', seq: 0 });

  A.readRoute = () => {
    const q = AW.route;
    A.name = q.get('agent') || A.name || '';
    A.granularity = q.get('granularity') === 'hour' ? 'hour' : 'day';
    const r = q.get('range');
    A.range = RANGES[r] ? r : A.granularity === 'hour' ? '24h' : '7d';
  };

  function writeRoute() {
    AW.setRoute({ agent: A.name, granularity: A.granularity, range: A.range });
  }

  // ---- Buckets -----------------------------------------------------------------------

  const hourLabel = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const dayLabel = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
  const hourDay = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

  // bucketKeys lists every bucket of the range, oldest first, as the store names them.
  function bucketKeys(from, granularity) {
    const out = [];
    const step = granularity === 'hour' ? 3600e3 : 86400e3;
    const start = new Date(from);
    if (granularity === 'hour') start.setUTCMinutes(0, 0, 0);
    else start.setUTCHours(0, 0, 0, 0);
    for (let t = start.getTime(); t <= Date.now(); t += step) {
      const iso = new Date(t).toISOString();
      const key = granularity === 'hour' ? `HOUR#${iso.slice(0, 13)}` : `DAY#${iso.slice(0, 10)}`;
      const d = new Date(t);
      let label = granularity === 'hour' ? hourLabel.format(d) : dayLabel.format(d);
      if (granularity === 'hour' && d.getHours() === 0) label = hourDay.format(d);
      out.push({ key, at: t, label });
    }
    return out;
  }

  // ---- Charts ------------------------------------------------------------------------

  const M = { l: 48, r: 10, t: 10, b: 24 };
  const H_CHART = 190;

  // niceMax is the top of a y axis of four steps that reaches v: whole steps for
  // counts (1, 2, 5, 10, ...), round ones for durations (1s, 5s, 15s, 1m, 5m, ...).
  const COUNT_STEPS = [1, 2, 5];
  const DURATION_STEPS = [0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400];
  function niceMax(v, durations) {
    if (v <= 0) return 4;
    const need = v / 4;
    if (durations) return 4 * (DURATION_STEPS.find((s) => s >= need) || Math.ceil(need / 86400) * 86400);
    for (let p = 1; ; p *= 10) {
      const s = (p >= 10 ? [1, 2, 2.5, 5] : COUNT_STEPS).map((m) => m * p).find((x) => x >= need);
      if (s) return 4 * s;
    }
  }

  // fmtAxisSeconds renders a duration tick: "250ms", "15s", "1m", "1m 30s", "2h".
  function fmtAxisSeconds(s) {
    if (s === 0) return '0';
    if (s < 1) return `${Math.round(s * 1000)}ms`;
    if (s < 60) return `${s}s`;
    if (s < 3600) return s % 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s / 60}m`;
    if (s < 86400) return s % 3600 ? `${Math.floor(s / 3600)}h ${Math.round((s % 3600) / 60)}m` : `${s / 3600}h`;
    return `${Math.round(s / 8640) / 10}d`;
  }

  function axes(g, buckets, w, max, fmt) {
    const plotH = H_CHART - M.t - M.b;
    for (let i = 0; i <= 4; i++) {
      const v = (max / 4) * i;
      const y = M.t + plotH - (v / max) * plotH;
      g.append(svg('line', { x1: M.l, x2: w - M.r, y1: y, y2: y, class: i ? 'grid' : 'axis' }));
      g.append(svg('text', { x: M.l - 6, y: y + 4, class: 'ylab', 'text-anchor': 'end', text: fmt(v) }));
    }
    const band = (w - M.l - M.r) / buckets.length;
    const every = Math.max(1, Math.ceil(buckets.length / Math.max(1, Math.floor((w - M.l - M.r) / 56))));
    buckets.forEach((b, i) => {
      if (i % every) return;
      g.append(svg('text', { x: M.l + band * (i + 0.5), y: H_CHART - 6, class: 'xlab', 'text-anchor': 'middle', text: b.label }));
    });
    return band;
  }

  function chartFrame(id, title, summary, legend, build) {
    const box = el('figure', { class: 'chart', id });
    const draw = () => {
      const w = Math.max(280, Math.floor(box.clientWidth || 640));
      const root = svg('svg', { width: w, height: H_CHART, viewBox: `0 0 ${w} ${H_CHART}`, role: 'img', 'aria-label': `${title}: ${summary}` });
      build(root, w);
      box.querySelector('svg')?.remove();
      box.insertBefore(root, box.querySelector('figcaption'));
    };
    box.append(el('figcaption', {}, el('span', { class: 'chart-title', text: title }), legend));
    box.draw = draw;
    return box;
  }

  function legendOf(series) {
    return el('ul', { class: 'legend' }, series.map((s) => el('li', { class: `lg-${s.cls}` },
      el('span', { class: 'swatch', 'aria-hidden': 'true' }), `${s.label}${s.total != null ? ` ${AW.fmtNum(s.total)}` : ''}`)));
  }

  // stackedBars draws one stacked bar per bucket.
  function stackedBars(id, title, buckets, series, valueOf) {
    const totals = series.map((s) => buckets.reduce((n, b) => n + valueOf(b, s.key), 0));
    const shown = series.map((s, i) => ({ ...s, total: totals[i] })).filter((s) => s.total > 0);
    const sum = totals.reduce((a, b) => a + b, 0);
    const max = niceMax(Math.max(0, ...buckets.map((b) => shown.reduce((n, s) => n + valueOf(b, s.key), 0))));
    const summary = sum ? shown.map((s) => `${s.label} ${s.total}`).join(', ') : 'none in this range';
    return chartFrame(id, title, summary, legendOf(shown), (root, w) => {
      const g = svg('g');
      root.append(g);
      const band = axes(g, buckets, w, max, (v) => (Number.isInteger(v) ? AW.fmtNum(v) : v.toFixed(1)));
      const plotH = H_CHART - M.t - M.b;
      const bw = Math.max(1, band * 0.72);
      buckets.forEach((b, i) => {
        let y = M.t + plotH;
        const x = M.l + band * i + (band - bw) / 2;
        const parts = [];
        for (const s of shown) {
          const v = valueOf(b, s.key);
          if (!v) continue;
          const h = (v / max) * plotH;
          y -= h;
          parts.push(`${s.label} ${v}`);
          g.append(svg('rect', { x, y, width: bw, height: Math.max(h, 0.5), class: `bar lg-${s.cls}`, dataset: { bucket: b.key, series: s.key } },
            svg('title', { text: `${b.label}: ${s.label} ${v}` })));
        }
        if (!parts.length) g.append(svg('rect', { x, y: M.t + plotH - 1, width: bw, height: 1, class: 'bar empty', dataset: { bucket: b.key } }));
      });
    });
  }

  // lines draws the duration quantiles per bucket, broken where a bucket had none.
  function quantileLines(id, title, buckets, statsOf) {
    const values = buckets.map((b) => statsOf(b)?.durationSeconds);
    const max = niceMax(Math.max(0, ...values.filter((q) => q?.count).map((q) => q.p99)), true);
    const has = values.some((q) => q?.count);
    const series = QUANTILES.map((q) => ({ ...q, cls: q.key }));
    const summary = has ? QUANTILES.map((q) => `${q.label} up to ${AW.fmtSeconds(Math.max(...values.filter((v) => v?.count).map((v) => v[q.key])))}`).join(', ') : 'no finished sessions in this range';
    return chartFrame(id, title, summary, legendOf(series), (root, w) => {
      const g = svg('g');
      const lines = svg('g');
      const points = svg('g');
      root.append(g, lines, points);
      const band = axes(g, buckets, w, max, fmtAxisSeconds);
      const plotH = H_CHART - M.t - M.b;
      const y = (v) => M.t + plotH - (v / max) * plotH;
      for (const q of QUANTILES) {
        let d = '';
        let pen = false;
        values.forEach((v, i) => {
          if (!v?.count) {
            pen = false;
            return;
          }
          const x = M.l + band * (i + 0.5);
          d += `${pen ? 'L' : 'M'}${x.toFixed(1)},${y(v[q.key]).toFixed(1)}`;
          pen = true;
          points.append(svg('circle', { cx: x, cy: y(v[q.key]), r: buckets.length > 60 ? 1.5 : 3, class: `pt q-${q.key}`, dataset: { bucket: buckets[i].key } },
            svg('title', { text: `${buckets[i].label}: ${q.label} ${AW.fmtSeconds(v[q.key])} (${v.count} sessions)` })));
        });
        if (d) lines.append(svg('path', { d, class: `line q-${q.key}` }));
      }
    });
  }

  function topErrors(total) {
    const errs = total.topErrors || [];
    const max = Math.max(1, ...errs.map((e) => e.count));
    return el('figure', { class: 'chart', id: 'chart-errors' },
      el('figcaption', {}, el('span', { class: 'chart-title', text: 'Top errors' })),
      errs.length
        ? el('ol', { class: 'hbars' }, errs.map((e) => el('li', {},
          el('span', { class: 'hbar-label mono', title: e.class, text: e.class }),
          el('span', { class: 'hbar-track' }, el('span', { class: 'hbar', style: { width: `${(e.count / max) * 100}%` } })),
          el('span', { class: 'hbar-n', text: AW.fmtNum(e.count) }))))
        : el('p', { class: 'muted', text: 'No errors in this range.' }));
  }

  function tiles(total) {
    const outcomes = total.outcomes || {};
    const done = Object.values(outcomes).reduce((a, b) => a + b, 0);
    const failed = AW.FAILED_OUTCOMES.reduce((n, o) => n + (outcomes[o] || 0), 0);
    const d = total.durationSeconds || {};
    const tile = (label, value, tone) => el('div', { class: `tile${tone ? ` t-${tone}` : ''}` },
      el('span', { class: 'tile-value', text: value }), el('span', { class: 'tile-label', text: label }));
    return el('div', { class: 'tiles' },
      tile('sessions started', AW.fmtNum(total.started)),
      tile('completed', done ? `${Math.round(((outcomes.completed || 0) / done) * 100)}%` : '-', 'ok'),
      tile('agent failures', AW.fmtNum(failed), failed ? 'fail' : ''),
      tile('p50 duration', d.count ? AW.fmtSeconds(d.p50) : '-'),
      tile('p99 duration', d.count ? AW.fmtSeconds(d.p99) : '-'));
  }

  // ---- Loading -------------------------------------------------------------------------

  function showError(err) {
    const box = $('agent-error');
    box.hidden = !err;
    box.textContent = err ? `Could not load the agent's statistics: ${err.message}` : '';
  }

  function render(v, from) {
    const buckets = bucketKeys(from, A.granularity);
    const byKey = new Map((v?.buckets || []).map((b) => [b.bucket, b]));
    const statsOf = (b) => byKey.get(b.key);
    const body = $('agent-body');
    if (!v) {
      body.replaceChildren(el('p', { class: 'empty', text: `No sessions of ${A.name} in this range.` }));
      return;
    }
    const per = A.granularity === 'hour' ? 'per hour' : 'per day';
    const charts = [
      stackedBars('chart-outcomes', `Sessions by outcome, ${per}`, buckets,
        OUTCOME_SERIES.map((o) => ({ key: o, label: AW.OUTCOMES[o].label, cls: `o-${o}` })),
        (b, k) => statsOf(b)?.outcomes?.[k] || 0),
      quantileLines('chart-durations', `Duration p50 / p90 / p99, ${per}`, buckets, statsOf),
      stackedBars('chart-failures', `Failures by stage, ${per}`, buckets,
        FAILURE_SERIES.map((f) => ({ ...f, cls: `f-${f.key}` })),
        (b, k) => statsOf(b)?.failures?.[k] || 0),
    ];
    body.replaceChildren(
      el('p', { class: 'muted agent-range', dataset: { granularity: A.granularity, buckets: String(buckets.length) } },
        `${AW.plural(buckets.length, A.granularity === 'hour' ? 'hourly bucket' : 'daily bucket')} (UTC) since ${AW.fmtFull(new Date(buckets[0]?.at || from).toISOString())}`),
      tiles(v.total || {}),
      el('div', { class: 'charts' }, charts, topErrors(v.total || {})));
    for (const c of charts) c.draw();
  }

  A.load = async (force) => {
    if (!A.name) {
      $('agent-body').replaceChildren(el('p', { class: 'empty', text: 'No agent has statistics yet.' }));
      return;
    }
    const from = new Date(Date.now() - RANGES[A.range] * 86400e3).toISOString();
    const key = [A.name, A.granularity, A.range].join('|');
    const seq = ++A.seq;
    try {
      let v = null;
      try {
        v = await AW.request(AW.apiURL(`v1/agents/${encodeURIComponent(A.name)}/stats`, { granularity: A.granularity, from }));
      } catch (err) {
        if (err.status !== 404) throw err;
      }
      if (seq !== A.seq) return;
      const json = JSON.stringify([key, v]);
      if (!force && json === A.json) return;
      A.json = json;
      showError(null);
      $('agent-title').textContent = A.name;
      render(v, from);
    } catch (err) {
      if (seq === A.seq) showError(err);
    }
  };

  // noteAgents refills the agent picker from the agents the page knows.
  A.noteAgents = () => {
    const names = [...AW.history.agents];
    if (A.name && !names.includes(A.name)) names.push(A.name);
    names.sort((a, b) => a.localeCompare(b));
    const pick = $('agent-pick');
    const had = [...pick.options].map((o) => o.value).join('\n');
    if (had !== names.join('\n')) pick.replaceChildren(...names.map((n) => el('option', { value: n, text: n })));
    if (!A.name && names.length && AW.route.get('view') === 'agent') {
      A.name = names[0];
      writeRoute();
      A.load(true);
    }
    pick.value = A.name;
  };

  A.syncControls = () => {
    A.noteAgents();
    for (const r of document.querySelectorAll('#granularity input')) r.checked = r.value === A.granularity;
    $('agent-range').value = A.range;
  };

  A.init = () => {
    $('agent-pick').addEventListener('change', (e) => {
      A.name = e.target.value;
      writeRoute();
      A.load(true);
    });
    for (const r of document.querySelectorAll('#granularity input')) {
      r.addEventListener('change', () => {
        A.granularity = r.value;
        writeRoute();
        A.load(true);
      });
    }
    $('agent-range').addEventListener('change', (e) => {
      A.range = e.target.value;
      writeRoute();
      A.load(true);
    });
    $('agent-controls').addEventListener('submit', (e) => e.preventDefault());
    let t = 0;
    window.addEventListener('resize', () => {
      clearTimeout(t);
      t = setTimeout(() => {
        for (const c of document.querySelectorAll('#agent-body .chart')) c.draw?.();
      }, 150);
    });
  };
})();
