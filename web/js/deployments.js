// Deployments list: /deployments. Live through the account-wide stream GET /api/stream.
import { get, qs, followSse } from './api.js';
import { h, replace, badge, timeEl, shortId, errMsg, debounce, spinner, pageHeader, titleCase, stackLabels, ALL_STATUSES, STRATEGIES } from './ui.js';
import { setQuery } from './router.js';
import { deploymentActions } from './actions.js';

const ACTIVE_STATUSES = ALL_STATUSES.filter((x) => x !== 'ARCHIVED');

export function readinessText(d) {
  const st = titleCase(d.status || '');
  const reps = d.replicas ?? 0;
  const ready = d.ready_replicas ?? 0;
  return `${st} · Ready ${ready}/${reps}`;
}

export async function renderDeployments(main, _params, { signal, query }) {
  const state = {
    status: query.get('status') || '',
    archived: query.get('archived') === '1',
    search: query.get('search') || '',
    items: [],
    total: 0,
  };
  main.appendChild(pageHeader('Deployments',
    h('a', { href: '/deployments/create', class: 'btn btn-primary', testid: 'create-deployment-link' }, '+ Create Deployment')));

  const statusSel = h('select', { id: 'status-filter', testid: 'status-filter' },
    h('option', { value: '' }, 'All statuses'),
    ALL_STATUSES.filter((x) => x !== 'ARCHIVED').map((x) => h('option', { value: x, selected: state.status === x }, titleCase(x))));
  const archivedBox = h('input', { type: 'checkbox', id: 'show-archived', testid: 'show-archived', checked: state.archived });
  const searchInput = h('input', { type: 'search', id: 'deployments-search', testid: 'search-input', placeholder: 'Search by name or id', value: state.search, autocomplete: 'off' });
  const live = h('span', { class: 'live-dot', testid: 'live-indicator', title: 'Connecting…', 'aria-hidden': 'true' });
  const liveText = h('span', { class: 'sr-only', role: 'status' });
  main.appendChild(h('div', { class: 'toolbar', role: 'search' },
    h('label', { for: 'deployments-search', class: 'sr-only' }, 'Search deployments'), searchInput,
    h('span', { class: 'field-inline' }, h('label', { for: 'status-filter', class: 'inline-label' }, 'Status'), statusSel),
    h('label', { class: 'check', for: 'show-archived' }, archivedBox, 'Show archived'),
    h('span', { class: 'spacer' }), live, liveText));
  const body = h('div', { testid: 'deployments-body' }, spinner());
  main.appendChild(body);

  const statusParam = () => {
    const list = state.status ? [state.status] : state.archived ? ACTIVE_STATUSES.slice() : [];
    if (state.archived) list.push('ARCHIVED');
    return list.join(',');
  };

  const rowsById = new Map();

  function row(d) {
    const reps = d.replicas ?? 0;
    const ready = d.ready_replicas ?? 0;
    const tr = h('tr', { testid: `deployment-row-${d.id}`, 'data-status': d.status },
      h('td', null,
        h('a', { href: `/deployments/${encodeURIComponent(d.id)}`, class: 'strong-link', testid: 'deployment-link' }, d.name || '(unnamed)'),
        h('div', { class: 'muted small mono', title: d.id }, shortId(d.id, 10))),
      h('td', null, badge(d.status, { testid: 'deployment-status' })),
      h('td', null, badge(d.health || 'NONE', { testid: 'readiness', title: readinessText(d) }, `${ready}/${reps}`)),
      h('td', { class: 'num' }, String(d.active_jobs ?? 0)),
      h('td', null, strategyLabel(d.strategy)),
      h('td', null, d.market_slug || shortId(d.market)),
      h('td', null, timeEl(d.updated_at)),
      h('td', { class: 'cell-actions' }, deploymentActions(d, { after: () => refresh() })));
    rowsById.set(d.id, { tr, d });
    return tr;
  }

  function render() {
    rowsById.clear();
    if (!state.items.length) {
      const filtered = state.status || state.search;
      replace(body, h('div', { class: 'empty-state', testid: 'deployments-empty' },
        h('h2', null, filtered ? 'No deployment matches these filters.' : 'No deployments yet'),
        h('p', { class: 'muted' }, filtered ? 'Change the filters, or create a new deployment.' : 'Pick a template and a GPU, and your OpenAI-compatible endpoint is a minute away.'),
        h('a', { href: '/deployments/create', class: 'btn btn-primary', testid: 'empty-deploy-link' }, 'Deploy a model')));
      return;
    }
    replace(body,
      h('div', { class: 'table-wrap' }, h('table', { class: 'table table-stack', testid: 'deployments-table' },
        h('caption', { class: 'sr-only' }, 'Deployments'),
        h('thead', null, h('tr', null, ['Deployment', 'Status', 'Ready', 'Active Jobs', 'Strategy', 'Market', 'Last Updated'].map((c) => h('th', { scope: 'col', class: c === 'Active Jobs' ? 'num' : undefined }, c)),
          h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
        h('tbody', null, state.items.map(row)))),
      h('p', { class: 'muted small', testid: 'deployments-count' }, `${state.items.length} of ${state.total} deployment${state.total === 1 ? '' : 's'}`));
    stackLabels(body);
  }

  let seq = 0;
  async function refresh() {
    const my = ++seq;
    try {
      const r = await get(`/deployments${qs({ limit: 100, status: statusParam(), search: state.search })}`, { signal });
      if (my !== seq) return;
      state.items = (r && r.deployments) || [];
      state.total = (r && r.pagination && r.pagination.total_items) ?? state.items.length;
      render();
    } catch (e) {
      if (e.name === 'AbortError') return;
      replace(body, h('div', { class: 'banner banner-error', role: 'alert', testid: 'page-error' }, errMsg(e)));
    }
  }
  const refreshSoon = debounce(refresh, 250);

  const syncQuery = () => setQuery({ status: state.status, archived: state.archived ? '1' : '', search: state.search });
  statusSel.addEventListener('change', () => {
    state.status = statusSel.value;
    syncQuery();
    refresh();
  });
  archivedBox.addEventListener('change', () => {
    state.archived = archivedBox.checked;
    syncQuery();
    refresh();
  });
  const onSearch = debounce(() => {
    state.search = searchInput.value.trim();
    syncQuery();
    refresh();
  }, 300);
  searchInput.addEventListener('input', onSearch);

  await refresh();

  // Live: patch rows in place; unknown deployments (new ones) refetch the list.
  const wanted = () => {
    const sp = statusParam();
    return sp ? sp.split(',') : ACTIVE_STATUSES;
  };
  followSse('/stream', {
    signal,
    onState: (st) => {
      live.classList.toggle('on', st === 'open');
      live.title = st === 'open' ? 'Live' : 'Reconnecting…';
      liveText.textContent = st === 'open' ? 'Live updates on.' : '';
    },
    onEvent: (ev) => {
      if (ev.type !== 'deployment') {
        return;
      }
      const id = ev.id || ev.deploymentId;
      const cur = rowsById.get(id);
      if (!cur || !wanted().includes(ev.status) || (ev.name && ev.name !== cur.d.name && state.search)) {
        refreshSoon();
        return;
      }
      const d = { ...cur.d };
      for (const k of ['status', 'replicas', 'ready_replicas', 'active_jobs', 'health', 'updated_at', 'name', 'timeout', 'active_revision']) {
        if (ev[k] !== undefined) d[k] = ev[k];
      }
      const i = state.items.findIndex((x) => x.id === id);
      if (i >= 0) state.items[i] = d;
      const menuOpen = cur.tr.querySelector('[aria-expanded="true"]');
      const fresh = row(d);
      if (menuOpen) {
        // Keep the open menu; update only the cells that changed.
        const cells = fresh.children;
        for (let c = 0; c < cells.length - 1; c++) cur.tr.replaceChild(cells[c].cloneNode(true), cur.tr.children[c]);
        rowsById.set(id, { tr: cur.tr, d });
        cur.tr.setAttribute('data-status', d.status);
      } else {
        cur.tr.replaceWith(fresh);
      }
      stackLabels(body);
    },
  });
}

function strategyLabel(s) {
  const x = STRATEGIES.find((y) => y.value === s);
  return x ? x.label : s || '—';
}
