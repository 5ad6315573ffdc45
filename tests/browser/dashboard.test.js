// Browser end-to-end tests of the dashboard (issue "Dashboard: the tutorial's flow in a browser"):
// Debian's chromium, headless, driven by playwright-core against `infera platform` serving the
// dashboard at /. Contract: spec/platform.md (dashboard pages) and the tutorial.
//
// Usage: node tests/browser/dashboard.test.js <infera binary> <tiny model gguf> [artifacts dir]
//
// Every describe block starts its own platform (harness.js) and stops it in `after`; one browser
// serves them all, each test in a fresh context (its own session storage). Screenshots of every step
// go to $INFERA_ARTIFACTS/browser/<test>/, else to the artifacts dir argument (ctest: the build tree).
// Exits 77 (ctest: skipped) when chromium or playwright-core is missing, unless INFERA_REQUIRE_ORACLES
// is set. Waits are on conditions only (sanitizer builds are slow), never fixed sleeps.
'use strict';
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const H = require('./harness.js');

const { waitFor, sleep } = H;

const BIN = process.argv[2];
const MODEL = process.argv[3];
if (!BIN || !MODEL || !fs.existsSync(BIN) || !fs.existsSync(MODEL)) {
  console.error('usage: node tests/browser/dashboard.test.js <infera binary> <tiny model gguf> [artifacts dir]');
  process.exit(2);
}
const PW = H.requireBrowser('dashboard.test.js');
const ART = H.artifactsDir(process.argv[4]);
H.globalTimeout('dashboard.test.js', 280_000);

const PRICE = 0.36;  // $/h on local-cpu in the tutorial walk
const SERVED_NAME = 'DeepSeek-R1-Distill-Qwen-1.5B';
const VRAM_MSG = 'This GPU does not meet the required VRAM specifications for your job.';

let browser;
before(async () => { browser = await H.launchBrowser(PW); });
after(async () => { if (browser) await browser.close(); });

// Screenshots of one test: <ART>/<test>/<nn>-<step>.png, numbered in order.
function shooter(page, test) {
  const dir = path.join(ART, test);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  let n = 0;
  return async (step, { fullPage = false } = {}) => {
    n += 1;
    await page.screenshot({ path: path.join(dir, `${String(n).padStart(2, '0')}-${step}.png`), fullPage, animations: 'disabled' });
  };
}

// Runs `body(page, shot)` in a fresh context; on failure a screenshot of the page as it was is kept
// (failure.png); uncaught page errors fail the test.
async function withPage(platform, test, body, opts) {
  const page = await H.newPage(browser, platform, opts);
  const shot = shooter(page, test);
  try {
    await body(page, shot);
    assert.deepEqual(page.errors, [], 'no uncaught errors in the page');
  } catch (e) {
    try { await page.screenshot({ path: path.join(ART, test, 'failure.png'), fullPage: true }); } catch (_) { /* page gone */ }
    throw e;
  } finally {
    await page.context().close();
  }
}

const text = async (loc) => (await loc.innerText()).trim();
const testid = (page, id) => page.getByTestId(id);
// A badge (data-testid `id`) whose data-value is `value`.
const badgeWith = (scope, id, value) => scope.locator(`[data-testid="${id}"][data-value="${value}"]`);

function usePlatform(opts = {}) {
  const ctx = {};
  before(async () => { ctx.p = await H.Platform.start({ bin: BIN, model: MODEL, ...opts }); });
  after(async () => { if (ctx.p) await ctx.p.stop(); });
  return ctx;
}

// ---------------------------------------------------------------------------------------------

describe('1. sign in', () => {
  const ctx = usePlatform();

  it('a wrong key is refused; the admin key signs in (keyboard only); sign out forgets the key', async () => {
    await withPage(ctx.p, 'signin', async (page, shot) => {
      // A protected page sends to the sign-in page, remembering where to go next.
      await page.goto(`${ctx.p.base}/account`);
      await page.waitForURL(/\/signin\?next=%2Faccount$/);
      const key = testid(page, 'signin-key');
      await key.waitFor();
      assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.dataset.testid), 'signin-key',
        'the key field has the focus');
      assert.equal(await page.locator('label[for="signin-key"]').innerText(), 'API key');
      await shot('signin');

      const wrong = 'inf_thisIsNotAValidKey0123456789abcdefghij';
      assert.equal((await fetch(`${ctx.p.base}/api/whoami`, { headers: { authorization: `Bearer ${wrong}` } })).status, 401);
      await page.keyboard.type(wrong);
      await page.keyboard.press('Enter');
      const err = testid(page, 'signin-error');
      await err.waitFor({ state: 'visible' });
      assert.equal(await text(err), 'That key was refused.');
      assert.match(page.url(), /\/signin\?next=%2Faccount$/, 'still on the sign-in page');
      assert.equal(await key.getAttribute('aria-invalid'), 'true');
      assert.equal(await page.evaluate(() => sessionStorage.getItem('infera.apiKey')), null, 'a refused key is not kept');
      await shot('wrong-key-refused');

      await key.fill(ctx.p.key);
      await page.keyboard.press('Enter');
      await page.waitForURL(/\/account$/);
      await page.getByRole('heading', { level: 1, name: 'Account' }).waitFor();
      await testid(page, 'whoami').getByText('admin').waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem('infera.apiKey')), ctx.p.key);
      await shot('signed-in-account');

      // The key lives in this tab's session: a reload keeps it.
      await page.reload();
      await page.getByRole('heading', { level: 1, name: 'Account' }).waitFor();

      await testid(page, 'signout').click();
      await page.waitForURL(/\/signin$/);
      await testid(page, 'toast').getByText('Signed out.').waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem('infera.apiKey')), null);
      await page.goto(`${ctx.p.base}/deployments`);
      await page.waitForURL(/\/signin\?next=%2Fdeployments$/);
      await shot('signed-out');
    });
  });
});

describe('2. the tutorial in the browser', () => {
  const ctx = usePlatform({ price: PRICE });

  it('Deploy → DeepSeek-R1 → local-cpu → SIMPLE, 1 replica → Create → logs → ONLINE → copy URL → Chat → Stop', async () => {
    await withPage(ctx.p, 'tutorial', async (page, shot) => {
      await H.signIn(page, ctx.p);
      await testid(page, 'nav-deploy').click();
      await page.waitForURL(/\/deployments\/create$/);
      await page.getByRole('heading', { level: 1, name: 'Deploy' }).waitFor();

      // Template: DeepSeek-R1, 1.5B variant.
      const card = testid(page, 'template-card-deepseek-r1-qwen');
      await card.click();
      assert.equal(await card.getAttribute('aria-pressed'), 'true');
      // A variant too large for a GPU disables that market, with the reason.
      await testid(page, 'variant-32b').click();
      const small = testid(page, 'market-row-nvidia-3060');
      await waitAttr(small, 'aria-disabled', 'true');
      assert.equal(await text(small.getByTestId('vram-incompatible')), VRAM_MSG);
      assert.ok(await small.locator('input[type=radio]').isDisabled());
      await testid(page, 'variant-1-5b').click();
      assert.ok(await page.locator('#variant-1-5b').isChecked());
      await waitAttr(small, 'aria-disabled', null);
      assert.equal(await text(testid(page, 'required-vram')), 'This job needs 6.0 GB of VRAM.');

      // Market: local-cpu, priced as the platform says, with its one node.
      const cpu = testid(page, 'market-row-local-cpu');
      await cpu.click();
      await waitAttr(cpu, 'data-selected', 'true');
      const cpuCells = await cpu.locator('td').allInnerTexts();
      assert.equal(cpuCells[4].trim(), '$0.36/h', `local-cpu row: ${cpuCells}`);
      assert.equal(cpuCells[5].trim(), '1', 'one available node (the local node)');

      // Settings: SIMPLE, 1 replica, 0.5 h.
      await testid(page, 'strategy-select').selectOption('SIMPLE');
      assert.match(await text(testid(page, 'strategy-help')), /^Runs the replicas once for the timeout/);
      await testid(page, 'replicas-input').fill('1');
      await testid(page, 'timeout-input').fill('0.5');
      const name = await testid(page, 'name-input').inputValue();
      assert.match(name, /^[a-z]+_[a-z]+_[a-z]+$/, 'a generated name');

      // Live cost estimate: $0.36/h, at most $0.180 for 30 min; $10 of sign-up credit.
      assert.equal(await text(testid(page, 'summary-template')), 'DeepSeek R1 Qwen Models · 1.5B Model');
      assert.equal(await text(testid(page, 'summary-gpu')), 'Local CPU (OTHER, CPU)');
      assert.equal(await text(testid(page, 'summary-replicas')), '1');
      assert.equal(await text(testid(page, 'summary-timeout')), '0.5 h (30 min)');
      assert.equal(await text(testid(page, 'summary-cost-per-hour')), '$0.36/h');
      assert.equal(await text(testid(page, 'summary-max-cost')), '$0.180');
      await waitText(testid(page, 'credit-balance'), '$10.00 available');
      await shot('deploy-wizard', { fullPage: true });

      // Create → the deployment's page.
      await testid(page, 'create-deployment').click();
      await page.waitForURL(/\/deployments\/[1-9A-HJ-NP-Za-km-z]{20,}$/);
      // (Toasts leave after a few seconds: each is looked for first.)
      await testid(page, 'toast').getByText(`Deployment ${name} created.`).waitFor();
      const depId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
      await waitText(testid(page, 'deployment-name'), name);
      const dep = await ctx.p.deployment(depId);
      assert.equal(dep.name, name);
      assert.equal(dep.strategy, 'SIMPLE');
      assert.equal(dep.replicas, 1);
      assert.equal(dep.timeout, 30);
      assert.equal(dep.template, H.TEMPLATE_ID);
      assert.equal(dep.market_slug, 'local-cpu');

      // Logs appear (live): the job is listed, the replica starts serving, the health checks pass.
      await testid(page, 'tab-logs').click();
      assert.match(page.url(), /\?tab=logs$/);
      const logs = testid(page, 'logs-view');
      await logs.getByText('Job listed on market local-cpu').waitFor();
      await logs.getByText(`as '${SERVED_NAME}'`).waitFor({ timeout: 90_000 });
      await logs.getByText('Health checks passed: the endpoint is ready').waitFor({ timeout: 90_000 });
      await shot('logs');

      // Overview: the endpoint goes ONLINE, the deployment is RUNNING with 1/1 ready.
      await testid(page, 'tab-overview').click();
      await badgeWith(page, 'endpoint-status', 'ONLINE').waitFor({ timeout: 90_000 });
      await badgeWith(page, 'deployment-status', 'RUNNING').waitFor();
      await waitText(page.locator('.badges [data-testid="readiness"]'), 'Running · Ready 1/1');
      const url = (await ctx.p.deployment(depId)).endpoints[0].url;
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/e\/[a-z0-9]+\/$/);
      assert.equal(await text(testid(page, 'endpoint-url')), url);
      await shot('overview-online', { fullPage: true });

      // Copy the URL: the clipboard holds it, and it serves the model.
      const copy = testid(page, 'copy-endpoint');
      await copy.click();
      await testid(page, 'toast').getByText('Copied endpoint URL to the clipboard.').waitFor();
      await waitAttr(copy, 'data-copied', 'true');
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), url);
      const models = await (await fetch(`${url}v1/models`, { signal: AbortSignal.timeout(15_000) })).json();
      assert.deepEqual(models.data.map((m) => m.id), [SERVED_NAME]);
      assert.match(await text(testid(page, 'curl-command')), new RegExp(`^curl ${escapeRe(url)}v1/chat/completions `));

      // Job page → Chat: a streamed answer from the replica. A tap on fetch() keeps a copy of each
      // chat completions body as it streams to the page.
      await page.evaluate(tapChatStreams);
      await testid(page, 'job-link').first().click();
      await page.waitForURL(/\/jobs\/[^/?]+$/);
      await testid(page, 'tab-chat').click();
      const modelSel = testid(page, 'chat-model');
      await modelSel.locator(`option[value="${SERVED_NAME}"]`).waitFor({ state: 'attached' });
      await testid(page, 'chat-max-tokens').fill('16');
      await testid(page, 'chat-temperature').fill('0');  // greedy: the same text every run
      const input = testid(page, 'chat-input');
      await input.fill('Give me a short fun fact about the roman empire');
      const [res] = await Promise.all([
        page.waitForResponse((r) => r.url() === `${url}v1/chat/completions` && r.request().method() === 'POST'),
        input.press('Enter'),
      ]);
      const sent = res.request().postDataJSON();
      assert.equal(sent.stream, true, 'the chat streams');
      assert.equal(sent.model, SERVED_NAME);
      assert.equal(sent.max_tokens, 16);
      assert.equal(sent.temperature, 0);
      assert.deepEqual(sent.messages, [{ role: 'user', content: 'Give me a short fun fact about the roman empire' }]);
      assert.equal(res.status(), 200);
      assert.match(res.headers()['content-type'], /^text\/event-stream/);
      const answer = testid(page, 'chat-answer').last();
      await waitAttr(answer, 'aria-busy', null, 60_000);
      // What the page shows (reasoning + answer) is what the server streamed (recorded by the fetch
      // tap installed below, as CDP keeps no body of a streamed response).
      const tapped = await waitFor('the tapped stream to end', async () => {
        const t = await page.evaluate(() => window.__chatStreams);
        return t.length && /\n\n$/.test(t[0]) && t[0].includes('[DONE]') ? t : false;
      });
      assert.equal(tapped.length, 1);
      const sseEvents = tapped[0].split('\n').filter((l) => l.startsWith('data:'));
      assert.ok(sseEvents.length >= 3, `a stream of chunks: ${tapped[0].slice(0, 300)}`);
      assert.equal(sseEvents[sseEvents.length - 1], 'data: [DONE]');
      const streamed = sseContent(tapped[0]);
      assert.ok(streamed.length > 0, 'the server streamed content');
      const shown = (await page.evaluate(() => {
        const a = [...document.querySelectorAll('[data-testid="chat-assistant"]')].pop();
        return a.querySelector('.reasoning-text').textContent + a.querySelector('[data-testid="chat-answer"]').textContent;
      }));
      assert.equal(squash(shown), squash(streamed));
      assert.match(await text(page.locator('.bubble-assistant .bubble-meta').last()), /^\d+(\.\d+)? s\b/);
      assert.equal(await testid(page, 'chat-error').isHidden(), true);
      await shot('chat-answer');

      // Reasoning as DeepSeek-R1 writes it ("<think>…</think>" in the content; the template has no
      // reasoning parser) is folded into a collapsed "Reasoning" above the answer. The tiny random
      // model cannot think on cue, so this turn's stream is a recorded R1-style one.
      await page.route(`${url}v1/chat/completions`, (route) => route.fulfill({
        status: 200,
        headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
        body: r1Stream(['<think>', '\nThe user wants', ' a fact about', ' Rome.', '\n</think>', '\n\nRoman roads', ' ran about 80,000 km.']),
      }));
      await input.fill('And another one?');
      await testid(page, 'chat-send').click();
      const assistant = testid(page, 'chat-assistant').last();
      await waitAttr(assistant.getByTestId('chat-answer'), 'aria-busy', null);
      await page.unroute(`${url}v1/chat/completions`);
      assert.equal(await text(assistant.getByTestId('chat-answer')), 'Roman roads ran about 80,000 km.');
      const reasoning = assistant.getByTestId('chat-reasoning');
      assert.equal(await reasoning.isVisible(), true);
      assert.equal(await reasoning.evaluate((d) => d.open), false, 'the reasoning starts collapsed');
      assert.equal(await text(reasoning.locator('summary')), 'Reasoning (7 words)');
      assert.equal(await reasoning.locator('.reasoning-text').isVisible(), false);
      await reasoning.locator('summary').click();
      assert.equal(await reasoning.evaluate((d) => d.open), true);
      assert.equal(await text(reasoning.locator('.reasoning-text')), 'The user wants a fact about Rome.');
      assert.equal((await testid(page, 'chat-user').allInnerTexts()).length, 2, 'both turns are shown');
      await shot('chat-reasoning', { fullPage: true });

      // Back to the deployment: Actions → Stop Deployment → confirm → STOPPED.
      await testid(page, 'job-deployment-link').click();
      await page.waitForURL(new RegExp(`/deployments/${depId}$`));
      await badgeWith(page, 'deployment-status', 'RUNNING').waitFor();
      const menu = testid(page, 'actions-menu');
      await menu.click();
      assert.equal(await menu.getAttribute('aria-expanded'), 'true');
      const stop = testid(page, 'action-stop');
      assert.equal(await stop.isEnabled(), true);
      assert.equal(await testid(page, 'action-archive').isDisabled(), true, 'a RUNNING deployment cannot be archived');
      await shot('actions-menu');
      await stop.click();
      const dialog = page.getByRole('dialog', { name: 'Stop deployment?' });
      await dialog.waitFor();
      assert.match(await text(dialog), new RegExp(`Stop ${name}\\?`));
      await shot('stop-confirm');
      assert.equal((await ctx.p.deployment(depId)).status, 'RUNNING', 'nothing happens before the confirmation');
      await dialog.getByTestId('confirm-ok').click();
      await badgeWith(page, 'deployment-status', 'STOPPED').waitFor({ timeout: 60_000 });
      assert.equal((await ctx.p.deployment(depId)).status, 'STOPPED');
      await waitFor('the endpoint to leave ONLINE', async () => (await badgeWith(page, 'endpoint-status', 'ONLINE').count()) === 0);
      await shot('stopped');

      // Events: the history shows the way there; Configuration: revision 1, active.
      await testid(page, 'tab-events').click();
      const events = testid(page, 'events-table');
      await events.getByText('DEPLOYMENT_STATUS_CHANGED').first().waitFor();
      await events.getByText(/STOPPED/).first().waitFor();
      await shot('events');
      await testid(page, 'tab-configuration').click();
      await testid(page, 'revision-row-1').getByTestId('revision-active').waitFor();
      assert.equal(JSON.parse(await testid(page, 'revision-editor').inputValue()).ops[0].id,
        (await ctx.p.templateJD()).ops[0].id);
      await shot('configuration');
    });
    await waitFor('no replica process left', () => H.leftoverServes().length === 0, { timeout: 30_000 });
  });
});

describe('3. insufficient credits', () => {
  const ctx = usePlatform();

  it('blocks Create Deployment with the exact message the platform answers', async () => {
    await withPage(ctx.p, 'insufficient-credits', async (page, shot) => {
      await H.signIn(page, ctx.p);
      await page.goto(`${ctx.p.base}/deployments/create`);
      await testid(page, 'template-card-deepseek-r1-qwen').click();
      await testid(page, 'variant-1-5b').click();
      await testid(page, 'market-row-nvidia-8xh100').click();
      await testid(page, 'replicas-input').fill('1');
      await testid(page, 'timeout-input').fill('1');
      const msg = testid(page, 'insufficient-credits');
      await waitText(msg, 'Insufficient credits. Need $18.200, have $10.00');
      assert.equal(await testid(page, 'create-deployment').isDisabled(), true);
      assert.equal(await testid(page, 'buy-credits').getAttribute('href'), '/account#credits');
      // The same request to the platform: 402 with the same words.
      const body = { name: 'too_big', market: 'nvidia-8xh100', replicas: 1, timeout: 60, strategy: 'SIMPLE', autostart: true,
        template: H.TEMPLATE_ID, job_definition: await ctx.p.templateJD() };
      const r = await ctx.p.post('/api/deployments/create', body);
      assert.equal(r.status, 402, r.text);
      assert.deepEqual(r.json, { error: await text(msg) });
      await msg.scrollIntoViewIfNeeded();
      await shot('insufficient-8xh100');

      // Replicas × timeout: 2 × 20 h on nvidia-4090.
      await testid(page, 'market-row-nvidia-4090').click();
      await testid(page, 'replicas-input').fill('2');
      await testid(page, 'timeout-input').fill('20');
      await waitText(msg, 'Insufficient credits. Need $11.636, have $10.00');
      assert.equal(await testid(page, 'create-deployment').isDisabled(), true);
      await shot('insufficient-4090x2');

      // A market that fits the balance unblocks it.
      await testid(page, 'market-row-local-cpu').click();
      await msg.waitFor({ state: 'detached' });
      assert.equal(await testid(page, 'create-deployment').isEnabled(), true);
      assert.equal((await ctx.p.get('/api/deployments')).json.pagination.total_items, 0, 'nothing was created');
    });
  });
});

describe('4. deployments list', () => {
  const ctx = usePlatform();
  const ids = {};

  before(async () => {
    // Statuses without any replica: DRAFTs, a RUNNING deployment waiting for a GPU node, a STOPPED
    // and an ARCHIVED one.
    ids.alpha = (await ctx.p.create({ name: 'alpha_draft', autostart: false })).id;
    ids.beta = (await ctx.p.create({ name: 'beta_draft', autostart: false })).id;
    ids.gamma = (await ctx.p.create({ name: 'gamma_waiting', market: 'nvidia-4090' })).id;
    ids.delta = (await ctx.p.create({ name: 'delta_stopped', market: 'nvidia-4090' })).id;
    ids.eps = (await ctx.p.create({ name: 'epsilon_archived', autostart: false })).id;
    await ctx.p.waitStatus(ids.gamma, 'RUNNING');
    await ctx.p.waitStatus(ids.delta, 'RUNNING');
    assert.equal((await ctx.p.post(`/api/deployments/${ids.delta}/stop`)).status, 200);
    await ctx.p.waitStatus(ids.delta, 'STOPPED');
    assert.equal((await ctx.p.post(`/api/deployments/${ids.eps}/archive`)).status, 200);
  });

  it('status filter, search, archived, live updates and the per-row Actions menu', async () => {
    await withPage(ctx.p, 'deployments-list', async (page, shot) => {
      await H.signIn(page, ctx.p);
      const table = testid(page, 'deployments-table');
      const names = async () => (await table.locator('[data-testid="deployment-link"]').allInnerTexts()).map((s) => s.trim()).sort();
      const rowsAre = (want) => waitFor(`rows ${want}`, async () => {
        const got = (await table.count()) ? await names() : [];
        return JSON.stringify(got) === JSON.stringify([...want].sort()) ? got : false;
      }, { timeout: 20_000 });
      const row = (id) => testid(page, `deployment-row-${id}`);

      await rowsAre(['alpha_draft', 'beta_draft', 'gamma_waiting', 'delta_stopped']);
      await waitText(testid(page, 'deployments-count'), '4 of 4 deployments');
      await badgeWith(row(ids.gamma), 'deployment-status', 'RUNNING').waitFor();
      await badgeWith(row(ids.delta), 'deployment-status', 'STOPPED').waitFor();
      await badgeWith(row(ids.alpha), 'deployment-status', 'DRAFT').waitFor();
      await shot('all');

      // Status filter (kept in the URL).
      await testid(page, 'status-filter').selectOption('DRAFT');
      await rowsAre(['alpha_draft', 'beta_draft']);
      assert.match(page.url(), /[?&]status=DRAFT/);
      await shot('status-draft');

      // Search within the filter.
      await testid(page, 'search-input').fill('beta');
      await rowsAre(['beta_draft']);
      assert.match(page.url(), /[?&]search=beta/);
      await testid(page, 'search-input').fill('gamma');
      await testid(page, 'deployments-empty').getByText('No deployment matches these filters.').waitFor();
      await shot('no-match');

      // All statuses; the search alone; then by id.
      await testid(page, 'status-filter').selectOption('');
      await rowsAre(['gamma_waiting']);
      await testid(page, 'search-input').fill(ids.delta);
      await rowsAre(['delta_stopped']);
      await testid(page, 'search-input').fill('');
      await rowsAre(['alpha_draft', 'beta_draft', 'gamma_waiting', 'delta_stopped']);

      // Archived ones only on request.
      await testid(page, 'show-archived').check();
      await rowsAre(['alpha_draft', 'beta_draft', 'gamma_waiting', 'delta_stopped', 'epsilon_archived']);
      await badgeWith(row(ids.eps), 'deployment-status', 'ARCHIVED').waitFor();
      await shot('with-archived');
      await testid(page, 'show-archived').uncheck();
      await rowsAre(['alpha_draft', 'beta_draft', 'gamma_waiting', 'delta_stopped']);

      // Filters survive a reload through the URL.
      await page.goto(`${ctx.p.base}/deployments?status=STOPPED`);
      await rowsAre(['delta_stopped']);
      assert.equal(await testid(page, 'status-filter').inputValue(), 'STOPPED');
      await page.goto(`${ctx.p.base}/deployments`);
      await rowsAre(['alpha_draft', 'beta_draft', 'gamma_waiting', 'delta_stopped']);

      // Live: a deployment stopped elsewhere changes its badge without a reload.
      await testid(page, 'live-indicator').and(page.locator('.on')).waitFor();
      assert.equal((await ctx.p.post(`/api/deployments/${ids.gamma}/stop`)).status, 200);
      await badgeWith(row(ids.gamma), 'deployment-status', 'STOPPED').waitFor();

      // The row's Actions menu, by keyboard: ArrowDown opens it, Archive → confirm → the row leaves.
      const menu = row(ids.alpha).getByTestId('actions-menu');
      await menu.focus();
      await page.keyboard.press('ArrowDown');
      await waitAttr(menu, 'aria-expanded', 'true');
      assert.equal(await row(ids.alpha).getByTestId('action-stop').isDisabled(), true, 'a DRAFT cannot be stopped');
      assert.equal(await row(ids.alpha).getByTestId('action-start').evaluate((b) => b === document.activeElement), true,
        'the first enabled item has the focus');
      await shot('row-actions');
      await row(ids.alpha).getByTestId('action-archive').click();
      const dialog = page.getByRole('dialog', { name: 'Archive deployment?' });
      await dialog.waitFor();
      await dialog.getByTestId('confirm-ok').click();
      await rowsAre(['beta_draft', 'gamma_waiting', 'delta_stopped']);
      assert.equal((await ctx.p.deployment(ids.alpha)).status, 'ARCHIVED');
      await shot('after-archive');
    });
  });
});

describe('5. phone width and keyboard', () => {
  const ctx = usePlatform();

  it('every page fits 390 px without sideways scrolling, and every form control has a label', async () => {
    await ctx.p.create({ name: 'phone_draft', autostart: false });
    const dep = (await ctx.p.create({ name: 'phone_running' })).id;
    await ctx.p.waitReady(dep);
    const job = (await ctx.p.jobs(dep))[0].job;
    await withPage(ctx.p, 'phone', async (page, shot) => {
      await H.signIn(page, ctx.p);
      const online = () => badgeWith(page, 'endpoint-status', 'ONLINE');
      const pages = [
        ['deployments', '/deployments', () => testid(page, 'deployments-table')],
        ['deploy', '/deployments/create', () => testid(page, 'market-table')],
        ['deployment', `/deployments/${dep}`, online],
        ['deployment-logs', `/deployments/${dep}?tab=logs`, () => testid(page, 'logs-view').getByText('Health checks passed')],
        ['deployment-events', `/deployments/${dep}?tab=events`, () => testid(page, 'events-table')],
        ['deployment-config', `/deployments/${dep}?tab=configuration`, () => testid(page, 'revisions-table')],
        ['job', `/deployments/${dep}/jobs/${job}`, () => testid(page, 'job-definition')],
        ['job-chat', `/deployments/${dep}/jobs/${job}?tab=chat`, () => page.locator('[data-testid=chat-model] option')],
        ['markets', '/markets', () => testid(page, 'markets-table')],
        ['nodes', '/nodes', () => testid(page, 'nodes-table')],
        ['account', '/account', () => testid(page, 'api-keys-table')],
      ];
      const check = async (label) => {
        const report = await page.evaluate(() => {
          const doc = document.documentElement;
          const unlabelled = [...document.querySelectorAll('input, select, textarea')]
            .filter((el) => el.type !== 'hidden' && el.getClientRects().length)
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
            .map((el) => el.outerHTML.slice(0, 120));
          // Every tab of a tab list in view, none behind a sideways scroll.
          const tabs = [...document.querySelectorAll('[role=tablist]')].map((t) => t.scrollWidth - t.clientWidth);
          return { overflow: doc.scrollWidth - doc.clientWidth, tabs, unlabelled };
        });
        assert.ok(report.overflow <= 0, `${label}: the page scrolls sideways by ${report.overflow} px at 390 px`);
        assert.ok(report.tabs.every((x) => x <= 0), `${label}: tabs hidden behind a sideways scroll (${report.tabs} px)`);
        assert.deepEqual(report.unlabelled, [], `${label}: form controls without a label`);
      };
      for (const [label, p, ready] of pages) {
        await page.goto(ctx.p.base + p);
        await ready().first().waitFor({ state: 'attached', timeout: 60_000 });
        await check(label);
        await shot(label, { fullPage: true });
      }
      // A chat turn by touch, still within the width.
      await page.goto(`${ctx.p.base}/deployments/${dep}/jobs/${job}?tab=chat`);
      await page.locator('[data-testid=chat-model] option').first().waitFor({ state: 'attached' });
      await testid(page, 'chat-max-tokens').fill('16');
      await testid(page, 'chat-input').fill('Hello from a phone');
      await testid(page, 'chat-send').tap();
      // The turn ends (aria-busy leaves the answer). 16 tokens of the tiny model's random text may
      // show no answer at all (a sampled "</think>" puts all of it in the reasoning; a first-token
      // end of sentence leaves nothing), so wait for the end of the turn, not for a visible answer.
      await waitAttr(testid(page, 'chat-answer').last(), 'aria-busy', null, 60_000);
      assert.match(await text(page.locator('.bubble-assistant .bubble-meta').last()), /^\d+(\.\d+)? s\b/);
      assert.equal(await testid(page, 'chat-error').isHidden(), true);
      await testid(page, 'chat-user').getByText('Hello from a phone').waitFor();
      await check('job-chat after an answer');
      await shot('job-chat-answer', { fullPage: true });

      // The menu button opens the navigation on a phone; Escape closes it.
      const toggle = testid(page, 'nav-toggle');
      assert.equal(await toggle.isVisible(), true);
      assert.equal(await testid(page, 'nav-markets').isVisible(), false, 'the navigation starts closed');
      await toggle.tap();
      await waitAttr(toggle, 'aria-expanded', 'true');
      await testid(page, 'nav-markets').waitFor({ state: 'visible' });
      await shot('nav-open');
      await page.keyboard.press('Escape');
      await waitAttr(toggle, 'aria-expanded', 'false');
      await testid(page, 'nav-markets').waitFor({ state: 'hidden' });
    }, { viewport: H.PHONE, phone: true });
    assert.equal((await ctx.p.post(`/api/deployments/${dep}/stop`)).status, 200);
    await ctx.p.waitStatus(dep, 'STOPPED');
  });
});

// ---------------------------------------------------------------------------------------------

async function waitAttr(loc, name, value, timeout = 30_000) {
  return waitFor(`${loc} [${name}] = ${value}`, async () => (await loc.getAttribute(name)) === value, { timeout });
}

// Waits until `loc` reads exactly `want`; fails showing what it read last.
async function waitText(loc, want, timeout = 30_000) {
  const end = Date.now() + timeout;
  let last = null;
  while (Date.now() < end) {
    last = (await loc.count()) ? (await loc.first().innerText()).trim() : null;
    if (last === want) return;
    await sleep(100);
  }
  assert.equal(last, want, `${loc} did not read "${want}" within ${timeout} ms`);
}

function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

// Concatenated delta.content (and reasoning_content) of an OpenAI chat completions SSE body.
function sseContent(body) {
  let out = '';
  for (const line of body.split('\n')) {
    if (!line.startsWith('data:')) continue;
    const data = line.slice(5).trim();
    if (data === '[DONE]') continue;
    const j = JSON.parse(data);
    const d = (j.choices && j.choices[0] && j.choices[0].delta) || {};
    if (typeof d.reasoning_content === 'string') out += d.reasoning_content;
    if (typeof d.content === 'string') out += d.content;
  }
  return out;
}

// Runs in the page: tees the body of every chat completions response into window.__chatStreams.
function tapChatStreams() {
  window.__chatStreams = [];
  const orig = window.fetch;
  window.fetch = async (...args) => {
    const res = await orig(...args);
    const u = String(args[0] && args[0].url ? args[0].url : args[0]);
    if (!/\/v1\/chat\/completions$/.test(u) || !res.body) return res;
    const [mine, page] = res.body.tee();
    const i = window.__chatStreams.push('') - 1;
    (async () => {
      const reader = mine.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        window.__chatStreams[i] += dec.decode(value, { stream: true });
      }
    })();
    return new Response(page, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

// Text without whitespace and think tags: how reasoning + answer compare to the raw content.
const squash = (s) => s.replace(/<\/?think>/g, '').replace(/\s+/g, '');

// An SSE body of chat.completion.chunk objects carrying `parts` as content deltas.
function r1Stream(parts) {
  const chunk = (delta, finish = null) => `data: ${JSON.stringify({ id: 'chatcmpl-recorded', object: 'chat.completion.chunk', created: 0,
    model: SERVED_NAME, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  return chunk({ role: 'assistant', content: '' }) + parts.map((c) => chunk({ content: c })).join('') + chunk({}, 'stop') + 'data: [DONE]\n\n';
}
