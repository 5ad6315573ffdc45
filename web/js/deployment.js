// Deployment page: /deployments/<id>?tab=overview|logs|events|configuration
import { get, post, patch, qs, followSse } from './api.js';
import {
  h, replace, clear, badge, timeEl, fmtDate, fmtUsd, fmtMinutes, shortId, errMsg, toast, debounce, spinner, tabList,
  copyButton, confirmDialog, titleCase, refreshTimes, stackLabels, STRATEGIES,
} from './ui.js';
import { setQuery } from './router.js';
import { deploymentActions } from './actions.js';
import { readinessText } from './deployments.js';
import { createLogViewer } from './logs.js';
import { loadMarkets } from './session.js';
import { describeCron } from './deploy.js';

const enc = encodeURIComponent;

export const ERRORISH = new Set([
  'JOB_LIST_ERROR', 'JOB_EXTEND_ERROR', 'JOB_STOP_ERROR', 'RAPID_COMPLETION_THROTTLE', 'RAPID_COMPLETION_FAIL_SAFE',
  'FRPS_TUNNEL_LOST', 'JOB_UNHEALTHY', 'JOB_STARTUP_TIMEOUT', 'JOB_CRASH_LOOP', 'JOB_EXPIRED', 'NODE_LOST',
  'INSUFFICIENT_CREDITS', 'DEPLOYMENT_ERROR', 'TASK_ABANDONED',
]);

export function isErrorEvent(e) {
  if (!e) return false;
  if (ERRORISH.has(e.type) || /_ERROR$|_FAIL/.test(e.type || '')) return true;
  if (e.type === 'JOB_EXITED' && /\((FAILED|CRASH_LOOP|STARTUP_TIMEOUT|NODE_LOST)\)/.test(e.message || '')) return true;
  return false;
}

function normalizeEvent(e) {
  const out = { ...e };
  if (out.type === 'event') out.type = out.event_type;
  delete out.event_type;
  return out;
}

const eventKey = (e) => `${e.created_at}|${e.type}|${e.message}`;

export function curlLine(url) {
  const base = url.endsWith('/') ? url : `${url}/`;
  return `curl ${base}v1/chat/completions -H 'Content-Type: application/json' -d '{"messages":[{"role":"user","content":"Hello"}]}'`;
}

export function endpointsTable(endpoints) {
  const list = Array.isArray(endpoints) ? endpoints : [];
  const rows = list.map((ep) => {
    const serving = ep.status === 'ONLINE';
    return h('tr', { testid: `endpoint-row-${ep.opId}` },
      h('td', null, h('code', null, ep.opId)),
      h('td', { class: 'num' }, String(ep.port ?? '—')),
      h('td', null, badge(ep.status || 'UNKNOWN', { testid: 'endpoint-status' })),
      h('td', { class: 'cell-url' },
        h('span', { class: `endpoint-url mono${serving ? '' : ' struck'}`, testid: 'endpoint-url', title: serving ? 'Serving' : 'Not serving yet' }, ep.url || '—'),
        serving ? null : h('span', { class: 'sr-only' }, ' (not serving)'),
        ep.url ? copyButton(ep.url, { testid: 'copy-endpoint', what: 'endpoint URL' }) : null));
  });
  const first = list.find((e) => e.url);
  const out = h('div', null,
    h('div', { class: 'table-wrap' }, h('table', { class: 'table table-stack', testid: 'endpoints-table' },
      h('caption', { class: 'sr-only' }, 'Endpoints'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Operation'), h('th', { scope: 'col', class: 'num' }, 'Port'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Endpoint URL'))),
      h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: '4', class: 'muted' }, 'This job definition exposes no port.'))))),
    first ? h('div', { class: 'curl' },
      h('p', { class: 'muted small' }, 'Call it (OpenAI-compatible; the base URL for SDKs is the endpoint URL + "v1"):'),
      h('div', { class: 'code-line' }, h('code', { testid: 'curl-command' }, curlLine(first.url)), copyButton(() => curlLine(first.url), { testid: 'copy-curl', what: 'curl command' }))) : null);
  stackLabels(out);
  return out;
}

export async function renderDeployment(main, params, { signal, query }) {
  const id = params.id;
  const base = `/deployments/${enc(id)}`;
  const loading = spinner('Loading deployment…');
  main.appendChild(loading);

  const st = {
    dep: null,
    jobs: new Map(),
    events: [],
    eventKeys: new Set(),
    tasks: [],
    revisions: null,
    markets: [],
    tab: ['overview', 'logs', 'events', 'configuration'].includes(query.get('tab')) ? query.get('tab') : 'overview',
  };

  try {
    const [dep, jobs, events, tasks] = await Promise.all([
      get(base, { signal }),
      get(`${base}/jobs${qs({ limit: 100 })}`, { signal }),
      get(`${base}/events${qs({ limit: 100 })}`, { signal }),
      get(`${base}/tasks${qs({ limit: 100 })}`, { signal }),
    ]);
    st.dep = dep;
    for (const j of (jobs && jobs.jobs) || []) st.jobs.set(j.job, j);
    for (const e of (events && events.events) || []) addEvent(e, false);
    st.tasks = (tasks && tasks.tasks) || [];
  } catch (e) {
    if (e.name === 'AbortError') return;
    loading.remove();
    main.appendChild(h('div', { class: 'page-header' }, h('h1', { class: 'page-title', tabindex: '-1' }, 'Deployment')));
    main.appendChild(h('div', { class: 'banner banner-error', role: 'alert', testid: 'page-error' }, errMsg(e)));
    main.appendChild(h('a', { href: '/deployments', class: 'btn' }, '← Back to Deployments'));
    return;
  }
  loading.remove();
  loadMarkets({ signal }).then((m) => {
    st.markets = m;
    renderDetails();
  }).catch(() => {});

  function addEvent(e, live = true) {
    const ev = normalizeEvent(e);
    const k = eventKey(ev);
    if (st.eventKeys.has(k)) return false;
    st.eventKeys.add(k);
    st.events.push(ev);
    st.events.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    if (st.events.length > 300) st.events.length = 300;
    return live;
  }

  // --- header ---
  const nameEl = h('span', { testid: 'deployment-name' });
  const editBtn = h('button', { type: 'button', class: 'btn btn-small btn-ghost', testid: 'edit-name', 'aria-label': 'Rename deployment' }, '✎ Rename');
  const titleWrap = h('div', { class: 'title-wrap' }, h('h1', { class: 'page-title', tabindex: '-1' }, nameEl), editBtn);
  const statusBadge = h('span', { role: 'status', 'aria-live': 'polite', class: 'badges' });
  const actionsBox = h('div', { class: 'page-actions' });
  const bannerBox = h('div', { testid: 'banner-box' });
  const subline = h('div', { class: 'subline muted small' });
  main.appendChild(h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' }, h('a', { href: '/deployments' }, 'Deployments'), h('span', { 'aria-hidden': 'true' }, ' / '), h('span', { class: 'mono' }, shortId(id, 10))));
  main.appendChild(h('div', { class: 'page-header' }, h('div', null, titleWrap, subline), actionsBox));
  main.appendChild(statusBadge);
  main.appendChild(bannerBox);

  editBtn.addEventListener('click', () => startRename());
  function startRename() {
    if (st.dep.status === 'ARCHIVED') return;
    const input = h('input', { id: 'rename-input', testid: 'name-edit-input', value: st.dep.name || '', maxlength: '100', 'aria-label': 'Deployment name' });
    const save = h('button', { type: 'submit', class: 'btn btn-primary btn-small', testid: 'name-save' }, 'Save');
    const cancel = h('button', { type: 'button', class: 'btn btn-small', testid: 'name-cancel' }, 'Cancel');
    const err = h('span', { class: 'form-error', role: 'alert' });
    const form = h('form', { class: 'rename-form', novalidate: true }, input, save, cancel, err);
    const restore = () => {
      replace(titleWrap, h('h1', { class: 'page-title', tabindex: '-1' }, nameEl), editBtn);
      editBtn.focus();
    };
    cancel.addEventListener('click', restore);
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') {
        ev.preventDefault();
        restore();
      }
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const name = input.value.trim();
      if (!name) {
        err.textContent = 'A name is required.';
        return;
      }
      save.disabled = true;
      try {
        const r = await patch(`${base}/update-name`, { name });
        st.dep.name = r && r.name ? r.name : name;
        renderHeader();
        restore();
        toast('Deployment renamed.');
      } catch (e) {
        err.textContent = errMsg(e);
        save.disabled = false;
      }
    });
    replace(titleWrap, form);
    input.focus();
    input.select();
  }

  let actionsKey = '';
  function renderHeader() {
    const d = st.dep;
    nameEl.textContent = d.name || '(unnamed)';
    document.title = `${d.name || 'Deployment'} · Infera`;
    editBtn.hidden = d.status === 'ARCHIVED';
    replace(statusBadge,
      badge(d.status, { testid: 'deployment-status' }),
      badge(d.health || 'NONE', { testid: 'readiness' }, readinessText(d)));
    replace(subline, h('span', { class: 'mono', title: d.id }, d.id), ' ', copyButton(d.id, { testid: 'copy-deployment-id', what: 'deployment id', label: 'Copy id' }));
    const key = `${d.status}|${d.strategy}|${d.replicas}|${d.timeout}|${d.schedule || ''}|${d.name}`;
    const open = actionsBox.querySelector('[aria-expanded="true"]');
    if (key !== actionsKey && !open) {
      actionsKey = key;
      replace(actionsBox, deploymentActions(d, { after: () => reloadDep(), onCreateRevision: () => openRevisionEditor() }));
    }
    renderBanner();
  }

  let lastBannerKey = '';
  function renderBanner() {
    const d = st.dep;
    const last = st.events.find((e) => e.type !== 'DEPLOYMENT_STATUS_CHANGED' && e.type !== 'DEPLOYMENT_CREATED');
    const lastAny = st.events[0];
    let msg = null;
    if (d.status === 'ERROR') msg = (last && isErrorEvent(last) ? last.message : null) || (lastAny && lastAny.message) || 'The deployment is in ERROR.';
    else if (last && isErrorEvent(last)) msg = last.message;
    else if (lastAny && isErrorEvent(lastAny)) msg = lastAny.message;
    else if (d.status === 'INSUFFICIENT_FUNDS') msg = 'Insufficient credits: new jobs and extensions wait for a top-up.';
    const key = `${d.status}|${msg}`;
    if (key === lastBannerKey) return;
    lastBannerKey = key;
    if (!msg) {
      clear(bannerBox);
      return;
    }
    const detail = h('div', { class: 'small', testid: 'error-banner-detail' });
    replace(bannerBox, h('div', { class: 'banner banner-error', role: 'alert', testid: 'error-banner' },
      h('strong', null, d.status === 'ERROR' ? 'Deployment error: ' : d.status === 'INSUFFICIENT_FUNDS' ? 'Insufficient funds: ' : 'Problem: '),
      h('span', { testid: 'error-banner-message' }, msg),
      detail,
      d.status === 'INSUFFICIENT_FUNDS' ? h('a', { href: '/account#credits', class: 'btn btn-small' }, 'Add credits') : null));
    // The last system error line of the logs says why (model missing, crash…).
    get(`${base}/logs${qs({ type: 'error', limit: 10000 })}`, { signal }).then((r) => {
      const logs = (r && r.logs) || [];
      const lastErr = logs[logs.length - 1];
      if (lastErr && lastErr.message) detail.textContent = `Last error in the logs: ${lastErr.message}`;
    }).catch(() => {});
  }

  // --- tabs ---
  const panels = {
    overview: h('div', { role: 'tabpanel', id: 'panel-overview', 'aria-labelledby': 'tab-overview', testid: 'panel-overview' }),
    logs: h('div', { role: 'tabpanel', id: 'panel-logs', 'aria-labelledby': 'tab-logs', testid: 'panel-logs' }),
    events: h('div', { role: 'tabpanel', id: 'panel-events', 'aria-labelledby': 'tab-events', testid: 'panel-events' }),
    configuration: h('div', { role: 'tabpanel', id: 'panel-configuration', 'aria-labelledby': 'tab-configuration', testid: 'panel-configuration' }),
  };
  const tabs = tabList({
    label: 'Deployment sections',
    tabs: [
      { id: 'overview', label: 'Overview', testid: 'tab-overview', domId: 'tab-overview', controls: 'panel-overview' },
      { id: 'logs', label: 'Logs', testid: 'tab-logs', domId: 'tab-logs', controls: 'panel-logs' },
      { id: 'events', label: 'Events', testid: 'tab-events', domId: 'tab-events', controls: 'panel-events' },
      { id: 'configuration', label: 'Configuration', testid: 'tab-configuration', domId: 'tab-configuration', controls: 'panel-configuration' },
    ],
    active: st.tab,
    onChange: (t) => showTab(t),
  });
  main.appendChild(tabs.el);
  for (const p of Object.values(panels)) main.appendChild(p);

  function showTab(t) {
    st.tab = t;
    for (const [k, p] of Object.entries(panels)) p.hidden = k !== t;
    setQuery({ tab: t === 'overview' ? '' : t });
    if (t === 'logs') ensureLogs();
    if (t === 'configuration') ensureConfig();
    if (t === 'events') renderEvents();
  }

  // --- overview ---
  const detailsBox = h('section', { class: 'card', 'aria-labelledby': 'details-title' });
  const endpointsBox = h('section', { class: 'card', 'aria-labelledby': 'endpoints-title' });
  const jobsBox = h('section', { class: 'card', 'aria-labelledby': 'jobs-title' });
  panels.overview.append(endpointsBox, detailsBox, jobsBox);

  function renderDetails() {
    const d = st.dep;
    const m = st.markets.find((x) => x.address === d.market);
    const spend = [...st.jobs.values()].reduce((a, j) => a + (Number(j.cost_usd) || 0), 0);
    const strat = STRATEGIES.find((x) => x.value === d.strategy);
    const item = (label, value, testid) => [h('dt', null, label), h('dd', { testid }, value)];
    replace(detailsBox,
      h('h2', { id: 'details-title', class: 'card-title' }, 'Details'),
      h('dl', { class: 'details' },
        item('Strategy', strat ? `${strat.label} (${d.strategy})` : d.strategy, 'detail-strategy'),
        item('Replicas', `${d.replicas}`, 'detail-replicas'),
        item('Timeout', fmtMinutes(d.timeout), 'detail-timeout'),
        d.strategy === 'SCHEDULED' ? item('Schedule', d.schedule ? `${d.schedule} — ${describeCron(d.schedule)}` : '—', 'detail-schedule') : null,
        d.strategy === 'INFINITE' && d.rotation_time ? item('Rotation', `${d.rotation_time} min before timeout`, 'detail-rotation') : null,
        item('Market', m ? `${m.name} (${m.slug})` : d.market_slug || shortId(d.market), 'detail-market'),
        item('Template', d.template || '—', 'detail-template'),
        item('Active revision', String(d.active_revision ?? '—'), 'detail-revision'),
        item('Health', titleCase(d.health || 'NONE'), 'detail-health'),
        item('Spend so far', fmtUsd(spend, 4), 'detail-spend'),
        item('Created', fmtDate(d.created_at), 'detail-created'),
        item('Updated', fmtDate(d.updated_at), 'detail-updated'),
        d.next_retry_at ? item('Next retry', fmtDate(d.next_retry_at), 'detail-next-retry') : null));
  }

  let endpointsKey = '';
  function renderEndpoints() {
    const key = JSON.stringify(st.dep.endpoints || []);
    if (key === endpointsKey) return;
    endpointsKey = key;
    replace(endpointsBox, h('h2', { id: 'endpoints-title', class: 'card-title' }, 'Endpoints'), endpointsTable(st.dep.endpoints));
  }

  function renderJobs() {
    const list = [...st.jobs.values()].sort((a, b) => String(b.created_at || '').localeCompare(String(a.created_at || '')));
    const rows = list.map((j) => h('tr', { testid: `job-row-${j.job}` },
      h('td', null, h('a', { href: `${base}/jobs/${enc(j.job)}`, class: 'mono strong-link', testid: 'job-link', title: j.job }, shortId(j.job, 10))),
      h('td', null, badge(j.state, { testid: 'job-state' })),
      h('td', null, badge(j.phase || '—', { testid: 'job-phase' })),
      h('td', { class: 'mono', title: j.node || '' }, j.node ? shortId(j.node) : '—'),
      h('td', null, timeEl(j.time_start)),
      h('td', null, badge(j.endpoint_status || 'UNKNOWN')),
      h('td', null, j.end_reason ? badge(j.end_reason, { tone: ['FAILED', 'CRASH_LOOP', 'STARTUP_TIMEOUT', 'NODE_LOST'].includes(j.end_reason) ? 'red' : 'gray' }) : h('span', { class: 'muted' }, '—')),
      h('td', { class: 'num' }, fmtUsd(j.cost_usd, 4))));
    replace(jobsBox,
      h('h2', { id: 'jobs-title', class: 'card-title' }, 'Job Activity'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table table-stack', testid: 'jobs-table' },
        h('caption', { class: 'sr-only' }, 'Jobs of this deployment'),
        h('thead', null, h('tr', null, ['Job', 'State', 'Phase', 'Node', 'Started', 'Endpoint', 'End reason', 'Cost'].map((c) => h('th', { scope: 'col', class: c === 'Cost' ? 'num' : undefined }, c)))),
        h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: '8', class: 'muted' }, 'No job yet. Jobs appear here when the deployment lists them.'))))));
    stackLabels(jobsBox);
  }

  // --- logs ---
  let logViewer = null;
  function ensureLogs() {
    if (logViewer) return;
    const ops = [];
    for (const ep of st.dep.endpoints || []) if (ep.opId && !ops.includes(ep.opId)) ops.push(ep.opId);
    logViewer = createLogViewer({
      streamPath: `${base}/logs?follow=true`,
      downloadPath: `${base}/logs/download`,
      filename: `${(st.dep.name || id).replace(/[^\w.-]+/g, '_')}-logs.txt`,
      ops,
      showJob: true,
    });
    panels.logs.appendChild(logViewer.el);
    logViewer.start(signal);
    // Op ids from the active revision fill the tabs before any line arrives.
    get(`${base}/revisions${qs({ limit: 100, sort_order: 'asc' })}`, { signal }).then((r) => {
      const revs = (r && r.revisions) || [];
      const act = revs.find((x) => x.revision === st.dep.active_revision) || revs[revs.length - 1];
      const jd = act && act.job_definition;
      if (jd && Array.isArray(jd.ops)) logViewer.addOps(jd.ops.map((o) => o && o.id));
    }).catch(() => {});
  }

  // --- events ---
  const tasksBox = h('section', { class: 'card', 'aria-labelledby': 'tasks-title' });
  const eventsBox = h('section', { class: 'card', 'aria-labelledby': 'events-title' });
  panels.events.append(tasksBox, eventsBox);
  function renderEvents() {
    if (st.tab !== 'events') return;
    const taskRows = st.tasks.map((t) => h('tr', { testid: 'task-row' },
      h('td', null, badge(t.task, { tone: 'blue' })),
      h('td', null, timeEl(t.due_at), h('div', { class: 'muted small' }, fmtDate(t.due_at))),
      h('td', { class: 'mono' }, t.job ? shortId(t.job) : '—'),
      h('td', null, t.limit !== undefined && t.limit !== null ? String(t.limit) : '—')));
    replace(tasksBox,
      h('h2', { id: 'tasks-title', class: 'card-title' }, 'Upcoming tasks'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table', testid: 'tasks-table' },
        h('caption', { class: 'sr-only' }, 'Upcoming tasks'),
        h('thead', null, h('tr', null, ['Task', 'Due', 'Job', 'Limit'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, taskRows.length ? taskRows : h('tr', null, h('td', { colspan: '4', class: 'muted' }, 'No task is scheduled.'))))));
    const evRows = st.events.map((e) => h('tr', { testid: 'event-row', class: isErrorEvent(e) ? 'row-error' : undefined },
      h('td', { class: 'nowrap' }, timeEl(e.created_at, false)),
      h('td', null, badge(e.type, { tone: isErrorEvent(e) ? 'red' : e.type === 'DEPLOYMENT_STATUS_CHANGED' ? 'blue' : 'gray' })),
      h('td', null, e.message || '')));
    replace(eventsBox,
      h('h2', { id: 'events-title', class: 'card-title' }, 'Event history'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table', testid: 'events-table' },
        h('caption', { class: 'sr-only' }, 'Event history'),
        h('thead', null, h('tr', null, ['Time', 'Type', 'Message'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, evRows.length ? evRows : h('tr', null, h('td', { colspan: '3', class: 'muted' }, 'No event yet.'))))));
  }

  // --- configuration ---
  let configBuilt = false;
  const revBox = h('section', { class: 'card', 'aria-labelledby': 'revs-title' });
  const viewBox = h('div', { testid: 'revision-view' });
  const editorBox = h('section', { class: 'card', 'aria-labelledby': 'editor-title' });
  const editor = h('textarea', { id: 'revision-editor', testid: 'revision-editor', class: 'code-editor', rows: '20', spellcheck: 'false', 'aria-describedby': 'revision-editor-status' });
  const editorStatus = h('p', { id: 'revision-editor-status', class: 'help', testid: 'revision-editor-error', 'aria-live': 'polite' });
  const createRevBtn = h('button', { type: 'button', class: 'btn btn-primary', testid: 'create-revision' }, 'Create Revision');
  const createRevErr = h('p', { class: 'form-error', role: 'alert', testid: 'create-revision-error', hidden: true });
  panels.configuration.append(revBox, editorBox);
  let editorSeeded = false;

  function editorCheck() {
    const text = editor.value;
    try {
      const v = JSON.parse(text);
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('The job definition must be a JSON object.');
      editorStatus.className = 'help ok';
      editorStatus.textContent = 'Valid JSON.';
      editor.removeAttribute('aria-invalid');
      createRevBtn.disabled = st.dep.status === 'ARCHIVED';
      return v;
    } catch (e) {
      editorStatus.className = 'help field-error';
      editorStatus.textContent = `JSON error: ${e.message}`;
      editor.setAttribute('aria-invalid', 'true');
      createRevBtn.disabled = true;
      return null;
    }
  }
  editor.addEventListener('input', editorCheck);
  createRevBtn.addEventListener('click', async () => {
    const jd = editorCheck();
    if (!jd) return;
    const ok = await confirmDialog({
      title: 'Create a new revision?',
      message: 'The new revision becomes active at once. Jobs on older revisions are replaced (a new job is ready before an old one stops).',
      okLabel: 'Create Revision',
    });
    if (!ok) return;
    createRevBtn.disabled = true;
    createRevBtn.textContent = 'Creating…';
    createRevErr.hidden = true;
    try {
      const r = await post(`${base}/create-revision`, jd);
      toast(`Revision ${r && r.active_revision ? r.active_revision : ''} created and active.`);
      if (r && r.active_revision) st.dep.active_revision = r.active_revision;
      if (r && r.endpoints) st.dep.endpoints = r.endpoints;
      editorSeeded = false;
      await loadRevisions();
      renderAll();
    } catch (e) {
      createRevErr.hidden = false;
      createRevErr.textContent = errMsg(e);
    } finally {
      createRevBtn.textContent = 'Create Revision';
      editorCheck();
    }
  });

  async function loadRevisions() {
    try {
      const r = await get(`${base}/revisions${qs({ limit: 100, sort_order: 'asc' })}`, { signal });
      st.revisions = (r && r.revisions) || [];
    } catch (e) {
      if (e.name === 'AbortError') return;
      replace(revBox, h('div', { class: 'banner banner-error', role: 'alert' }, errMsg(e)));
      return;
    }
    renderRevisions();
  }

  function seedEditor(jd) {
    const copy = JSON.parse(JSON.stringify(jd || {}));
    delete copy.deployment_id;
    editor.value = JSON.stringify(copy, null, 2);
    editorCheck();
  }

  function renderRevisions() {
    const revs = st.revisions || [];
    const archived = st.dep.status === 'ARCHIVED';
    const rows = revs.map((r) => {
      const active = r.revision === st.dep.active_revision;
      const viewBtn = h('button', { type: 'button', class: 'btn btn-small', testid: `revision-view-${r.revision}` }, 'View');
      viewBtn.addEventListener('click', () => {
        replace(viewBox, h('div', { class: 'card-sub' },
          h('div', { class: 'row-between' }, h('h3', null, `Revision ${r.revision}`),
            h('div', null,
              h('button', { type: 'button', class: 'btn btn-small', testid: 'revision-load', onclick: () => {
                seedEditor(r.job_definition);
                editor.focus();
              } }, 'Load into editor'),
              h('button', { type: 'button', class: 'btn btn-small btn-ghost', testid: 'revision-close', onclick: () => clear(viewBox) }, 'Close'))),
          h('pre', { class: 'code-block', testid: 'revision-json', tabindex: '0' }, JSON.stringify(r.job_definition, null, 2))));
        viewBox.scrollIntoView({ block: 'nearest' });
      });
      const actBtn = h('button', { type: 'button', class: 'btn btn-small', testid: `revision-activate-${r.revision}`, disabled: active || archived }, active ? 'Active' : 'Activate');
      actBtn.addEventListener('click', async () => {
        const ok = await confirmDialog({
          title: `Activate revision ${r.revision}?`,
          message: 'Running jobs on other revisions are replaced with jobs of this revision.',
          okLabel: 'Activate',
        });
        if (!ok) return;
        try {
          const res = await patch(`${base}/update-active-revision`, { active_revision: r.revision });
          st.dep.active_revision = res && res.active_revision ? res.active_revision : r.revision;
          if (res && res.endpoints) st.dep.endpoints = res.endpoints;
          toast(`Revision ${r.revision} is active.`);
          editorSeeded = false;
          renderAll();
        } catch (e) {
          toast(errMsg(e), 'error');
        }
      });
      return h('tr', { testid: `revision-row-${r.revision}`, class: active ? 'row-active' : undefined },
        h('td', null, String(r.revision), active ? [' ', badge('ACTIVE', { tone: 'green', testid: 'revision-active' }, 'active')] : null),
        h('td', { class: 'mono small', title: r.ipfs_definition_hash || '' }, r.ipfs_definition_hash ? `${r.ipfs_definition_hash.slice(0, 19)}…` : '—'),
        h('td', null, fmtDate(r.created_at)),
        h('td', { class: 'cell-actions' }, viewBtn, ' ', actBtn));
    });
    replace(revBox,
      h('h2', { id: 'revs-title', class: 'card-title' }, 'Revisions'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table', testid: 'revisions-table' },
        h('caption', { class: 'sr-only' }, 'Revisions'),
        h('thead', null, h('tr', null, ['Revision', 'Definition hash', 'Created', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: '4', class: 'muted' }, 'No revision.'))))),
      viewBox);
    if (!editorSeeded) {
      const act = revs.find((x) => x.revision === st.dep.active_revision) || revs[revs.length - 1];
      if (act) {
        seedEditor(act.job_definition);
        editorSeeded = true;
      }
    }
  }

  function ensureConfig() {
    if (!configBuilt) {
      configBuilt = true;
      replace(revBox, spinner('Loading revisions…'));
      editorBox.append(
        h('h2', { id: 'editor-title', class: 'card-title' }, 'Job definition editor'),
        h('p', { class: 'muted small' }, 'Edit the job definition and create a new revision. It becomes active at once; endpoint URLs stay the same for the same op ids.'),
        h('label', { for: 'revision-editor', class: 'sr-only' }, 'Job definition (JSON)'),
        editor, editorStatus, createRevErr, h('div', { class: 'create-row' }, createRevBtn));
      if (st.dep.status === 'ARCHIVED') {
        editor.readOnly = true;
        createRevBtn.disabled = true;
      }
      loadRevisions();
    }
  }

  function openRevisionEditor() {
    tabs.select('configuration');
    setTimeout(() => editor.focus(), 50);
  }

  // --- live ---
  function renderAll() {
    renderHeader();
    renderDetails();
    renderEndpoints();
    renderJobs();
    renderEvents();
    if (configBuilt && st.revisions) renderRevisions();
  }

  const reloadDep = async () => {
    try {
      st.dep = { ...st.dep, ...(await get(base, { signal })) };
      renderAll();
    } catch (e) {
      if (e.name !== 'AbortError') toast(errMsg(e), 'error');
    }
  };
  const reloadJobs = debounce(async () => {
    try {
      const r = await get(`${base}/jobs${qs({ limit: 100 })}`, { signal });
      for (const j of (r && r.jobs) || []) st.jobs.set(j.job, { ...st.jobs.get(j.job), ...j });
      renderJobs();
      renderDetails();
    } catch {
      /* the stream keeps the page current */
    }
  }, 800);
  const reloadTasks = debounce(async () => {
    try {
      const r = await get(`${base}/tasks${qs({ limit: 100 })}`, { signal });
      st.tasks = (r && r.tasks) || [];
      renderEvents();
    } catch {
      /* ignore */
    }
  }, 400);
  const renderSoon = debounce(() => {
    renderHeader();
    renderDetails();
    renderEndpoints();
  }, 50);

  renderAll();
  showTab(st.tab);

  followSse(`${base}/stream`, {
    signal,
    onEvent: (ev) => {
      if (ev.type === 'deployment') {
        const prevRev = st.dep.active_revision;
        const next = { ...st.dep };
        for (const [k, v] of Object.entries(ev)) if (k !== 'type' && k !== 'deploymentId') next[k] = v;
        st.dep = next;
        if (prevRev !== next.active_revision) {
          editorSeeded = false;
          if (configBuilt) loadRevisions();
        }
        renderSoon();
        reloadTasks();
      } else if (ev.type === 'job') {
        const cur = st.jobs.get(ev.job) || {};
        const j = { ...cur };
        for (const [k, v] of Object.entries(ev)) if (k !== 'type' && k !== 'deploymentId') j[k] = v;
        if ('timeStart' in ev) j.time_start = ev.timeStart;
        if ('timeEnd' in ev) j.time_end = ev.timeEnd;
        delete j.timeStart;
        delete j.timeEnd;
        st.jobs.set(ev.job, j);
        renderJobs();
        reloadJobs();
      } else if (ev.type === 'event') {
        if (addEvent(ev)) {
          renderEvents();
          renderBanner();
        }
      } else if (ev.type === 'task') {
        reloadTasks();
      }
    },
  });

  // Relative times stay fresh.
  const tick = setInterval(() => refreshTimes(main), 15000);
  signal.addEventListener('abort', () => clearInterval(tick));
}
