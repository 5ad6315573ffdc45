// Live log viewer (deployment page and job page): System tab + one tab per op, progress bars,
// auto-scroll with Pause, Download.
import { followSse, getText } from './api.js';
import { h, clear, replace, shortId, toast, errMsg } from './ui.js';

const MAX_RECORDS = 20000;
const MAX_LINES = 5000;

function pad(n, w = 2) {
  return String(n).padStart(w, '0');
}

function fmtTs(ms) {
  if (typeof ms !== 'number') return '';
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function fmtBytes(n) {
  if (typeof n !== 'number') return '';
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} KB`;
  return `${n} B`;
}

// opts: {streamPath, downloadPath, filename, ops: [opId], showJob: bool}
export function createLogViewer({ streamPath, downloadPath, filename, ops = [], showJob = false }) {
  const records = [];
  const opIds = new Set(ops.filter(Boolean));
  const progress = new Map(); // label → {kind, done, total, job}
  const jobs = new Set();
  let filter = 'all';
  let paused = false;
  let started = false;
  let lineCount = 0;

  const tabsEl = h('div', { class: 'tabs tabs-small', role: 'tablist', 'aria-label': 'Log sources', testid: 'logs-tabs' });
  const viewId = `logs-view-${Math.random().toString(36).slice(2)}`;
  const view = h('div', { class: 'logs-view', id: viewId, testid: 'logs-view', role: 'log', 'aria-live': 'off', 'aria-label': 'Log output', tabindex: '0' });
  const empty = h('div', { class: 'logs-empty muted', testid: 'logs-empty' }, 'Waiting for log lines…');
  view.appendChild(empty);
  const progressBox = h('div', { class: 'logs-progress', testid: 'logs-progress', hidden: true });
  const statusEl = h('span', { class: 'muted small', testid: 'logs-status', role: 'status' }, 'Connecting…');
  const pauseBtn = h('button', { type: 'button', class: 'btn btn-small', testid: 'logs-pause', 'aria-pressed': 'false' }, 'Pause');
  const latestBtn = h('button', { type: 'button', class: 'btn btn-small btn-ghost', testid: 'logs-latest' }, 'Jump to latest');
  const dlBtn = h('button', { type: 'button', class: 'btn btn-small', testid: 'logs-download' }, 'Download');

  pauseBtn.addEventListener('click', () => {
    paused = !paused;
    pauseBtn.setAttribute('aria-pressed', paused ? 'true' : 'false');
    pauseBtn.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) scrollToEnd();
  });
  latestBtn.addEventListener('click', () => scrollToEnd());
  dlBtn.addEventListener('click', async () => {
    dlBtn.disabled = true;
    try {
      const text = await getText(downloadPath);
      const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
      const a = h('a', { href: url, download: filename, hidden: true });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      toast(errMsg(e), 'error');
    } finally {
      dlBtn.disabled = false;
    }
  });

  const el = h('div', { class: 'logs', testid: 'logs' },
    h('div', { class: 'logs-toolbar' }, tabsEl, h('span', { class: 'spacer' }), statusEl, pauseBtn, latestBtn, dlBtn),
    progressBox,
    view);

  function renderTabs() {
    const tabs = [{ id: 'all', label: 'All' }, { id: 'system', label: 'System' }, ...[...opIds].map((o) => ({ id: `op:${o}`, label: o }))];
    clear(tabsEl);
    for (const t of tabs) {
      const tid = t.id === 'all' ? 'logs-tab-all' : t.id === 'system' ? 'logs-tab-system' : `logs-tab-${t.id.slice(3)}`;
      const b = h('button', { type: 'button', role: 'tab', class: `tab${filter === t.id ? ' active' : ''}`, testid: tid, 'aria-selected': filter === t.id ? 'true' : 'false', 'aria-controls': viewId, tabindex: filter === t.id ? '0' : '-1' }, t.label);
      b.addEventListener('click', () => {
        filter = t.id;
        renderTabs();
        rerender();
        const sel = tabsEl.querySelector('[aria-selected="true"]');
        if (sel) sel.focus();
      });
      tabsEl.appendChild(b);
    }
  }
  tabsEl.addEventListener('keydown', (ev) => {
    const btns = [...tabsEl.querySelectorAll('[role="tab"]')];
    const i = btns.indexOf(document.activeElement);
    if (i < 0) return;
    let n = -1;
    if (ev.key === 'ArrowRight') n = (i + 1) % btns.length;
    else if (ev.key === 'ArrowLeft') n = (i - 1 + btns.length) % btns.length;
    if (n >= 0) {
      ev.preventDefault();
      btns[n].click();
    }
  });

  const matches = (r) => filter === 'all' || (filter === 'system' ? !r.opId : r.opId === filter.slice(3));

  function lineEl(r) {
    const src = r.opId ? `${r.opId}${r.stream ? ` ${r.stream}` : ''}` : 'system';
    const cls = `log-line log-${r.type || 'info'}${r.stream === 'stderr' ? ' log-stderr' : ''}`;
    let msg = r.message ?? '';
    if (r.progress && typeof r.progress === 'object') {
      const p = r.progress;
      const pct = p.total ? Math.floor((100 * p.done) / p.total) : null;
      if (!msg) msg = `${p.kind || 'progress'} ${p.label || ''} ${pct !== null ? `${pct}%` : fmtBytes(p.done)}`;
    }
    return h('div', { class: cls },
      h('span', { class: 'log-ts' }, fmtTs(r.timestamp)),
      showJob && jobs.size > 1 && r.job ? h('span', { class: 'log-job', title: r.job }, shortId(r.job, 6)) : null,
      h('span', { class: 'log-src' }, `[${src}]`),
      h('span', { class: 'log-msg' }, msg));
  }

  function atBottom() {
    return view.scrollHeight - view.scrollTop - view.clientHeight < 40;
  }
  function scrollToEnd() {
    view.scrollTop = view.scrollHeight;
  }

  function rerender() {
    clear(view);
    lineCount = 0;
    const list = records.filter(matches).slice(-MAX_LINES);
    if (!list.length) view.appendChild(h('div', { class: 'logs-empty muted', testid: 'logs-empty' }, filter === 'all' ? 'Waiting for log lines…' : 'No lines from this source yet.'));
    const frag = document.createDocumentFragment();
    for (const r of list) frag.appendChild(lineEl(r));
    view.appendChild(frag);
    lineCount = list.length;
    if (!paused) scrollToEnd();
  }

  function renderProgress() {
    const items = [...progress.entries()];
    progressBox.hidden = !items.length;
    replace(progressBox, items.map(([label, p]) => {
      const pct = p.total ? Math.min(100, Math.floor((100 * p.done) / p.total)) : null;
      return h('div', { class: 'progress-row', testid: 'logs-progress-row' },
        h('span', { class: 'progress-label' }, `${p.kind || 'progress'}: ${label}`),
        h('progress', { max: p.total || 1, value: p.total ? p.done : 0, 'aria-label': `${p.kind || 'progress'} ${label}` }),
        h('span', { class: 'progress-num muted small' }, pct !== null ? `${pct}% · ${fmtBytes(p.done)} of ${fmtBytes(p.total)}` : fmtBytes(p.done)));
    }));
  }

  let pending = [];
  let flushQueued = false;
  function flush() {
    flushQueued = false;
    const batch = pending;
    pending = [];
    const stick = !paused && atBottom();
    let tabsChanged = false;
    const frag = document.createDocumentFragment();
    let progressChanged = false;
    for (const r of batch) {
      if (r.opId && !opIds.has(r.opId)) {
        opIds.add(r.opId);
        tabsChanged = true;
      }
      if (r.job && !jobs.has(r.job)) jobs.add(r.job);
      if (r.progress && typeof r.progress === 'object' && r.progress.label) {
        progress.set(r.progress.label, { ...r.progress });
        progressChanged = true;
      }
      if (matches(r)) {
        frag.appendChild(lineEl(r));
        lineCount++;
      }
    }
    const e = view.querySelector('[data-testid="logs-empty"]');
    if (e && frag.childNodes.length) e.remove();
    view.appendChild(frag);
    while (lineCount > MAX_LINES && view.firstChild) {
      view.removeChild(view.firstChild);
      lineCount--;
    }
    if (tabsChanged) renderTabs();
    if (progressChanged) renderProgress();
    if (!paused && (stick || batch.length)) scrollToEnd();
  }

  function add(r) {
    records.push(r);
    if (records.length > MAX_RECORDS) records.splice(0, records.length - MAX_RECORDS);
    pending.push(r);
    if (!flushQueued) {
      flushQueued = true;
      requestAnimationFrame(flush);
      setTimeout(() => flushQueued && flush(), 250); // background tabs do not run animation frames
    }
  }

  renderTabs();

  return {
    el,
    addOps(list) {
      let changed = false;
      for (const o of list || []) {
        if (o && !opIds.has(o)) {
          opIds.add(o);
          changed = true;
        }
      }
      if (changed) renderTabs();
    },
    start(signal) {
      if (started) return;
      started = true;
      followSse(streamPath, {
        signal,
        onEvent: (r) => add(r),
        onState: (st, err) => {
          statusEl.textContent = st === 'open' ? 'Live' : st === 'end' ? 'The job has ended; this is the full log.' : st === 'error' ? (err ? err.message : 'Log stream unavailable.') : 'Reconnecting…';
          statusEl.dataset.state = st;
        },
      });
    },
    get lines() {
      return records;
    },
  };
}
