// Deploy wizard: /deployments/create, /deploy, /deploy/<template>.
// 1) template  2) market  3) settings  4) summary + Create Deployment.
import { get, post } from './api.js';
import { h, replace, clear, badge, fmtUsd, errMsg, toast, requiredVramMb, fmtMb, spinner, stackLabels, STRATEGIES } from './ui.js';
import { navigate } from './router.js';
import { loadMarkets } from './session.js';

const DRAFT_KEY = 'infera.deployDraft';
const VRAM_MSG = 'This GPU does not meet the required VRAM specifications for your job.';
const NO_NODE_MSG = 'No node serves this market right now; the deployment will wait for one.';

const ADJECTIVES = ['brave', 'quiet', 'bright', 'calm', 'swift', 'gentle', 'bold', 'clever', 'eager', 'fancy', 'happy', 'jolly', 'lively', 'mighty', 'noble', 'proud', 'silent', 'sunny', 'witty', 'zesty', 'amber', 'cosmic', 'golden', 'lucky', 'misty', 'rapid', 'shiny', 'steady', 'vivid', 'wise'];
const NOUNS = ['falcon', 'otter', 'panda', 'tiger', 'heron', 'lynx', 'badger', 'comet', 'dolphin', 'eagle', 'fox', 'gecko', 'koala', 'lemur', 'moose', 'newt', 'orca', 'puffin', 'raven', 'salmon', 'walrus', 'yak', 'zebra', 'beacon', 'canyon', 'harbor', 'meadow', 'nebula', 'river', 'summit'];

const pick = (a) => a[Math.floor(Math.random() * a.length)];
export function randomName() {
  const a = pick(ADJECTIVES);
  let b = pick(ADJECTIVES);
  while (b === a) b = pick(ADJECTIVES);
  return `${a}_${b}_${pick(NOUNS)}`;
}

function loadDraft() {
  try {
    const d = JSON.parse(localStorage.getItem(DRAFT_KEY) || 'null');
    return d && typeof d === 'object' ? d : null;
  } catch {
    return null;
  }
}

function saveDraft(s) {
  try {
    localStorage.setItem(DRAFT_KEY, JSON.stringify({
      groupId: s.groupId, templateId: s.templateId, market: s.market, marketChosen: s.marketChosen, name: s.name,
      strategy: s.strategy, replicas: s.replicas, hours: s.hours, schedule: s.schedule,
      jdText: s.jdEdited ? s.jdText : null, jdEdited: s.jdEdited, tier: s.tier,
    }));
  } catch {
    /* storage full or disabled */
  }
}

export function clearDraft() {
  try {
    localStorage.removeItem(DRAFT_KEY);
  } catch {
    /* ignore */
  }
}

// Cost in micro-dollars as the server computes it: per job round(price × seconds / 3600), × replicas.
export function costMicros(pricePerHour, replicas, minutes) {
  const p = Math.round(Number(pricePerHour) * 1e6);
  return replicas * Math.round((p * minutes * 60) / 3600);
}

export function usdFromMicros(m, decimals, roundDown = false) {
  const unit = 10 ** (6 - decimals);
  const q = roundDown ? Math.floor(m / unit) : Math.floor((m + unit / 2) / unit);
  const scale = 10 ** decimals;
  const whole = Math.floor(q / scale);
  const frac = String(q % scale).padStart(decimals, '0');
  return decimals ? `$${whole}.${frac}` : `$${whole}`;
}

export function describeCron(expr) {
  const f = String(expr || '').trim().split(/\s+/);
  if (f.length !== 5) return 'A cron schedule has 5 fields: minute hour day-of-month month day-of-week.';
  const [mi, ho, dom, mo, dow] = f;
  const num = (s) => /^\d+$/.test(s);
  const pad = (n) => String(n).padStart(2, '0');
  const rest = dom === '*' && mo === '*' && dow === '*';
  if (rest) {
    if (mi === '*' && ho === '*') return 'Every minute (UTC).';
    if (/^\*\/\d+$/.test(mi) && ho === '*') return `Every ${mi.slice(2)} minutes (UTC).`;
    if (num(mi) && ho === '*') return `Every hour at minute ${Number(mi)} (UTC).`;
    if (num(mi) && /^\*\/\d+$/.test(ho)) return `Every ${ho.slice(2)} hours at minute ${Number(mi)} (UTC).`;
    if (num(mi) && num(ho)) return `Every day at ${pad(ho)}:${pad(mi)} UTC.`;
  }
  if (num(mi) && num(ho) && dom === '*' && mo === '*' && dow !== '*') return `At ${pad(ho)}:${pad(mi)} UTC on day-of-week ${dow}.`;
  if (!f.every((x) => /^[\d*,/\-A-Za-z?]+$/.test(x))) return 'This does not look like a cron expression.';
  return `Custom schedule: ${f.join(' ')} (UTC).`;
}

function cronValid(expr) {
  const f = String(expr || '').trim().split(/\s+/);
  return f.length === 5 && f.every((x) => /^[\d*,/\-A-Za-z?]+$/.test(x));
}

function monogram(name) {
  const words = String(name || '?').split(/[\s\-_.]+/).filter(Boolean);
  return (words[0] || '?').charAt(0).toUpperCase() + (words[1] ? words[1].charAt(0).toUpperCase() : '');
}

export async function renderDeploy(main, params, { signal, query }) {
  main.appendChild(h('div', { class: 'page-header' }, h('h1', { class: 'page-title', tabindex: '-1' }, 'Deploy'),
    h('div', { class: 'page-actions' }, h('button', { type: 'button', class: 'btn btn-ghost btn-small', testid: 'reset-draft', onclick: () => {
      clearDraft();
      navigate('/deployments/create', { replace: true });
    } }, 'Start over'))));
  const loading = spinner('Loading templates and markets…');
  main.appendChild(loading);

  let groups;
  let flat;
  let markets;
  try {
    [groups, flat, markets] = await Promise.all([
      get('/jobs/templates/grouped', { signal }),
      get('/jobs/templates', { signal }),
      loadMarkets({ signal, fresh: true }),
    ]);
  } catch (e) {
    if (e.name === 'AbortError') return;
    loading.remove();
    main.appendChild(h('div', { class: 'banner banner-error', role: 'alert', testid: 'page-error' }, errMsg(e)));
    return;
  }
  loading.remove();
  groups = Array.isArray(groups) ? groups : [];
  flat = Array.isArray(flat) ? flat : [];
  const flatById = new Map(flat.map((t) => [t.id, t]));
  const groupById = new Map(groups.map((g) => [g.id, g]));

  let balance = null;
  const loadBalance = async () => {
    try {
      balance = await get('/credits/balance', { signal });
    } catch (e) {
      if (e.name !== 'AbortError') balance = { error: errMsg(e) };
    }
    renderSummary();
  };

  // --- state ---
  const draft = loadDraft() || {};
  const s = {
    groupId: null,
    templateId: null,
    market: null,
    marketChosen: false,
    name: draft.name || randomName(),
    strategy: STRATEGIES.some((x) => x.value === draft.strategy) ? draft.strategy : 'SIMPLE',
    replicas: draft.replicas ?? '1',
    hours: draft.hours ?? '1',
    schedule: draft.schedule || '0 * * * *',
    jdText: '',
    jdEdited: false,
    tier: draft.tier || 'ALL',
    search: '',
    creating: false,
    createError: '',
  };

  const variantsOf = (g) => (g && Array.isArray(g.variants) ? g.variants : []);
  const hasChoice = (g) => variantsOf(g).some((v) => v.id);

  function resolveTemplate(id) {
    if (!id) return null;
    if (flatById.has(id)) {
      const t = flatById.get(id);
      const g = groupById.get(t.parent) || groups.find((gg) => variantsOf(gg).some((v) => v.template === id));
      return { groupId: g ? g.id : t.parent || id, templateId: id };
    }
    if (groupById.has(id)) {
      const g = groupById.get(id);
      const v = variantsOf(g)[0];
      return { groupId: id, templateId: v ? v.template : id };
    }
    return null;
  }

  const deepLink = params.template ? resolveTemplate(params.template) : null;
  const notFoundTemplate = params.template && !deepLink ? params.template : null;
  const fromDraft = !params.template && draft.templateId ? resolveTemplate(draft.templateId) : null;
  const initial = deepLink || fromDraft;
  if (initial) {
    s.groupId = initial.groupId;
    s.templateId = initial.templateId;
  }
  if (fromDraft && draft.jdEdited && typeof draft.jdText === 'string') {
    s.jdText = draft.jdText;
    s.jdEdited = true;
  }
  if (draft.market && (!deepLink || deepLink.templateId === draft.templateId)) {
    s.market = draft.market;
    s.marketChosen = !!draft.marketChosen;
  }

  const wantMarket = query && query.get('market');
  if (wantMarket) {
    const m = markets.find((x) => x.slug === wantMarket || x.address === wantMarket);
    if (m) {
      s.market = m.address;
      s.marketChosen = true;
    }
  }

  const template = () => (s.templateId ? flatById.get(s.templateId) : null);
  const group = () => (s.groupId ? groupById.get(s.groupId) : null);
  const templateJd = () => {
    const t = template();
    return t && t.job_definition ? t.job_definition : null;
  };
  const parsedJd = () => {
    if (!s.jdText.trim()) return { ok: false, error: 'The job definition is empty.' };
    try {
      const v = JSON.parse(s.jdText);
      if (!v || typeof v !== 'object' || Array.isArray(v)) return { ok: false, error: 'The job definition must be a JSON object.' };
      return { ok: true, value: v };
    } catch (e) {
      return { ok: false, error: e.message };
    }
  };
  const requiredMb = () => {
    const p = parsedJd();
    if (p.ok) return requiredVramMb(p.value);
    const g = group();
    const v = variantsOf(g).find((x) => x.template === s.templateId);
    if (v && typeof v.required_vram_mb === 'number') return v.required_vram_mb;
    return requiredVramMb(templateJd());
  };
  const compatible = (m) => m.kind === 'CPU' || Number(m.lowest_vram || 0) * 1024 >= requiredMb();
  const marketObj = () => markets.find((m) => m.address === s.market || m.slug === s.market) || null;

  function preselectMarket() {
    const cur = marketObj();
    if (cur && compatible(cur) && s.marketChosen) return;
    const ok = markets.filter(compatible);
    const choice =
      ok.find((m) => m.type === 'PREMIUM' && m.available_nodes > 0) ||
      ok.find((m) => m.type === 'COMMUNITY' && m.available_nodes > 0) ||
      ok.find((m) => m.slug === 'local-gpu') ||
      ok.find((m) => m.slug === 'local-cpu') ||
      (cur && compatible(cur) ? cur : null) ||
      ok[0] || null;
    s.market = choice ? choice.address : null;
    s.marketChosen = false;
  }

  function setTemplate(groupId, templateId) {
    const changed = templateId !== s.templateId;
    s.groupId = groupId;
    s.templateId = templateId;
    if (changed || !s.jdText) {
      const jd = templateJd();
      s.jdText = jd ? JSON.stringify(jd, null, 2) : '';
      s.jdEdited = false;
    }
    preselectMarket();
    s.createError = '';
    changedAll();
  }

  // --- layout ---
  const step = (n, title, body, testid) => h('section', { class: 'card step', 'aria-labelledby': `step-${n}-title`, testid },
    h('h2', { class: 'step-title', id: `step-${n}-title` }, h('span', { class: 'step-num', 'aria-hidden': 'true' }, String(n)), title), body);

  // Step 1: templates
  const searchInput = h('input', { type: 'search', id: 'template-search', testid: 'template-search', placeholder: 'Search templates', autocomplete: 'off', 'aria-label': 'Search templates' });
  const cards = h('div', { class: 'template-grid', role: 'list', testid: 'template-list' });
  const variantBox = h('div', { class: 'variant-box' });
  searchInput.addEventListener('input', () => {
    s.search = searchInput.value.trim().toLowerCase();
    renderCards();
  });
  const step1 = step(1, 'Choose a template', [
    notFoundTemplate ? h('div', { class: 'banner banner-warn', role: 'status', testid: 'template-not-found' }, `Template "${notFoundTemplate}" was not found. Pick one below.`) : null,
    h('div', { class: 'toolbar' }, searchInput),
    cards,
    variantBox,
  ], 'step-template');

  function renderCards() {
    clear(cards);
    const q = s.search;
    const list = groups.filter((g) => !q || [g.name, g.description, g.id, ...(g.category || []), ...variantsOf(g).map((v) => v.name)].join(' ').toLowerCase().includes(q));
    if (!list.length) cards.appendChild(h('p', { class: 'muted', testid: 'template-empty' }, 'No template matches your search.'));
    for (const g of list) {
      const selected = g.id === s.groupId;
      const card = h('button', { type: 'button', class: `template-card${selected ? ' selected' : ''}`, testid: `template-card-${g.id}`, 'aria-pressed': selected ? 'true' : 'false' },
        h('span', { class: 'avatar', 'aria-hidden': 'true' }, monogram(g.name)),
        h('span', { class: 'template-text' },
          h('span', { class: 'template-name' }, g.name || g.id),
          g.description ? h('span', { class: 'template-desc' }, g.description) : null,
          h('span', { class: 'chips' }, (g.category || []).map((c) => h('span', { class: 'chip' }, c)),
            variantsOf(g).length > 1 ? h('span', { class: 'chip chip-strong' }, `${variantsOf(g).length} variants`) : null)));
      card.addEventListener('click', () => {
        if (g.id === s.groupId) return;
        const v = variantsOf(g)[0];
        setTemplate(g.id, v ? v.template : g.id);
      });
      cards.appendChild(h('div', { role: 'listitem', class: 'template-item' }, card));
    }
    renderVariants();
  }

  function renderVariants() {
    clear(variantBox);
    const g = group();
    if (!g) return;
    const vs = variantsOf(g);
    const inList = vs.some((v) => v.template === s.templateId);
    if (!hasChoice(g) && inList) return;
    const options = vs.filter((v) => v.id).map((v) => {
      const checked = v.template === s.templateId;
      const input = h('input', { type: 'radio', name: 'variant', value: v.template, checked, id: `variant-${v.id}` });
      input.addEventListener('change', () => {
        if (input.checked) setTemplate(g.id, v.template);
      });
      return h('label', { class: `variant${checked ? ' selected' : ''}`, for: `variant-${v.id}`, testid: `variant-${v.id}` },
        input,
        h('span', { class: 'variant-text' },
          h('span', { class: 'variant-name' }, v.name || v.id),
          v.description ? h('span', { class: 'variant-desc' }, v.description) : null,
          typeof v.required_vram_mb === 'number' ? h('span', { class: 'variant-vram' }, `${fmtMb(v.required_vram_mb)} VRAM`) : null));
    });
    if (!inList && template()) {
      options.push(h('p', { class: 'muted small', testid: 'variant-unlisted' }, `Using ${template().name || s.templateId} (${s.templateId}).`));
    }
    variantBox.appendChild(h('fieldset', { class: 'variants', testid: 'variant-choice' },
      h('legend', null, `${g.name}: choose a model size`), h('div', { class: 'variant-list' }, options)));
  }

  // Step 2: markets
  const tierSelect = h('select', { id: 'tier-filter', testid: 'tier-filter' },
    [['ALL', 'All tiers'], ['PREMIUM', 'Premium'], ['COMMUNITY', 'Community'], ['OTHER', 'Other']].map(([v, l]) => h('option', { value: v, selected: v === s.tier }, l)));
  tierSelect.addEventListener('change', () => {
    s.tier = tierSelect.value;
    renderMarketTable();
    saveDraft(s);
  });
  const vramNote = h('p', { class: 'muted small', testid: 'required-vram' });
  const marketTableBox = h('div');
  const marketWarn = h('div', { class: 'banner banner-warn', role: 'status', testid: 'market-warning', hidden: true }, NO_NODE_MSG);
  const step2 = step(2, 'Select a GPU', [
    h('div', { class: 'toolbar' }, h('label', { for: 'tier-filter', class: 'inline-label' }, 'Tier'), tierSelect, vramNote),
    marketTableBox,
    marketWarn,
  ], 'step-market');

  function renderMarketTable() {
    const req = requiredMb();
    vramNote.textContent = req ? `This job needs ${fmtMb(req)} of VRAM.` : 'This job states no VRAM requirement.';
    const list = markets.filter((m) => s.tier === 'ALL' || m.type === s.tier);
    const sel = marketObj();
    const rows = list.map((m) => {
      const ok = compatible(m);
      const checked = sel && sel.address === m.address;
      const rid = `market-${m.slug || m.address}`;
      const radio = h('input', { type: 'radio', name: 'market', id: rid, value: m.address, checked, disabled: !ok, 'aria-describedby': ok ? undefined : `${rid}-why` });
      const choose = () => {
        if (!ok) return;
        s.market = m.address;
        s.marketChosen = true;
        s.createError = '';
        renderMarketTable();
        renderSummary();
        saveDraft(s);
      };
      radio.addEventListener('change', choose);
      const tr = h('tr', { class: `market-row${ok ? '' : ' disabled'}${checked ? ' selected' : ''}`, testid: `market-row-${m.slug || m.address}`, 'aria-disabled': ok ? undefined : 'true', 'data-selected': checked ? 'true' : 'false' },
        h('td', { class: 'cell-radio' }, radio),
        h('td', null, h('label', { for: rid, class: 'market-name' }, m.name), h('div', { class: 'muted small' }, m.slug),
          ok ? null : h('div', { class: 'row-why', id: `${rid}-why`, testid: 'vram-incompatible' }, VRAM_MSG)),
        h('td', null, badge(m.type)),
        h('td', null, m.kind === 'CPU' ? h('span', { class: 'muted' }, 'CPU') : `${m.lowest_vram} GB`),
        h('td', { class: 'num' }, `${fmtUsd(m.usd_price_per_hour)}/h`),
        h('td', { class: 'num' }, String(m.available_nodes ?? 0)));
      tr.addEventListener('click', (ev) => {
        if (ev.target !== radio && ok) {
          radio.checked = true;
          choose();
        }
      });
      return tr;
    });
    replace(marketTableBox, h('div', { class: 'table-wrap' }, h('table', { class: 'table table-select table-stack', testid: 'market-table' },
      h('caption', { class: 'sr-only' }, 'GPU markets'),
      h('thead', null, h('tr', null, h('th', { scope: 'col', class: 'cell-radio' }, h('span', { class: 'sr-only' }, 'Select')),
        h('th', { scope: 'col' }, 'GPU'), h('th', { scope: 'col' }, 'Tier'), h('th', { scope: 'col' }, 'VRAM'),
        h('th', { scope: 'col', class: 'num' }, '$/h incl. fee'), h('th', { scope: 'col', class: 'num' }, 'Available nodes'))),
      h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: '6', class: 'muted' }, 'No market in this tier.'))))));
    stackLabels(marketTableBox);
    marketWarn.hidden = !(sel && !(sel.available_nodes > 0) && sel.slug !== 'local-cpu');
  }

  // Step 3: settings
  const nameInput = h('input', { id: 'deploy-name', testid: 'name-input', value: s.name, autocomplete: 'off', maxlength: '100' });
  nameInput.addEventListener('input', () => {
    s.name = nameInput.value;
    changedSettings();
  });
  const regen = h('button', { type: 'button', class: 'btn btn-small btn-ghost', testid: 'name-regenerate', 'aria-label': 'Suggest another name' }, '↻ New name');
  regen.addEventListener('click', () => {
    s.name = randomName();
    nameInput.value = s.name;
    changedSettings();
  });
  const strategySelect = h('select', { id: 'deploy-strategy', testid: 'strategy-select', 'aria-describedby': 'strategy-help' },
    STRATEGIES.map((x) => h('option', { value: x.value, selected: x.value === s.strategy }, `${x.label} (${x.value})`)));
  const strategyHelp = h('p', { class: 'help', id: 'strategy-help', testid: 'strategy-help' });
  const replicasInput = h('input', { id: 'deploy-replicas', testid: 'replicas-input', type: 'number', min: '1', max: '100', step: '1', value: s.replicas, inputmode: 'numeric' });
  const timeoutInput = h('input', { id: 'deploy-timeout', testid: 'timeout-input', type: 'number', min: '0.02', max: '100', step: '0.01', value: s.hours, inputmode: 'decimal', 'aria-describedby': 'timeout-help' });
  const timeoutHelp = h('p', { class: 'help', id: 'timeout-help' });
  const scheduleInput = h('input', { id: 'deploy-schedule', testid: 'schedule-input', value: s.schedule, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'schedule-help' });
  const scheduleHelp = h('p', { class: 'help', id: 'schedule-help', testid: 'schedule-human', 'aria-live': 'polite' });
  const scheduleField = h('div', { class: 'field', testid: 'schedule-field' }, h('label', { for: 'deploy-schedule' }, 'Schedule (cron, UTC)'), scheduleInput, scheduleHelp);
  const fieldErr = (id) => h('p', { class: 'field-error', id, role: 'status' });
  const replicasErr = fieldErr('replicas-error');
  const timeoutErr = fieldErr('timeout-error');
  const nameErr = fieldErr('name-error');
  replicasInput.setAttribute('aria-errormessage', 'replicas-error');
  timeoutInput.setAttribute('aria-errormessage', 'timeout-error');
  strategySelect.addEventListener('change', () => {
    s.strategy = strategySelect.value;
    if (s.strategy === 'INFINITE' && Number(s.hours) < 1) {
      s.hours = '1';
      timeoutInput.value = '1';
    }
    changedSettings();
  });
  replicasInput.addEventListener('input', () => {
    s.replicas = replicasInput.value;
    changedSettings();
  });
  timeoutInput.addEventListener('input', () => {
    s.hours = timeoutInput.value;
    changedSettings();
  });
  scheduleInput.addEventListener('input', () => {
    s.schedule = scheduleInput.value;
    changedSettings();
  });

  const editor = h('textarea', { id: 'jd-editor', testid: 'job-definition-editor', class: 'code-editor', rows: '18', spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'jd-status' });
  const editorStatus = h('p', { id: 'jd-status', class: 'help', testid: 'job-definition-error', 'aria-live': 'polite' });
  const resetJd = h('button', { type: 'button', class: 'btn btn-small btn-ghost', testid: 'job-definition-reset' }, 'Reset to template');
  resetJd.addEventListener('click', () => {
    const jd = templateJd();
    s.jdText = jd ? JSON.stringify(jd, null, 2) : '';
    s.jdEdited = false;
    editor.value = s.jdText;
    changedJd();
  });
  editor.addEventListener('input', () => {
    s.jdText = editor.value;
    s.jdEdited = true;
    changedJd();
  });
  const advanced = h('details', { class: 'advanced', testid: 'advanced' },
    h('summary', { testid: 'advanced-toggle' }, 'Advanced: edit the job definition (JSON)'),
    h('div', { class: 'field' }, h('label', { for: 'jd-editor' }, 'Job definition'), editor, editorStatus, h('div', null, resetJd)));
  if (s.jdEdited) advanced.open = true;

  const step3 = step(3, 'Configure the deployment', [
    h('div', { class: 'form-grid' },
      h('div', { class: 'field' }, h('label', { for: 'deploy-name' }, 'Name'), h('div', { class: 'input-row' }, nameInput, regen), nameErr),
      h('div', { class: 'field' }, h('label', { for: 'deploy-strategy' }, 'Strategy'), strategySelect, strategyHelp),
      h('div', { class: 'field' }, h('label', { for: 'deploy-replicas' }, 'Replica Count'), replicasInput, h('p', { class: 'help' }, 'From 1 to 100. Each replica runs on its own GPU.'), replicasErr),
      h('div', { class: 'field' }, h('label', { for: 'deploy-timeout' }, 'Container Timeout (hours)'), timeoutInput, timeoutHelp, timeoutErr),
      scheduleField),
    advanced,
  ], 'step-settings');

  // Step 4: summary
  const summaryBox = h('div', { class: 'summary' });
  const step4 = step(4, 'Summary', summaryBox, 'step-summary');

  main.appendChild(h('div', { class: 'wizard' }, step1, step2, step3, step4));

  // --- validation ---
  function validate() {
    const errs = {};
    const r = Number(s.replicas);
    if (String(s.replicas).trim() === '' || !Number.isInteger(r) || r < 1 || r > 100) errs.replicas = 'Replicas must be a whole number from 1 to 100.';
    const hrs = Number(s.hours);
    const minH = s.strategy === 'INFINITE' ? 1 : 0.02;
    if (String(s.hours).trim() === '' || !Number.isFinite(hrs) || hrs < minH || hrs > 100) {
      errs.timeout = s.strategy === 'INFINITE' ? 'Infinite deployments need a timeout from 1 to 100 hours.' : 'The timeout must be from 0.02 to 100 hours.';
    }
    if (!s.name.trim()) errs.name = 'Give the deployment a name.';
    if (s.strategy === 'SCHEDULED' && !cronValid(s.schedule)) errs.schedule = 'Enter a 5-field cron schedule.';
    const jd = parsedJd();
    if (!jd.ok) errs.jd = `Job definition: ${jd.error}`;
    if (!s.templateId) errs.template = 'Choose a template.';
    const m = marketObj();
    if (!m) errs.market = 'Select a GPU market.';
    else if (!compatible(m)) errs.market = VRAM_MSG;
    return errs;
  }

  const minutes = () => Math.max(1, Math.round(Number(s.hours) * 60));

  function renderSettingsState() {
    const info = STRATEGIES.find((x) => x.value === s.strategy);
    strategyHelp.textContent = info ? info.help : '';
    scheduleField.hidden = s.strategy !== 'SCHEDULED';
    scheduleHelp.textContent = describeCron(s.schedule);
    const minH = s.strategy === 'INFINITE' ? 1 : 0.02;
    timeoutInput.min = String(minH);
    const hrs = Number(s.hours);
    timeoutHelp.textContent = `${s.strategy === 'INFINITE' ? 'From 1' : 'From 0.02'} to 100 hours. Each job's maximum lifetime${Number.isFinite(hrs) && hrs > 0 ? ` (${minutes()} min)` : ''}.`;
    const e = validate();
    const show = (el, input, msg) => {
      el.textContent = msg || '';
      if (input) {
        if (msg) input.setAttribute('aria-invalid', 'true');
        else input.removeAttribute('aria-invalid');
      }
    };
    show(replicasErr, replicasInput, e.replicas);
    show(timeoutErr, timeoutInput, e.timeout);
    show(nameErr, nameInput, e.name);
    if (e.schedule) scheduleInput.setAttribute('aria-invalid', 'true');
    else scheduleInput.removeAttribute('aria-invalid');
  }

  function renderEditorState() {
    if (editor.value !== s.jdText) editor.value = s.jdText;
    const p = parsedJd();
    editorStatus.className = `help ${p.ok ? 'ok' : 'field-error'}`;
    editorStatus.textContent = p.ok ? (s.jdEdited ? 'Valid JSON (edited).' : 'Valid JSON (the template as published).') : `JSON error: ${p.error}`;
    if (p.ok) editor.removeAttribute('aria-invalid');
    else editor.setAttribute('aria-invalid', 'true');
  }

  function renderSummary() {
    const t = template();
    const g = group();
    const m = marketObj();
    const r = Number(s.replicas);
    const errs = validate();
    const valid = !Object.keys(errs).length;
    const price = m ? Number(m.usd_price_per_hour || 0) : 0;
    const reps = Number.isInteger(r) && r > 0 ? r : 0;
    const mins = minutes();
    const perHourMicros = Math.round(price * 1e6) * reps;
    const needMicros = costMicros(price, reps, mins);
    const hasBalance = balance && typeof balance.availableCredits === 'number';
    const availMicros = hasBalance ? Math.round(balance.availableCredits * 1e6) : null;
    const insufficient = valid && hasBalance && availMicros < needMicros;
    const variant = variantsOf(g).find((v) => v.template === s.templateId);
    const strat = STRATEGIES.find((x) => x.value === s.strategy);
    const row = (label, value, testid) => [h('dt', null, label), h('dd', { testid }, value)];

    const createBtn = h('button', { type: 'button', class: 'btn btn-primary btn-large', testid: 'create-deployment', disabled: !valid || insufficient || s.creating },
      s.creating ? 'Creating…' : 'Create Deployment');
    if (s.creating) createBtn.setAttribute('aria-busy', 'true');
    createBtn.addEventListener('click', create);

    const blocks = [];
    if (!valid) {
      blocks.push(h('ul', { class: 'blocked', testid: 'create-blocked-reason', role: 'status' }, Object.values(errs).map((x) => h('li', null, x))));
    }
    if (insufficient) {
      const claimBox = h('div', { class: 'claim-inline', hidden: true });
      const claimInput = h('input', { id: 'wizard-claim', testid: 'claim-code-input', autocomplete: 'off', placeholder: 'Code' });
      const claimErr = h('p', { class: 'form-error', role: 'alert', testid: 'claim-error', hidden: true });
      const claimForm = h('form', { class: 'input-row', novalidate: true },
        h('label', { for: 'wizard-claim', class: 'sr-only' }, 'Claim code'), claimInput,
        h('button', { type: 'submit', class: 'btn', testid: 'claim-code-submit' }, 'Claim'));
      claimForm.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const code = claimInput.value.trim();
        if (!code) return;
        claimErr.hidden = true;
        try {
          await post('/credits/claim', { code });
          toast('Code claimed; credits added.');
          await loadBalance();
        } catch (e) {
          claimErr.hidden = false;
          claimErr.textContent = errMsg(e);
        }
      });
      claimBox.append(claimForm, claimErr);
      const claimToggle = h('button', { type: 'button', class: 'btn btn-link', testid: 'claim-code-toggle', 'aria-expanded': 'false' }, 'Have a code? Claim it');
      claimToggle.addEventListener('click', () => {
        claimBox.hidden = !claimBox.hidden;
        claimToggle.setAttribute('aria-expanded', claimBox.hidden ? 'false' : 'true');
        if (!claimBox.hidden) claimInput.focus();
      });
      blocks.push(h('div', { class: 'insufficient' },
        h('p', { class: 'form-error', role: 'alert', testid: 'insufficient-credits' },
          `Insufficient credits. Need ${usdFromMicros(needMicros, 3)}, have ${usdFromMicros(Math.max(0, availMicros), 2, true)}`),
        h('div', { class: 'input-row' },
          h('a', { href: '/account#credits', class: 'btn', testid: 'buy-credits' }, 'Buy Credits'),
          claimToggle),
        claimBox));
    }
    if (s.createError) blocks.push(h('p', { class: 'form-error', role: 'alert', testid: 'create-error' }, s.createError));

    replace(summaryBox,
      h('dl', { class: 'summary-list' },
        row('Template', t ? (variant && hasChoice(g) ? `${g.name} · ${variant.name}` : t.name || t.id) : '—', 'summary-template'),
        row('GPU', m ? `${m.name} (${m.type}${m.kind === 'CPU' ? ', CPU' : `, ${m.lowest_vram} GB`})` : '—', 'summary-gpu'),
        row('Strategy', strat ? `${strat.label} (${strat.value})` : s.strategy, 'summary-strategy'),
        s.strategy === 'SCHEDULED' ? row('Schedule', `${s.schedule} — ${describeCron(s.schedule)}`, 'summary-schedule') : null,
        row('Replicas', reps ? String(reps) : '—', 'summary-replicas'),
        row('Timeout', Number.isFinite(Number(s.hours)) && Number(s.hours) > 0 ? `${Number(s.hours)} h (${mins} min)` : '—', 'summary-timeout'),
        row('Cost', m && reps ? `${usdFromMicros(perHourMicros, perHourMicros % 10000 ? 4 : 2)}/h` : '—', 'summary-cost-per-hour'),
        row(s.strategy === 'SCHEDULED' ? 'Maximum cost per run' : s.strategy === 'SIMPLE' ? 'Maximum cost' : 'Maximum cost per period', m && reps ? usdFromMicros(needMicros, needMicros % 1000 ? 4 : 3) : '—', 'summary-max-cost'),
        row('Credit balance', hasBalance ? `${usdFromMicros(availMicros, 2, true)} available` : balance && balance.error ? balance.error : 'Loading…', 'credit-balance')),
      h('p', { class: 'muted small' }, 'Billed per second while a job runs; unused reserved credits are refunded when it ends.'),
      blocks,
      h('div', { class: 'create-row' }, createBtn));
  }

  async function create() {
    const errs = validate();
    if (Object.keys(errs).length || s.creating) return;
    const m = marketObj();
    const jd = parsedJd().value;
    const body = {
      name: s.name.trim(),
      market: m.address,
      strategy: s.strategy,
      replicas: Number(s.replicas),
      timeout: minutes(),
      autostart: true,
      template: s.templateId,
      job_definition: jd,
    };
    if (s.strategy === 'SCHEDULED') body.schedule = s.schedule.trim();
    s.creating = true;
    s.createError = '';
    renderSummary();
    try {
      const d = await post('/deployments/create', body);
      clearDraft();
      toast(`Deployment ${d.name || body.name} created.`);
      navigate(`/deployments/${encodeURIComponent(d.id)}`);
    } catch (e) {
      if (e.name === 'AbortError') return;
      s.creating = false;
      s.createError = errMsg(e);
      renderSummary();
      if (e.status === 402) loadBalance();
      const el = summaryBox.querySelector('[data-testid="create-error"]');
      if (el) el.scrollIntoView({ block: 'nearest' });
    }
  }

  // --- change propagation ---
  function changedSettings() {
    s.createError = '';
    renderSettingsState();
    renderSummary();
    saveDraft(s);
  }
  function changedJd() {
    const sel = marketObj();
    if (sel && !compatible(sel)) preselectMarket();
    renderEditorState();
    renderMarketTable();
    renderSummary();
    saveDraft(s);
  }
  function changedAll() {
    renderCards();
    renderEditorState();
    renderMarketTable();
    renderSettingsState();
    renderSummary();
    saveDraft(s);
  }

  if (s.templateId) {
    if (!s.jdText) {
      const jd = templateJd();
      s.jdText = jd ? JSON.stringify(jd, null, 2) : '';
    }
    if (!s.market || !marketObj() || !compatible(marketObj())) preselectMarket();
    else if (!s.marketChosen) preselectMarket();
  } else {
    // Nothing chosen yet: the first template (DeepSeek R1 when present) keeps the wizard usable at once.
    const first = groups.find((g) => g.id === 'deepseek-r1-qwen') || groups[0];
    if (first) {
      const v = variantsOf(first)[0];
      s.groupId = first.id;
      s.templateId = v ? v.template : first.id;
      const jd = templateJd();
      s.jdText = jd ? JSON.stringify(jd, null, 2) : '';
      preselectMarket();
    }
  }
  changedAll();
  loadBalance();
}
