// Markets, Nodes and Account pages.
import { get, post, qs, getKey } from './api.js';
import {
  h, replace, badge, timeEl, fmtDate, fmtUsd, fmtMb, shortId, errMsg, toast, spinner, pageHeader, copyButton,
  confirmDialog, stackLabels,
} from './ui.js';
import { loadMarkets, session } from './session.js';

const enc = encodeURIComponent;

function errorBanner(e) {
  return h('div', { class: 'banner banner-error', role: 'alert', testid: 'page-error' }, errMsg(e));
}

// --- Markets ---

export async function renderMarkets(main, _p, { signal }) {
  const refresh = h('button', { type: 'button', class: 'btn btn-small', testid: 'markets-refresh' }, 'Refresh');
  main.appendChild(pageHeader('Markets', refresh));
  main.appendChild(h('p', { class: 'muted' }, 'Prices are per replica per hour, network fee included. A job holds a whole GPU.'));
  const box = h('div', null, spinner());
  main.appendChild(box);
  async function load() {
    try {
      const list = await loadMarkets({ signal, fresh: true });
      const rows = list.map((m) => h('tr', { testid: `market-row-${m.slug || m.address}` },
        h('td', null, h('div', { class: 'strong' }, m.name), h('div', { class: 'muted small mono' }, m.slug)),
        h('td', null, badge(m.type)),
        h('td', null, badge(m.kind || 'GPU')),
        h('td', null, m.kind === 'CPU' ? h('span', { class: 'muted' }, '—') : `${m.lowest_vram} GB`),
        h('td', { class: 'small' }, (m.gpu_types || []).join(', ') || h('span', { class: 'muted' }, '—')),
        h('td', { class: 'num' }, `${fmtUsd(m.usd_price_per_hour)}/h`),
        h('td', { class: 'num muted small' }, `${fmtUsd(m.usd_reward_per_hour)} + ${m.network_fee_percentage ?? 0}%`),
        h('td', { class: 'num' }, String(m.available_nodes ?? 0)),
        h('td', { class: 'num' }, String(m.queued_jobs ?? 0)),
        h('td', { class: 'num' }, m.job_timeout ? `${Math.round(m.job_timeout / 60)} h` : '—'),
        h('td', null, h('a', { href: `/deployments/create?market=${enc(m.slug || m.address)}`, class: 'btn btn-small btn-ghost', testid: 'market-deploy', 'aria-label': `Deploy on ${m.name}` }, 'Deploy'))));
      replace(box, h('div', { class: 'table-wrap' }, h('table', { class: 'table table-stack', testid: 'markets-table' },
        h('caption', { class: 'sr-only' }, 'Markets'),
        h('thead', null, h('tr', null, ['Market', 'Tier', 'Kind', 'VRAM', 'GPU types', '$/h incl. fee', 'Base + fee', 'Available nodes', 'Queued jobs', 'Max job time', ''].map((c, i) => h('th', { scope: 'col', class: i >= 5 && i <= 9 ? 'num' : undefined }, c || h('span', { class: 'sr-only' }, 'Actions'))))),
        h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: '11', class: 'muted' }, 'No market.'))))));
      stackLabels(box);
    } catch (e) {
      if (e.name !== 'AbortError') replace(box, errorBanner(e));
    }
  }
  refresh.addEventListener('click', load);
  await load();
}

// --- Nodes ---

export async function renderNodes(main, _p, { signal }) {
  const tokenBtn = h('button', { type: 'button', class: 'btn btn-primary', testid: 'create-join-token' }, 'Create join token');
  main.appendChild(pageHeader('Nodes', tokenBtn));
  main.appendChild(h('p', { class: 'muted' }, 'Machines that run jobs. A node joins with a token and keeps one outbound connection to this platform.'));
  const tokenBox = h('div', { testid: 'join-token-box', 'aria-live': 'polite' });
  main.appendChild(tokenBox);
  const box = h('div', null, spinner());
  main.appendChild(box);

  tokenBtn.addEventListener('click', async () => {
    tokenBtn.disabled = true;
    try {
      const r = await post('/nodes/join-tokens', {});
      const cmd = `infera node run --platform ${location.origin} --token ${r.token}`;
      replace(tokenBox, h('section', { class: 'card card-highlight', 'aria-labelledby': 'join-title' },
        h('h2', { id: 'join-title', class: 'card-title' }, 'Join token created'),
        h('p', { class: 'muted small' }, `Run this on the machine that should join${r.expires_at ? ` (the token expires ${fmtDate(r.expires_at)})` : ''}:`),
        h('div', { class: 'code-line' }, h('code', { testid: 'join-command' }, cmd), copyButton(cmd, { testid: 'copy-join-command', what: 'command' })),
        h('div', { class: 'code-line' }, h('span', { class: 'muted small' }, 'Token: '), h('code', { testid: 'join-token' }, r.token), copyButton(r.token, { testid: 'copy-join-token', what: 'token' }))));
    } catch (e) {
      replace(tokenBox, errorBanner(e));
    } finally {
      tokenBtn.disabled = false;
    }
  });

  async function load() {
    try {
      const r = await get('/nodes', { signal });
      const nodes = (r && r.nodes) || (Array.isArray(r) ? r : []);
      const rows = nodes.map((n) => {
        const res = n.resources || {};
        const gpus = (res.gpus || []).map((g) => `${g.model}${g.vram_mb ? ` (${fmtMb(g.vram_mb)})` : ''}`).join(', ');
        const drain = h('button', { type: 'button', class: 'btn btn-small', testid: 'drain-node', disabled: n.status === 'DRAINING' || n.status === 'OFFLINE' }, n.status === 'DRAINING' ? 'Draining' : 'Drain');
        drain.addEventListener('click', async () => {
          const ok = await confirmDialog({ title: `Drain ${n.name}?`, message: 'The node takes no new jobs; running jobs run to their end.', okLabel: 'Drain', danger: true });
          if (!ok) return;
          try {
            await post(`/nodes/${enc(n.id)}/drain`, {});
            toast(`${n.name} is draining.`);
            load();
          } catch (e) {
            toast(errMsg(e), 'error');
          }
        });
        return h('tr', { testid: `node-row-${n.id}` },
          h('td', null, h('div', { class: 'strong' }, n.name || '—', n.local ? [' ', h('span', { class: 'badge badge-outline' }, 'local')] : null), h('div', { class: 'muted small mono', title: n.id }, shortId(n.id, 10))),
          h('td', null, badge(n.status, { testid: 'node-status' })),
          h('td', null, (n.markets || []).map((m) => h('span', { class: 'chip' }, m))),
          h('td', { class: 'small' },
            h('div', null, `${res.cpu_cores ?? '—'} CPU cores · ${fmtMb(res.ram_mb)} RAM${res.ram_free_mb !== undefined ? ` (${fmtMb(res.ram_free_mb)} free)` : ''}`),
            h('div', { class: 'muted' }, `${fmtMb(res.disk_free_mb)} disk free`),
            h('div', null, gpus || h('span', { class: 'muted' }, 'No GPU'))),
          h('td', { class: 'num' }, String(n.running_jobs ?? 0)),
          h('td', null, timeEl(n.last_heartbeat_at)),
          h('td', { class: 'small muted' }, n.version || '—'),
          h('td', { class: 'cell-actions' }, drain));
      });
      replace(box, h('div', { class: 'table-wrap' }, h('table', { class: 'table table-stack', testid: 'nodes-table' },
        h('caption', { class: 'sr-only' }, 'Nodes'),
        h('thead', null, h('tr', null, ['Node', 'Status', 'Markets', 'Resources', 'Running jobs', 'Last heartbeat', 'Version', ''].map((c, i) => h('th', { scope: 'col', class: i === 4 ? 'num' : undefined }, c || h('span', { class: 'sr-only' }, 'Actions'))))),
        h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: '8', class: 'muted' }, 'No node has joined. Create a join token to add one.'))))));
      stackLabels(box);
    } catch (e) {
      if (e.name !== 'AbortError') replace(box, errorBanner(e));
    }
  }
  await load();
  const t = setInterval(() => load(), 10000);
  signal.addEventListener('abort', () => clearInterval(t));
}

// --- Account ---

const LEDGER_LABELS = {
  credit_request: 'Free credits', manual_grant: 'Grant', code_claim: 'Code claimed', invitation_claim: 'Invitation',
  purchase: 'Purchase', token_topup: 'Top-up', job_debit: 'Reserved for job', job_extend: 'Job extension',
  job_settlement: 'Job settled', job_refund: 'Refund',
};

export async function renderAccount(main, _p, { signal }) {
  main.appendChild(pageHeader('Account'));
  const who = h('p', { class: 'muted small', testid: 'account-id' });
  main.appendChild(who);
  const showWho = (w) => {
    if (w) replace(who, 'Account ', h('code', null, w.account), w.admin ? ' · admin' : '');
  };
  showWho(session.whoami);
  if (!session.whoami) get('/whoami', { signal }).then((w) => {
    session.whoami = w;
    showWho(w);
  }).catch(() => {});

  // Credits
  const balBox = h('div', { class: 'stat-grid', testid: 'balance' }, spinner());
  const claimInput = h('input', { id: 'claim-code', testid: 'claim-code-input', autocomplete: 'off', placeholder: 'Code' });
  const claimBtn = h('button', { type: 'submit', class: 'btn', testid: 'claim-code-submit' }, 'Claim');
  const claimMsg = h('p', { class: 'help', role: 'status', testid: 'claim-result' });
  const claimForm = h('form', { class: 'inline-form', novalidate: true },
    h('label', { for: 'claim-code' }, 'Have a code? Claim it'), h('div', { class: 'input-row' }, claimInput, claimBtn), claimMsg);
  const txBox = h('div', null, spinner());
  main.appendChild(h('section', { class: 'card', id: 'credits', 'aria-labelledby': 'credits-title' },
    h('h2', { id: 'credits-title', class: 'card-title' }, 'Credits'),
    balBox,
    h('p', { class: 'muted small', testid: 'buy-credits-info' }, 'Buying credits is not available on this platform yet: ask an admin for a grant or a claim code.'),
    claimForm));
  main.appendChild(h('section', { class: 'card', 'aria-labelledby': 'tx-title' },
    h('h2', { id: 'tx-title', class: 'card-title' }, 'Transactions'), txBox));

  async function loadBalance() {
    try {
      const b = await get('/credits/balance', { signal });
      const stat = (label, value, testid, note) => h('div', { class: 'stat' }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value', testid }, value), note ? h('div', { class: 'muted small' }, note) : null);
      replace(balBox,
        stat('Available', fmtUsd(b.availableCredits, 2), 'balance-available', 'Spendable now'),
        stat('Reserved', fmtUsd(b.reservedCredits, 4), 'balance-reserved', 'Held for running jobs'),
        stat('Spent', fmtUsd(b.settledCredits, 4), 'balance-spent', 'Settled charges'),
        stat('Assigned', fmtUsd(b.assignedCredits, 2), 'balance-assigned', 'Grants, claims and purchases'));
    } catch (e) {
      if (e.name !== 'AbortError') replace(balBox, errorBanner(e));
    }
  }
  async function loadTx() {
    try {
      const r = await get(`/credits/transactions${qs({ limit: 100 })}`, { signal });
      const list = (r && r.transactions) || [];
      const rows = list.map((t) => h('tr', { testid: 'transaction-row' },
        h('td', { class: 'nowrap' }, fmtDate(t.created_at)),
        h('td', null, h('span', { title: t.type }, LEDGER_LABELS[t.type] || t.type)),
        h('td', null, t.description || ''),
        h('td', null, t.deployment ? h('a', { href: `/deployments/${enc(t.deployment)}`, class: 'mono' }, shortId(t.deployment)) : h('span', { class: 'muted' }, '—')),
        h('td', { class: `num ${t.amount_usd > 0 ? 'pos' : t.amount_usd < 0 ? 'neg' : ''}` }, `${t.amount_usd > 0 ? '+' : ''}${fmtUsd(t.amount_usd, 4)}`)));
      replace(txBox,
        h('div', { class: 'table-wrap' }, h('table', { class: 'table table-stack', testid: 'transactions-table' },
          h('caption', { class: 'sr-only' }, 'Transactions'),
          h('thead', null, h('tr', null, ['Date', 'Type', 'Description', 'Deployment', 'Amount'].map((c) => h('th', { scope: 'col', class: c === 'Amount' ? 'num' : undefined }, c)))),
          h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: '5', class: 'muted' }, 'No transaction yet.'))))),
        r && r.pagination && r.pagination.total_items > list.length ? h('p', { class: 'muted small' }, `Showing the latest ${list.length} of ${r.pagination.total_items}.`) : null);
      stackLabels(txBox);
    } catch (e) {
      if (e.name !== 'AbortError') replace(txBox, errorBanner(e));
    }
  }
  claimForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const code = claimInput.value.trim();
    claimMsg.className = 'help';
    if (!code) {
      claimMsg.className = 'form-error';
      claimMsg.textContent = 'Enter a code.';
      return;
    }
    claimBtn.disabled = true;
    try {
      await post('/credits/claim', { code });
      claimMsg.textContent = 'Code claimed: credits added.';
      claimMsg.className = 'help ok';
      claimInput.value = '';
      loadBalance();
      loadTx();
    } catch (e) {
      claimMsg.className = 'form-error';
      claimMsg.textContent = errMsg(e);
    } finally {
      claimBtn.disabled = false;
    }
  });

  // API keys
  const keysBox = h('div', null, spinner());
  const newKeyBox = h('div', { 'aria-live': 'polite' });
  const keyName = h('input', { id: 'api-key-name', testid: 'api-key-name', autocomplete: 'off', maxlength: '100', placeholder: 'e.g. ci' });
  const keyExp = h('select', { id: 'api-key-expiration', testid: 'api-key-expiration' },
    [['30', '30 days'], ['60', '60 days'], ['90', '90 days'], ['365', '365 days'], ['never', 'Never']].map(([v, l]) => h('option', { value: v, selected: v === '90' }, l)));
  const keyBtn = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'create-api-key' }, 'Create Key');
  const keyErr = h('p', { class: 'form-error', role: 'alert', testid: 'api-key-error', hidden: true });
  const keyForm = h('form', { class: 'key-form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'api-key-name' }, 'Name'), keyName),
    h('div', { class: 'field' }, h('label', { for: 'api-key-expiration' }, 'Expiration'), keyExp),
    h('div', { class: 'field field-button' }, keyBtn));
  main.appendChild(h('section', { class: 'card', id: 'api-keys', 'aria-labelledby': 'keys-title' },
    h('h2', { id: 'keys-title', class: 'card-title' }, 'API Keys'),
    h('p', { class: 'muted small' }, 'Use a key as ', h('code', null, 'Authorization: Bearer inf_…'), ' with the REST API, or with the CLI (', h('code', null, 'infera login'), ').'),
    keyForm, keyErr, newKeyBox, keysBox));

  keyForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    keyErr.hidden = true;
    const name = keyName.value.trim();
    if (!name) {
      keyErr.hidden = false;
      keyErr.textContent = 'Give the key a name.';
      keyName.setAttribute('aria-invalid', 'true');
      keyName.focus();
      return;
    }
    keyName.removeAttribute('aria-invalid');
    keyBtn.disabled = true;
    try {
      const exp = keyExp.value === 'never' ? null : Number(keyExp.value);
      const r = await post('/api-keys', { name, expires_in_days: exp });
      keyName.value = '';
      replace(newKeyBox, h('div', { class: 'card card-highlight', testid: 'new-api-key-box', role: 'status' },
        h('p', null, h('strong', null, `Key "${r.name}" created. `), 'Copy it now: it is shown only once.'),
        h('div', { class: 'code-line' }, h('code', { testid: 'new-api-key' }, r.key), copyButton(r.key, { testid: 'copy-api-key', what: 'API key' })),
        h('button', { type: 'button', class: 'btn btn-small btn-ghost', testid: 'dismiss-api-key', onclick: () => replace(newKeyBox) }, 'Done')));
      loadKeys();
    } catch (e) {
      keyErr.hidden = false;
      keyErr.textContent = errMsg(e);
    } finally {
      keyBtn.disabled = false;
    }
  });

  async function loadKeys() {
    try {
      const r = await get(`/api-keys${qs({ limit: 100 })}`, { signal });
      const keys = (r && r.api_keys) || [];
      const rows = keys.map((k) => {
        const expired = k.expires_at && new Date(k.expires_at).getTime() < Date.now();
        const status = expired ? 'expired' : k.status;
        const mine = getKey();
        const isMine = !!(mine && k.prefix && mine.startsWith(k.prefix));
        const toggle = h('button', { type: 'button', class: 'btn btn-small', testid: k.status === 'active' ? 'revoke-api-key' : 'activate-api-key' }, k.status === 'active' ? 'Revoke' : 'Activate');
        toggle.addEventListener('click', async () => {
          const revoking = k.status === 'active';
          if (revoking) {
            const ok = await confirmDialog({ title: `Revoke key "${k.name}"?`, message: 'Requests with this key are refused until it is activated again.', detail: isMine ? 'You are signed in with this key: revoking it signs you out.' : undefined, okLabel: 'Revoke', danger: true });
            if (!ok) return;
          }
          try {
            await post(`/api-keys/${enc(k.id)}/update`, { status: revoking ? 'inactive' : 'active' });
            toast(revoking ? `Key "${k.name}" revoked.` : `Key "${k.name}" active again.`);
            loadKeys();
          } catch (e) {
            toast(errMsg(e), 'error');
          }
        });
        const del = h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', testid: 'delete-api-key' }, 'Delete');
        del.addEventListener('click', async () => {
          const ok = await confirmDialog({ title: `Delete key "${k.name}"?`, message: 'This cannot be undone. Clients using this key stop working.', detail: isMine ? 'You are signed in with this key: deleting it signs you out.' : undefined, okLabel: 'Delete', danger: true });
          if (!ok) return;
          try {
            await post(`/api-keys/${enc(k.id)}/delete`, {});
            toast(`Key "${k.name}" deleted.`);
            loadKeys();
          } catch (e) {
            toast(errMsg(e), 'error');
          }
        });
        return h('tr', { testid: `api-key-row-${k.id}` },
          h('td', null, h('div', { class: 'strong' }, k.name), isMine ? h('div', { class: 'muted small', testid: 'api-key-current' }, 'This session') : null),
          h('td', null, h('code', null, `${k.prefix}…`)),
          h('td', null, fmtDate(k.created_at)),
          h('td', null, k.expires_at ? fmtDate(k.expires_at) : h('span', { class: 'muted' }, 'Never')),
          h('td', null, k.last_used_at ? timeEl(k.last_used_at) : h('span', { class: 'muted' }, 'Never')),
          h('td', null, badge(status, { testid: 'api-key-status', tone: status === 'active' ? 'green' : status === 'expired' ? 'amber' : 'gray' })),
          h('td', { class: 'cell-actions' }, toggle, ' ', del));
      });
      replace(keysBox, h('div', { class: 'table-wrap' }, h('table', { class: 'table table-stack', testid: 'api-keys-table' },
        h('caption', { class: 'sr-only' }, 'API keys'),
        h('thead', null, h('tr', null, ['Name', 'Prefix', 'Created', 'Expires', 'Last used', 'Status', ''].map((c) => h('th', { scope: 'col' }, c || h('span', { class: 'sr-only' }, 'Actions'))))),
        h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: '7', class: 'muted' }, 'No API key.'))))));
      stackLabels(keysBox);
    } catch (e) {
      if (e.name !== 'AbortError') replace(keysBox, errorBanner(e));
    }
  }

  await Promise.all([loadBalance(), loadTx(), loadKeys()]);
  if (location.hash) {
    const target = document.getElementById(location.hash.slice(1));
    if (target) target.scrollIntoView();
  }
}
