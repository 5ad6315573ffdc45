// DOM helpers. Everything that comes from the API is inserted as text (textContent / attributes),
// never parsed as HTML.

export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

// h('div', {class: 'x', testid: 'y', onclick: fn}, child, 'text', [more]) → Element.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'testid') el.setAttribute('data-testid', v);
      else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'open' || k === 'hidden') el[k] = !!v;
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

// Small stroke icons (inline SVG, no external assets).
const ICONS = {
  deploy: 'M12 5v14M5 12h14',
  deployments: 'M4 6h16M4 12h16M4 18h16',
  markets: 'M7 7h10v10H7zM9 3v4M15 3v4M9 17v4M15 17v4M3 9h4M3 15h4M17 9h4M17 15h4',
  nodes: 'M4 4h16v7H4zM4 13h16v7H4zM8 7.5h.01M8 16.5h.01',
  account: 'M16 8a4 4 0 1 1-8 0a4 4 0 0 1 8 0zM4 21c0-4 3.6-7 8-7s8 3 8 7',
};
export function icon(name, size = 18) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  for (const [k, v] of Object.entries({ width: size, height: size, viewBox: '0 0 24 24', fill: 'none', stroke: 'currentColor', 'stroke-width': '2', 'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true', focusable: 'false' })) svg.setAttribute(k, String(v));
  const path = document.createElementNS(NS, 'path');
  path.setAttribute('d', ICONS[name] || '');
  svg.appendChild(path);
  return svg;
}

// --- formatting ---

export function shortId(id, n = 8) {
  if (!id) return '—';
  return id.length > n + 2 ? `${id.slice(0, n)}…` : id;
}

export function fmtUsd(v, digits) {
  if (v === null || v === undefined || Number.isNaN(Number(v))) return '—';
  const n = Number(v);
  if (digits !== undefined) return `$${n.toFixed(digits)}`;
  const abs = Math.abs(n);
  let d = 2;
  if (abs > 0 && abs < 1) d = 4;
  let s = n.toFixed(d);
  if (d === 4) s = s.replace(/0{1,2}$/, '');
  return `$${s}`;
}

export function parseTime(t) {
  if (t === null || t === undefined || t === '') return null;
  if (typeof t === 'number') return new Date(t < 1e12 ? t * 1000 : t);
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function fmtDate(t) {
  const d = parseTime(t);
  if (!d) return '—';
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function fmtRelative(t) {
  const d = parseTime(t);
  if (!d) return '—';
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  const future = s < 0;
  const a = Math.abs(s);
  let out;
  if (a < 5) return 'just now';
  if (a < 60) out = `${a}s`;
  else if (a < 3600) out = `${Math.floor(a / 60)} min`;
  else if (a < 86400) out = `${Math.floor(a / 3600)} h`;
  else out = `${Math.floor(a / 86400)} d`;
  return future ? `in ${out}` : `${out} ago`;
}

// <time> showing a relative time, with the absolute one as tooltip.
export function timeEl(t, relative = true) {
  const d = parseTime(t);
  if (!d) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: d.toISOString(), title: d.toISOString(), 'data-relative': relative ? 'true' : undefined }, relative ? fmtRelative(d) : fmtDate(d));
}

// Re-renders the relative <time> elements under root.
export function refreshTimes(root) {
  for (const t of root.querySelectorAll('time[data-relative]')) t.textContent = fmtRelative(t.getAttribute('datetime'));
}

export function fmtDuration(sec) {
  if (sec === null || sec === undefined || Number.isNaN(sec)) return '—';
  sec = Math.max(0, Math.round(sec));
  const hh = Math.floor(sec / 3600);
  const mm = Math.floor((sec % 3600) / 60);
  const ss = sec % 60;
  if (hh) return `${hh}h ${mm}m`;
  if (mm) return `${mm}m ${ss}s`;
  return `${ss}s`;
}

export function fmtMinutes(min) {
  if (min === null || min === undefined) return '—';
  const m = Number(min);
  if (m % 60 === 0) return `${m / 60} h (${m} min)`;
  if (m > 60) return `${(m / 60).toFixed(2).replace(/0+$/, '').replace(/\.$/, '')} h (${m} min)`;
  return `${m} min`;
}

export function fmtMb(mb) {
  if (mb === null || mb === undefined) return '—';
  if (mb >= 1024) return `${(mb / 1024).toFixed(mb >= 10240 ? 0 : 1)} GB`;
  return `${mb} MB`;
}

export function titleCase(s) {
  if (!s) return '';
  const t = String(s).replace(/[_-]+/g, ' ').toLowerCase();
  return t.charAt(0).toUpperCase() + t.slice(1);
}

// --- badges ---

const TONES = {
  RUNNING: 'green', READY: 'green', ONLINE: 'green', active: 'green', COMPLETED: 'gray',
  STARTING: 'blue', QUEUED: 'blue', ASSIGNED: 'blue', PREPARING: 'blue', DOWNLOADING: 'blue', LOADING: 'blue',
  STOPPING: 'amber', DEGRADED: 'amber', DRAINING: 'amber', NOT_READY: 'amber', UNHEALTHY: 'amber',
  INSUFFICIENT_FUNDS: 'orange',
  ERROR: 'red', OFFLINE: 'red', FAILED: 'red', inactive: 'gray',
  STOPPED: 'gray', DRAFT: 'outline', ARCHIVED: 'muted', NONE: 'gray', UNKNOWN: 'gray', EXITED: 'gray',
  PREMIUM: 'violet', COMMUNITY: 'teal', OTHER: 'gray', GPU: 'outline', CPU: 'outline',
};

export function tone(value) {
  return TONES[value] || 'gray';
}

export function badge(value, attrs = {}, label) {
  const v = value ?? '—';
  return h('span', { class: `badge badge-${attrs.tone || tone(v)}`, 'data-value': String(v), ...attrs, tone: undefined }, label ?? String(v));
}

// --- toasts (aria-live) ---

export function toast(message, kind = 'info', ms = 5000) {
  const region = document.getElementById('toasts');
  if (!region) return;
  const t = h('div', { class: `toast toast-${kind}`, testid: 'toast', role: kind === 'error' ? 'alert' : 'status' },
    h('span', { class: 'toast-msg' }, message),
    h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Dismiss notification', onclick: () => t.remove() }, '×'));
  region.appendChild(t);
  if (ms) setTimeout(() => t.remove(), kind === 'error' ? Math.max(ms, 8000) : ms);
}

// --- clipboard ---

export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall back below */
  }
  const ta = h('textarea', { style: { position: 'fixed', left: '-9999px', top: '0' }, 'aria-hidden': 'true' });
  ta.value = text;
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

export function copyButton(getText, { testid, label = 'Copy', what = 'text' } = {}) {
  const b = h('button', { type: 'button', class: 'btn btn-small btn-ghost', testid, 'aria-label': `Copy ${what}` }, label);
  b.addEventListener('click', async () => {
    const text = typeof getText === 'function' ? getText() : getText;
    const ok = await copyText(text);
    b.textContent = ok ? 'Copied' : 'Copy failed';
    b.setAttribute('data-copied', ok ? 'true' : 'false');
    toast(ok ? `Copied ${what} to the clipboard.` : `Could not copy ${what}.`, ok ? 'info' : 'error', 2500);
    setTimeout(() => {
      b.textContent = label;
    }, 1500);
  });
  return b;
}

// --- dialogs (native <dialog>: focus trap, Escape closes) ---

function openDialog(build) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'modal', testid: 'modal' });
    let result = null;
    const done = (value) => {
      result = value;
      dlg.close();
    };
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(result);
    });
    dlg.addEventListener('cancel', () => {
      result = null;
    });
    build(dlg, done);
    document.body.appendChild(dlg);
    dlg.showModal();
    const first = dlg.querySelector('[autofocus], input, select, textarea') || dlg.querySelector('[data-testid="confirm-ok"]');
    if (first) first.focus();
  });
}

// confirmDialog({title, message, okLabel, danger}) → Promise<boolean>
export function confirmDialog({ title, message, okLabel = 'Confirm', danger = false, detail } = {}) {
  return openDialog((dlg, done) => {
    const id = `dlg-${Math.random().toString(36).slice(2)}`;
    dlg.setAttribute('aria-labelledby', `${id}-t`);
    dlg.setAttribute('aria-describedby', `${id}-m`);
    append(dlg, [
      h('h2', { id: `${id}-t`, class: 'modal-title' }, title),
      h('p', { id: `${id}-m` }, message),
      detail ? h('p', { class: 'muted' }, detail) : null,
      h('div', { class: 'modal-actions' },
        h('button', { type: 'button', class: 'btn', testid: 'confirm-cancel', onclick: () => done(false) }, 'Cancel'),
        h('button', { type: 'button', class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, testid: 'confirm-ok', onclick: () => done(true) }, okLabel)),
    ]);
  }).then((v) => v === true);
}

// formDialog({title, description, fields:[{name,label,type,value,min,max,step,testid,help,options,validate}], okLabel, submit})
// → Promise<values|null>. submit(values) may throw to show an error and keep the dialog open.
export function formDialog({ title, description, fields, okLabel = 'Save', submit } = {}) {
  return openDialog((dlg, done) => {
    const id = `dlg-${Math.random().toString(36).slice(2)}`;
    dlg.setAttribute('aria-labelledby', `${id}-t`);
    const errorEl = h('p', { class: 'form-error', role: 'alert', testid: 'modal-error', hidden: true });
    const inputs = {};
    const okBtn = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'confirm-ok' }, okLabel);
    const form = h('form', { novalidate: true },
      h('h2', { id: `${id}-t`, class: 'modal-title' }, title),
      description ? h('p', { class: 'muted' }, description) : null,
      fields.map((f, i) => {
        const fid = `${id}-f${i}`;
        let input;
        if (f.type === 'select') {
          input = h('select', { id: fid, name: f.name, testid: f.testid },
            f.options.map((o) => h('option', { value: o.value, selected: String(o.value) === String(f.value) }, o.label)));
        } else {
          input = h('input', { id: fid, name: f.name, type: f.type || 'text', value: f.value ?? '', min: f.min, max: f.max, step: f.step,
            testid: f.testid, autocomplete: 'off', 'aria-describedby': f.help ? `${fid}-h` : undefined, required: true });
        }
        if (i === 0) input.setAttribute('autofocus', '');
        inputs[f.name] = input;
        return h('div', { class: 'field' },
          h('label', { for: fid }, f.label), input,
          f.help ? h('p', { id: `${fid}-h`, class: 'help' }, f.help) : null);
      }),
      errorEl,
      h('div', { class: 'modal-actions' },
        h('button', { type: 'button', class: 'btn', testid: 'confirm-cancel', onclick: () => done(null) }, 'Cancel'),
        okBtn));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const values = {};
      for (const f of fields) {
        const raw = inputs[f.name].value;
        values[f.name] = f.type === 'number' ? Number(raw) : raw;
        const msg = f.validate ? f.validate(values[f.name], raw) : null;
        if (msg) {
          errorEl.hidden = false;
          errorEl.textContent = msg;
          inputs[f.name].setAttribute('aria-invalid', 'true');
          inputs[f.name].focus();
          return;
        }
        inputs[f.name].removeAttribute('aria-invalid');
      }
      if (submit) {
        okBtn.disabled = true;
        const label = okBtn.textContent;
        okBtn.textContent = 'Saving…';
        try {
          await submit(values);
        } catch (e) {
          errorEl.hidden = false;
          errorEl.textContent = e.message || String(e);
          okBtn.disabled = false;
          okBtn.textContent = label;
          return;
        }
      }
      done(values);
    });
    dlg.appendChild(form);
  });
}

// --- menus ---

// menu({label, testid, items:[{label, testid, onSelect, disabled, danger, hidden}]}) → wrapper element.
// Keyboard: Enter/Space/ArrowDown opens, arrows move, Escape closes and returns focus.
let openMenuClose = null;

export function actionMenu({ label = 'Actions', testid = 'actions-menu', items, align = 'right' }) {
  const wrap = h('div', { class: 'menu-wrap' });
  const menuId = `menu-${Math.random().toString(36).slice(2)}`;
  const btn = h('button', { type: 'button', class: 'btn btn-small menu-button', testid, 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': menuId },
    label, h('span', { class: 'caret', 'aria-hidden': 'true' }, '▾'));
  const menu = h('div', { class: 'menu', role: 'menu', id: menuId, hidden: true, testid: `${testid}-list` });
  const buttons = [];
  for (const it of items) {
    if (it.hidden) continue;
    const b = h('button', { type: 'button', role: 'menuitem', class: `menu-item${it.danger ? ' danger' : ''}`, testid: it.testid, disabled: !!it.disabled, tabindex: '-1' }, it.label);
    if (it.title) b.title = it.title;
    b.addEventListener('click', () => {
      close(false);
      it.onSelect && it.onSelect();
    });
    buttons.push(b);
    menu.appendChild(b);
  }
  const enabled = () => buttons.filter((b) => !b.disabled);
  const place = () => {
    const r = btn.getBoundingClientRect();
    menu.style.position = 'fixed';
    menu.style.top = `${Math.round(r.bottom + 4)}px`;
    const w = menu.offsetWidth || 200;
    let left = align === 'right' ? r.right - w : r.left;
    left = Math.max(8, Math.min(left, window.innerWidth - w - 8));
    menu.style.left = `${Math.round(left)}px`;
    const mh = menu.offsetHeight;
    if (r.bottom + 4 + mh > window.innerHeight && r.top - 4 - mh > 0) menu.style.top = `${Math.round(r.top - 4 - mh)}px`;
  };
  const onDoc = (ev) => {
    if (!wrap.contains(ev.target)) close(false);
  };
  const onScroll = (ev) => {
    if (!(ev && ev.target instanceof Node && menu.contains(ev.target))) close(false);
  };
  function open(focusFirst = true) {
    if (openMenuClose) openMenuClose(false);
    menu.hidden = false;
    btn.setAttribute('aria-expanded', 'true');
    place();
    openMenuClose = close;
    document.addEventListener('mousedown', onDoc, true);
    window.addEventListener('scroll', onScroll, true);
    window.addEventListener('resize', onScroll);
    const e = enabled();
    if (focusFirst && e.length) e[0].focus();
  }
  function close(focusButton = true) {
    if (menu.hidden) return;
    menu.hidden = true;
    btn.setAttribute('aria-expanded', 'false');
    if (openMenuClose === close) openMenuClose = null;
    document.removeEventListener('mousedown', onDoc, true);
    window.removeEventListener('scroll', onScroll, true);
    window.removeEventListener('resize', onScroll);
    if (focusButton) btn.focus();
  }
  btn.addEventListener('click', () => (menu.hidden ? open(true) : close(false)));
  btn.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown' && menu.hidden) {
      ev.preventDefault();
      open(true);
    }
  });
  menu.addEventListener('keydown', (ev) => {
    const e = enabled();
    const i = e.indexOf(document.activeElement);
    if (ev.key === 'Escape') {
      ev.preventDefault();
      ev.stopPropagation();
      close(true);
    } else if (ev.key === 'ArrowDown') {
      ev.preventDefault();
      if (e.length) e[(i + 1) % e.length].focus();
    } else if (ev.key === 'ArrowUp') {
      ev.preventDefault();
      if (e.length) e[(i - 1 + e.length) % e.length].focus();
    } else if (ev.key === 'Home') {
      ev.preventDefault();
      if (e.length) e[0].focus();
    } else if (ev.key === 'End') {
      ev.preventDefault();
      if (e.length) e[e.length - 1].focus();
    } else if (ev.key === 'Tab') {
      close(false);
    }
  });
  wrap.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !menu.hidden) {
      ev.preventDefault();
      close(true);
    }
  });
  append(wrap, [btn, menu]);
  wrap.closeMenu = () => close(false);
  return wrap;
}

// Global Escape: closes an open menu from anywhere.
if (typeof document !== 'undefined') {
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && openMenuClose) openMenuClose(true);
  });
}

// --- tabs (role=tablist with arrow keys) ---

// tabs({tabs:[{id,label,testid}], active, onChange}) → {el, select(id)}
export function tabList({ tabs, active, onChange, label = 'Sections', small = false }) {
  const list = h('div', { role: 'tablist', 'aria-label': label, class: `tabs${small ? ' tabs-small' : ''}` });
  const btns = new Map();
  const select = (id, focus = false, fire = true) => {
    for (const [tid, b] of btns) {
      const on = tid === id;
      b.setAttribute('aria-selected', on ? 'true' : 'false');
      b.tabIndex = on ? 0 : -1;
      b.classList.toggle('active', on);
      if (on && focus) b.focus();
    }
    if (fire && onChange) onChange(id);
  };
  for (const t of tabs) {
    const b = h('button', { type: 'button', role: 'tab', class: 'tab', testid: t.testid, id: t.domId, 'aria-controls': t.controls }, t.label);
    b.addEventListener('click', () => select(t.id));
    btns.set(t.id, b);
    list.appendChild(b);
  }
  list.addEventListener('keydown', (ev) => {
    const ids = [...btns.keys()];
    const cur = ids.findIndex((i) => btns.get(i) === document.activeElement);
    if (cur < 0) return;
    let next = -1;
    if (ev.key === 'ArrowRight') next = (cur + 1) % ids.length;
    else if (ev.key === 'ArrowLeft') next = (cur - 1 + ids.length) % ids.length;
    else if (ev.key === 'Home') next = 0;
    else if (ev.key === 'End') next = ids.length - 1;
    if (next >= 0) {
      ev.preventDefault();
      select(ids[next], true);
    }
  });
  select(active, false, false);
  return { el: list, select, buttons: btns };
}

export function table({ testid, columns, rows, empty, caption }) {
  const t = h('table', { class: 'table', testid },
    caption ? h('caption', { class: 'sr-only' }, caption) : null,
    h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
    h('tbody', null, rows.length ? rows : h('tr', { class: 'empty-row' }, h('td', { colspan: String(columns.length), class: 'muted' }, empty || 'Nothing here yet.'))));
  return h('div', { class: 'table-wrap' }, t);
}

// Tables with class "table-stack" become label/value blocks on phones: each cell gets its column name.
export function stackLabels(root) {
  for (const t of root.querySelectorAll ? root.querySelectorAll('table.table-stack') : []) {
    const labels = [...t.querySelectorAll('thead th')].map((th) => th.textContent.trim());
    for (const tr of t.querySelectorAll('tbody tr')) {
      [...tr.children].forEach((td, i) => {
        if (labels[i] && !td.hasAttribute('colspan')) td.setAttribute('data-label', labels[i]);
      });
    }
  }
}

export function spinner(label = 'Loading…') {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spin', 'aria-hidden': 'true' }), label);
}

export function errorBox(err, testid = 'page-error') {
  return h('div', { class: 'banner banner-error', role: 'alert', testid }, err && err.message ? err.message : String(err));
}

export function pageHeader(title, ...right) {
  return h('div', { class: 'page-header' }, h('h1', { class: 'page-title', tabindex: '-1' }, title), h('div', { class: 'page-actions' }, right));
}

export function debounce(fn, ms) {
  let t = null;
  const d = (...a) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
  d.cancel = () => clearTimeout(t);
  return d;
}

// Required VRAM (MB) of a job definition: spec §9.3 order.
export function requiredVramMb(jd) {
  if (!jd || typeof jd !== 'object') return 0;
  const meta = jd.meta || {};
  const sr = meta.system_requirements || {};
  if (typeof sr.vram_total_mb === 'number') return sr.vram_total_mb;
  if (typeof sr.required_vram === 'number') return sr.required_vram * 1024;
  if (typeof meta.required_vram === 'number') return meta.required_vram * 1024;
  let max = 0;
  for (const op of Array.isArray(jd.ops) ? jd.ops : []) {
    const v = op && op.args && op.args.required_vram;
    if (typeof v === 'number' && v * 1024 > max) max = v * 1024;
  }
  return max;
}

// Errors are shown verbatim.
export function errMsg(e) {
  return (e && e.message) || String(e);
}

// Endpoint URLs of the local form (http://host:port/e/<label>/) are used through this page's origin
// so that a browser on another host name still reaches them without CORS.
export function browserUrl(url) {
  try {
    const u = new URL(url, location.origin);
    if (u.pathname.startsWith('/e/') && u.origin !== location.origin) return `${location.origin}${u.pathname}`;
    return u.href;
  } catch {
    return url;
  }
}

// Status sets (spec §4 guards).
export const CAN_START = ['DRAFT', 'STOPPED', 'ERROR', 'INSUFFICIENT_FUNDS'];
export const CAN_STOP = ['STARTING', 'RUNNING', 'ERROR', 'INSUFFICIENT_FUNDS', 'STOPPING'];
export const CAN_ARCHIVE = ['STOPPED', 'DRAFT'];
export const ALL_STATUSES = ['DRAFT', 'STARTING', 'RUNNING', 'STOPPING', 'STOPPED', 'INSUFFICIENT_FUNDS', 'ERROR', 'ARCHIVED'];
export const STRATEGIES = [
  { value: 'SIMPLE', label: 'Simple', help: 'Runs the replicas once for the timeout; ended jobs are not replaced.' },
  { value: 'SIMPLE-EXTEND', label: 'Simple Extend', help: 'Like Simple, but each job is extended before its timeout while credits last.' },
  { value: 'SCHEDULED', label: 'Scheduled', help: 'Starts the replicas at each cron firing (UTC), each running for the timeout.' },
  { value: 'INFINITE', label: 'Infinite', help: 'Keeps the replicas running: jobs are rotated before their timeout and replaced when they end.' },
];
