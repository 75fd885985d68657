// agentwatch History page: what every view shares. Plain JavaScript, no framework, no
// build step; the views (history.js, session.js, agent.js, alerts.js) and app.js, which
// wires them, hang off window.AW. Every value that comes from the API is inserted as
// text, never as HTML.
'use strict';

(() => {
  const AW = (window.AW = {});

  // ---- Settings ------------------------------------------------------------------

  let conf = {};
  try {
    conf = JSON.parse(document.querySelector('meta[name="agentwatch-config"]')?.content || '{}');
  } catch {
    conf = {};
  }
  AW.config = {
    pollMs: Number(conf.pollMs) || 2000,
    consoleUrl: conf.consoleUrl || '',
    logLinks: Array.isArray(conf.logLinks) ? conf.logLinks : [],
  };

  // ---- Vocabulary ----------------------------------------------------------------

  AW.STATUS_ICONS = {
    RUNNING: '⚡', SUCCEEDED: '✓', FAILED: '✗', TIMED_OUT: '◷', ABORTED: '⊘', PENDING_REDRIVE: '↻',
  };
  // OUTCOMES: label and tone of each agent outcome; tone picks the colour.
  AW.OUTCOMES = {
    completed: { label: 'Completed', icon: '✓', tone: 'ok' },
    in_progress: { label: 'In progress', icon: '⚡', tone: 'run' },
    invocation_failed: { label: 'Invocation failed', icon: '✗', tone: 'fail', scenario: 1 },
    entrypoint_failed: { label: 'Entrypoint failed', icon: '✗', tone: 'fail', scenario: 2 },
    background_task_failed: { label: 'Background task failed', icon: '✗', tone: 'fail', scenario: 3 },
    missing_completion: { label: 'Missing completion', icon: '✗', tone: 'fail', scenario: 4 },
    never_started: { label: 'Never started', icon: '✗', tone: 'fail' },
    aborted: { label: 'Aborted', icon: '⊘', tone: 'warn' },
    execution_only: { label: 'Execution only', icon: '○', tone: 'neutral' },
    empty: { label: 'No events', icon: '○', tone: 'neutral' },
  };
  AW.FAILED_OUTCOMES = Object.keys(AW.OUTCOMES).filter((o) => AW.OUTCOMES[o].tone === 'fail');
  AW.SCENARIOS = {
    1: 'Lambda invocation failure',
    2: 'Agent entrypoint failure',
    3: 'Background task failure',
    4: 'Missing completion event',
  };
  AW.STAGES = {
    initiated: 'Initiated',
    invocation: 'Invocation',
    entrypoint: 'Entrypoint',
    background_task: 'Background task',
    missing_completion: 'Missing completion',
    done: 'Done',
  };
  AW.KINDS = {
    stuck: 'Stuck session',
    missing_completion: 'Missing completion',
    never_started: 'Never started',
    journal_mismatch: 'Journal mismatch',
    recovered: 'Recovered',
  };
  AW.EVENT_INFO = {
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

  // ---- DOM -----------------------------------------------------------------------

  AW.$ = (id) => document.getElementById(id);

  // el builds an element: attrs may hold class, text, dataset, on<event> handlers and
  // plain attributes; children are nodes or strings (inserted as text).
  function el(tag, attrs = {}, ...children) {
    const n = document.createElement(tag);
    setAttrs(n, attrs);
    append(n, children);
    return n;
  }

  // svg builds an SVG element the same way.
  function svg(tag, attrs = {}, ...children) {
    const n = document.createElementNS('http://www.w3.org/2000/svg', tag);
    setAttrs(n, attrs);
    append(n, children);
    return n;
  }

  function setAttrs(n, attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') n.setAttribute('class', v);
      else if (k === 'text') n.textContent = v;
      else if (k === 'dataset') Object.assign(n.dataset, v);
      else if (k === 'style' && typeof v === 'object') Object.assign(n.style, v);
      else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(n, children) {
    for (const c of children.flat(Infinity)) {
      if (c == null || c === false) continue;
      n.append(c instanceof Node ? c : String(c));
    }
  }

  AW.el = el;
  AW.svg = svg;

  // ---- API -----------------------------------------------------------------------

  AW.apiURL = (path, params = {}) => {
    const u = new URL(path, document.baseURI);
    for (const [k, v] of Object.entries(params)) {
      if (v !== '' && v != null) u.searchParams.set(k, v);
    }
    return u;
  };

  // request fetches JSON from this server, with the page's cookies (same origin), and
  // revalidates with ETags. A failure is an Error with status and field.
  AW.request = async (url, init = {}) => {
    const res = await fetch(url, {
      cache: 'no-cache', credentials: 'same-origin', headers: { Accept: 'application/json' }, ...init,
    });
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
  };

  // ---- Formatting ----------------------------------------------------------------

  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
  const fullFmt = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
    timeZoneName: 'short',
  });
  const numFmt = new Intl.NumberFormat();
  AW.timeFmt = timeFmt;

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  // fmtStart is "12:35:00" today, "Nov 3 12:35:00" on other days.
  AW.fmtStart = (iso) => {
    if (!iso) return '-';
    const d = new Date(iso);
    return sameDay(d, new Date()) ? timeFmt.format(d) : `${dayFmt.format(d)} ${timeFmt.format(d)}`;
  };
  AW.fmtFull = (iso) => (iso ? fullFmt.format(new Date(iso)) : '-');
  AW.fmtClock = (iso) => {
    const d = new Date(iso);
    return `${timeFmt.format(d)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  };
  AW.fmtNum = (n) => numFmt.format(n || 0);

  // fmtSeconds renders a duration the way seed 000 does ("10s"), growing units as
  // needed: "0.4s", "10s", "1m 05s", "2h 03m", "3d 04h".
  AW.fmtSeconds = (s) => {
    if (s == null || Number.isNaN(s)) return '-';
    if (s < 1) return `${Math.max(0, s).toFixed(1).replace(/\.0$/, '')}s`;
    if (s < 60) return `${Math.round(s)}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h}h ${String(m - h * 60).padStart(2, '0')}m`;
    const d = Math.floor(h / 24);
    return `${d}d ${String(h - d * 24).padStart(2, '0')}h`;
  };

  // fmtDelta renders milliseconds between events: "+120ms", "+1.2s", "+5m 41s".
  AW.fmtDelta = (ms) => {
    if (ms < 1000) return `+${ms}ms`;
    if (ms < 60000) return `+${(ms / 1000).toFixed(1).replace(/\.0$/, '')}s`;
    return `+${AW.fmtSeconds(ms / 1000)}`;
  };

  AW.fmtAgo = (iso) => {
    const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (s < 60) return 'just now';
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  };

  AW.secondsSince = (iso) => Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);

  AW.plural = (n, one, many) => `${AW.fmtNum(n)} ${n === 1 ? one : many || `${one}s`}`;

  AW.statusBadge = (status) => el('span', { class: `badge s-${status}` },
    el('span', { class: 'icon', 'aria-hidden': 'true', text: AW.STATUS_ICONS[status] || '•' }),
    status);

  AW.outcomeTone = (outcome) => AW.OUTCOMES[outcome]?.tone || 'neutral';

  AW.outcomeBadge = (outcome) => {
    const o = AW.OUTCOMES[outcome];
    if (!outcome) return el('span', { class: 'badge t-pending', title: 'The outcome is being read from the journal', text: '…' });
    return el('span', { class: `badge t-${o?.tone || 'neutral'} o-${outcome}` },
      el('span', { class: 'icon', 'aria-hidden': 'true', text: o?.icon || '•' }),
      o?.label || outcome);
  };

  // disagrees reports whether Step Functions' status contradicts the agent's outcome:
  // a failed agent in a SUCCEEDED execution, or a completed one in a FAILED execution.
  AW.disagrees = (outcome, status) => {
    const tone = AW.outcomeTone(outcome);
    if (tone === 'fail') return status === 'SUCCEEDED';
    if (outcome === 'completed') return status === 'FAILED' || status === 'TIMED_OUT' || status === 'ABORTED';
    return false;
  };

  // ---- Links ---------------------------------------------------------------------

  // arnParts reads partition and region from an ARN.
  AW.arnParts = (arn) => {
    const p = String(arn || '').split(':');
    return { partition: p[1] || 'aws', region: p[3] || '' };
  };

  const CONSOLE_HOSTS = { aws: 'console.aws.amazon.com', 'aws-cn': 'console.amazonaws.cn', 'aws-us-gov': 'console.amazonaws-us-gov.com' };

  // fillTemplate replaces {name} with the execution's values, percent-encoded except
  // for ':' and '/', which ARNs hold and consoles expect as they are.
  AW.fillTemplate = (tmpl, it, now = Date.now()) => {
    const { region } = AW.arnParts(it.executionArn);
    const values = {
      region,
      executionArn: it.executionArn || '',
      sessionId: it.sessionId || '',
      executionName: it.executionName || '',
      agentName: it.agentName || '',
      startMs: it.startDate ? String(new Date(it.startDate).getTime()) : '',
      stopMs: String(it.stopDate ? new Date(it.stopDate).getTime() : now),
    };
    return tmpl.replace(/\{([a-zA-Z]+)\}/g, (m, name) => (name in values
      ? encodeURIComponent(values[name]).replace(/%3A/gi, ':').replace(/%2F/gi, '/')
      : m));
  };

  // executionLinks are the links of one execution: the Step Functions console (the
  // ARN's partition and region, unless configured) and the configured log links.
  AW.executionLinks = (it) => {
    const links = [];
    if (!it.executionArn) return links;
    let console = AW.config.consoleUrl;
    if (console !== 'none') {
      if (!console) {
        const { partition, region } = AW.arnParts(it.executionArn);
        const host = CONSOLE_HOSTS[partition] || CONSOLE_HOSTS.aws;
        console = region ? `https://${region}.${host}/states/home?region={region}#/v2/executions/details/{executionArn}` : '';
      }
      if (console) links.push({ label: 'Step Functions console', url: AW.fillTemplate(console, it), kind: 'console' });
    }
    for (const l of AW.config.logLinks) links.push({ label: l.label, url: AW.fillTemplate(l.url, it), kind: 'logs' });
    return links;
  };

  AW.linkList = (it, cls = 'links') => {
    const links = AW.executionLinks(it);
    if (!links.length) return null;
    return el('span', { class: cls }, links.map((l) => el('a', {
      href: l.url, target: '_blank', rel: 'noopener noreferrer', class: `ext-link l-${l.kind}`, text: `${l.label} ↗`,
    })));
  };

  // ---- Errors --------------------------------------------------------------------

  // parseErrorJSON finds a JSON object in an error text ("States.TaskFailed: {...}" or
  // the object alone): Lambda error payloads, whose stack traces hold escaped \n.
  function parseErrorJSON(text) {
    const i = text.indexOf('{');
    if (i < 0) return null;
    try {
      const v = JSON.parse(text.slice(i));
      return v && typeof v === 'object' ? { prefix: text.slice(0, i).replace(/[:\s]+$/, ''), value: v } : null;
    } catch {
      return null;
    }
  }

  // errorCore is what identifies an error for de-duplication: the Lambda payload's
  // errorMessage, or the text, with whitespace folded.
  AW.errorCore = (text) => {
    const j = parseErrorJSON(String(text || ''));
    const core = j && typeof j.value.errorMessage === 'string' ? j.value.errorMessage : String(text || '');
    return core.replace(/\\n/g, '\n').replace(/\s+/g, ' ').trim();
  };

  // prettyError renders an error text: a Lambda error payload as its type, message and
  // stack trace (real line breaks), other JSON indented, plain text with its escaped
  // \n turned into line breaks.
  AW.prettyError = (text) => {
    text = String(text || '');
    const j = parseErrorJSON(text);
    if (!j) return el('pre', { class: 'error-text', text: text.replace(/\\n/g, '\n') });
    const v = j.value;
    const parts = [];
    // "States.TaskFailed: {...}" keeps its prefix; "ClientError: {errorType: ClientError}"
    // would say it twice.
    if (j.prefix && j.prefix !== v.errorType) parts.push(el('div', { class: 'err-prefix', text: j.prefix }));
    if (typeof v.errorMessage === 'string' || typeof v.errorType === 'string') {
      parts.push(el('div', { class: 'err-head' },
        v.errorType ? el('strong', { text: `${v.errorType}: ` }) : null,
        String(v.errorMessage ?? '').replace(/\\n/g, '\n')));
      const trace = Array.isArray(v.stackTrace) ? v.stackTrace.map(String).join('') : v.stackTrace;
      if (trace) parts.push(el('div', { class: 'err-trace', text: String(trace).replace(/\\n/g, '\n') }));
      const rest = { ...v };
      delete rest.errorMessage;
      delete rest.errorType;
      delete rest.stackTrace;
      if (Object.keys(rest).length) parts.push(el('div', { class: 'err-rest', text: JSON.stringify(rest, null, 2) }));
    } else {
      parts.push(el('div', { class: 'err-rest', text: JSON.stringify(v, null, 2).replace(/\\n/g, '\n') }));
    }
    return el('pre', { class: 'error-text' }, parts);
  };

  // ---- Navigation state ------------------------------------------------------------

  // AW.route is the page's state as the address says it; views read and change it
  // through AW.setRoute, which writes the address (replace, or push for a new view).
  AW.route = new URLSearchParams(location.search);
  const listeners = [];
  AW.onRoute = (fn) => listeners.push(fn);
  AW.setRoute = (changes, { push = false } = {}) => {
    const q = new URLSearchParams(AW.route);
    for (const [k, v] of Object.entries(changes)) {
      if (v == null || v === '') q.delete(k);
      else q.set(k, v);
    }
    AW.route = q;
    const s = q.toString();
    const url = s ? `?${s}` : location.pathname;
    if (push) history.pushState(null, '', url);
    else history.replaceState(null, '', url);
    for (const fn of listeners) fn(changes);
  };
  window.addEventListener('popstate', () => {
    AW.route = new URLSearchParams(location.search);
    for (const fn of listeners) fn(null);
  });

  // ---- Shared fetch of session views ----------------------------------------------

  // sessionView fetches GET /v1/sessions/{id}; two at a time, so that a page of rows
  // whose outcome must be read from their sessions neither floods the server nor takes
  // the connections (a browser opens six per server) that the page's own refreshes need.
  const queue = [];
  let active = 0;
  const MAX_ACTIVE = 2;
  AW.sessionView = (id) => new Promise((resolve, reject) => {
    queue.push({ id, resolve, reject });
    pump();
  });
  function pump() {
    while (active < MAX_ACTIVE && queue.length) {
      const { id, resolve, reject } = queue.shift();
      active++;
      AW.request(AW.apiURL(`v1/sessions/${encodeURIComponent(id)}`))
        .then(resolve, reject)
        .finally(() => {
          active--;
          pump();
        });
    }
  }
})();
