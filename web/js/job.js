// Job page: /deployments/<id>/jobs/<job>?tab=overview|logs|chat
import { get, post, followSse } from './api.js';
import {
  h, replace, badge, fmtDate, fmtUsd, fmtDuration, shortId, errMsg, toast, debounce, spinner, tabList, copyButton,
  confirmDialog, formDialog, parseTime,
} from './ui.js';
import { setQuery } from './router.js';
import { createLogViewer } from './logs.js';
import { createChat } from './chat.js';
import { loadMarkets } from './session.js';

const enc = encodeURIComponent;

export async function renderJob(main, params, { signal, query }) {
  const depId = params.id;
  const jobId = params.job;
  const base = `/deployments/${enc(depId)}`;
  const jbase = `${base}/jobs/${enc(jobId)}`;
  const loading = spinner('Loading job…');
  main.appendChild(loading);

  const st = { detail: null, dep: null, markets: [], tab: ['overview', 'logs', 'chat'].includes(query.get('tab')) ? query.get('tab') : 'overview' };
  try {
    const [detail, dep] = await Promise.all([get(jbase, { signal }), get(base, { signal })]);
    st.detail = detail;
    st.dep = dep;
  } catch (e) {
    if (e.name === 'AbortError') return;
    loading.remove();
    main.append(
      h('div', { class: 'page-header' }, h('h1', { class: 'page-title', tabindex: '-1' }, 'Job')),
      h('div', { class: 'banner banner-error', role: 'alert', testid: 'page-error' }, errMsg(e)),
      h('a', { href: base, class: 'btn' }, '← Back to the deployment'));
    return;
  }
  loading.remove();
  loadMarkets({ signal }).then((m) => {
    st.markets = m;
    renderDetails();
  }).catch(() => {});

  const job = () => (st.detail && st.detail.job) || {};
  const active = () => ['QUEUED', 'RUNNING'].includes(st.detail.state || job().state);

  // --- header ---
  const badges = h('div', { class: 'badges', role: 'status', 'aria-live': 'polite' });
  const stopBtn = h('button', { type: 'button', class: 'btn btn-danger', testid: 'stop-job' }, 'Stop job');
  const extendBtn = h('button', { type: 'button', class: 'btn', testid: 'extend-job' }, 'Extend');
  main.append(
    h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' },
      h('a', { href: '/deployments' }, 'Deployments'), h('span', { 'aria-hidden': 'true' }, ' / '),
      h('a', { href: base, testid: 'job-deployment-link' }, st.dep.name || shortId(depId)), h('span', { 'aria-hidden': 'true' }, ' / '),
      h('span', { class: 'mono' }, shortId(jobId, 10))),
    h('div', { class: 'page-header' },
      h('div', null, h('h1', { class: 'page-title', tabindex: '-1' }, 'Job ', h('span', { class: 'mono', title: jobId }, shortId(jobId, 12))),
        h('div', { class: 'subline muted small' }, h('span', { class: 'mono' }, jobId), ' ', copyButton(jobId, { testid: 'copy-job-id', what: 'job id', label: 'Copy id' }))),
      h('div', { class: 'page-actions' }, extendBtn, stopBtn)),
    badges);

  stopBtn.addEventListener('click', async () => {
    const ok = await confirmDialog({ title: 'Stop this job?', message: 'The replica gets SIGTERM, then SIGKILL after 10 s. It is billed up to the stop.', okLabel: 'Stop job', danger: true });
    if (!ok) return;
    try {
      await post(`${jbase}/stop`);
      toast('Stopping the job.');
      reload();
    } catch (e) {
      toast(errMsg(e), 'error');
    }
  });
  extendBtn.addEventListener('click', async () => {
    const v = await formDialog({
      title: 'Extend job',
      description: 'Adds time to this job\'s timeout. The extension is reserved from your credits now.',
      fields: [{ name: 'hours', label: 'Extend by (hours)', type: 'number', value: 1, min: 0.02, max: 100, step: 0.01, testid: 'extend-hours-input',
        validate: (n, raw) => (raw === '' || !Number.isFinite(n) || n < 1 / 60 || n > 100 ? 'Extend by 0.02 to 100 hours.' : null) }],
      okLabel: 'Extend',
      submit: (vals) => post(`/jobs/${enc(jobId)}/extend`, { seconds: Math.max(60, Math.round(vals.hours * 3600)) }),
    });
    if (v) {
      toast(`Job extended by ${v.hours} h.`);
      reload();
    }
  });

  // --- tabs ---
  const panels = {
    overview: h('div', { role: 'tabpanel', id: 'panel-overview', 'aria-labelledby': 'tab-overview', testid: 'panel-overview' }),
    logs: h('div', { role: 'tabpanel', id: 'panel-logs', 'aria-labelledby': 'tab-logs', testid: 'panel-logs' }),
    chat: h('div', { role: 'tabpanel', id: 'panel-chat', 'aria-labelledby': 'tab-chat', testid: 'panel-chat' }),
  };
  const tabs = tabList({
    label: 'Job sections',
    tabs: [
      { id: 'overview', label: 'Overview', testid: 'tab-overview', domId: 'tab-overview', controls: 'panel-overview' },
      { id: 'logs', label: 'Logs', testid: 'tab-logs', domId: 'tab-logs', controls: 'panel-logs' },
      { id: 'chat', label: 'Chat', testid: 'tab-chat', domId: 'tab-chat', controls: 'panel-chat' },
    ],
    active: st.tab,
    onChange: (t) => showTab(t),
  });
  main.appendChild(tabs.el);
  for (const p of Object.values(panels)) main.appendChild(p);

  const detailsBox = h('section', { class: 'card', 'aria-labelledby': 'job-details-title' });
  const jdBox = h('section', { class: 'card', 'aria-labelledby': 'job-jd-title' });
  panels.overview.append(detailsBox, jdBox);

  function renderHeader() {
    const d = st.detail;
    const j = job();
    replace(badges,
      badge(d.state || j.state, { testid: 'job-state' }),
      badge(j.phase || '—', { testid: 'job-phase' }, `Phase: ${(j.phase || '—').replace(/_/g, ' ')}`),
      badge(j.endpoint_status || 'UNKNOWN', { testid: 'job-endpoint-status' }, `Endpoint: ${j.endpoint_status || 'UNKNOWN'}`));
    stopBtn.disabled = !active();
    extendBtn.disabled = !active();
  }

  function renderDetails() {
    const d = st.detail;
    const j = job();
    const m = st.markets.find((x) => x.address === (d.market || j.market));
    const start = d.timeStart ?? j.time_start;
    const end = d.timeEnd ?? j.time_end;
    const startD = parseTime(start);
    const endD = parseTime(end);
    const dur = startD ? ((endD ? endD.getTime() : Date.now()) - startD.getTime()) / 1000 : null;
    const item = (label, value, testid) => [h('dt', null, label), h('dd', { testid }, value)];
    replace(detailsBox,
      h('h2', { id: 'job-details-title', class: 'card-title' }, 'Details'),
      h('dl', { class: 'details' },
        item('State', d.state || j.state || '—', 'detail-state'),
        item('Phase', j.phase || '—', 'detail-phase'),
        item('Node', h('span', { class: 'mono', title: d.node || '' }, d.node || j.node || '—'), 'detail-node'),
        item('Market', m ? `${m.name} (${m.slug})` : shortId(d.market || j.market), 'detail-market'),
        item('Revision', String(d.revision ?? j.revision ?? '—'), 'detail-revision'),
        item('Started', startD ? fmtDate(startD) : '—', 'detail-started'),
        item('Ended', endD ? fmtDate(endD) : '—', 'detail-ended'),
        item('Duration', dur !== null ? fmtDuration(dur) : '—', 'detail-duration'),
        item('Timeout', j.timeout ? fmtDuration(j.timeout) : '—', 'detail-job-timeout'),
        item('Cost', fmtUsd(j.cost_usd, 4), 'detail-cost'),
        j.reserved_usd !== undefined ? item('Reserved', fmtUsd(j.reserved_usd, 4), 'detail-reserved') : null,
        item('End reason', j.end_reason || '—', 'detail-end-reason'),
        j.exit_code !== null && j.exit_code !== undefined ? item('Exit code', String(j.exit_code), 'detail-exit-code') : null,
        item('Job URL', j.url ? h('span', { class: 'code-line' }, h('code', { testid: 'job-url', class: j.endpoint_status === 'ONLINE' ? '' : 'struck' }, j.url), copyButton(j.url, { testid: 'copy-job-url', what: 'job URL' })) : '—', 'detail-url')));
    const jd = d.jobDefinition;
    replace(jdBox,
      h('h2', { id: 'job-jd-title', class: 'card-title' }, 'Job definition'),
      jd ? h('pre', { class: 'code-block', testid: 'job-definition', tabindex: '0' }, JSON.stringify(jd, null, 2)) : h('p', { class: 'muted' }, '—'));
  }

  let logViewer = null;
  let chat = null;
  function showTab(t) {
    st.tab = t;
    for (const [k, p] of Object.entries(panels)) p.hidden = k !== t;
    setQuery({ tab: t === 'overview' ? '' : t });
    if (t === 'logs' && !logViewer) {
      const ops = ((st.detail.jobDefinition && st.detail.jobDefinition.ops) || []).map((o) => o && o.id);
      logViewer = createLogViewer({
        streamPath: `${jbase}/logs?follow=true`,
        downloadPath: `${jbase}/logs/download`,
        filename: `job-${jobId.slice(0, 10)}-logs.txt`,
        ops,
      });
      panels.logs.appendChild(logViewer.el);
      logViewer.start(signal);
    }
    if (t === 'chat') {
      if (!chat) {
        chat = createChat({
          getEndpoint: () => {
            const eps = (st.dep && st.dep.endpoints) || [];
            return eps[0] && eps[0].url ? eps[0].url : null;
          },
          expectReasoning: /deepseek-r1/i.test(st.dep.template || '') || /DeepSeek-R1/i.test(JSON.stringify(st.detail.jobDefinition || {})),
          signal,
        });
        panels.chat.appendChild(h('p', { class: 'muted small' }, 'Talks to the deployment endpoint, which routes to a ready replica (not necessarily this job).'));
        panels.chat.appendChild(chat.el);
      }
      chat.activate();
    }
  }

  const reload = debounce(async () => {
    try {
      st.detail = await get(jbase, { signal });
      renderHeader();
      renderDetails();
    } catch (e) {
      if (e.name !== 'AbortError') toast(errMsg(e), 'error');
    }
  }, 300);

  renderHeader();
  renderDetails();
  showTab(st.tab);

  followSse(`${base}/stream`, {
    signal,
    onEvent: (ev) => {
      if (ev.type === 'job' && ev.job === jobId) {
        const j = { ...job() };
        for (const k of ['state', 'phase', 'endpoint_status', 'end_reason', 'node', 'url', 'cost_usd']) if (ev[k] !== undefined) j[k] = ev[k];
        if ('timeStart' in ev) st.detail.timeStart = ev.timeStart;
        if ('timeEnd' in ev) st.detail.timeEnd = ev.timeEnd;
        if (ev.state) st.detail.state = ev.state;
        if (ev.node !== undefined) st.detail.node = ev.node;
        st.detail.job = j;
        renderHeader();
        renderDetails();
        reload();
      } else if (ev.type === 'deployment') {
        if (ev.endpoints) st.dep.endpoints = ev.endpoints;
        if (ev.name) st.dep.name = ev.name;
      }
    },
  });
}
