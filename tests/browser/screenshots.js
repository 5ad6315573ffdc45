// Regenerates docs/screenshots/: every dashboard page at desktop (1280x800) and phone (390x844)
// width, from a fresh `infera platform` with the tiny test model (its answers are random text).
//
// Usage: node tests/browser/screenshots.js <infera binary> <tiny model gguf> [out dir = docs/screenshots]
//
// Needs chromium and playwright-core like the browser tests (harness.js). Takes about a minute.
'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const H = require('./harness.js');

const BIN = process.argv[2];
const MODEL = process.argv[3];
const OUT = path.resolve(process.argv[4] || path.join(__dirname, '..', '..', 'docs', 'screenshots'));
if (!BIN || !MODEL || !fs.existsSync(BIN) || !fs.existsSync(MODEL)) {
  console.error('usage: node tests/browser/screenshots.js <infera binary> <tiny model gguf> [out dir]');
  process.exit(2);
}
delete process.env.INFERA_REQUIRE_ORACLES;
const PW = H.requireBrowser('screenshots.js');
H.globalTimeout('screenshots.js', 300_000);

const NAME = 'deepseek_r1_tutorial';

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  for (const f of fs.readdirSync(OUT)) if (/^(desktop|phone)-.*\.png$/.test(f)) fs.rmSync(path.join(OUT, f));
  const p = await H.Platform.start({ bin: BIN, model: MODEL, price: 0.36 });
  const browser = await H.launchBrowser(PW);
  try {
    // A few other deployments make the list worth a look.
    const draft = await p.create({ name: 'llama_draft', template: 'llama32-1b', autostart: false });
    const waiting = await p.create({ name: 'qwen_coder_on_4090', template: 'qwen25-coder', market: 'nvidia-4090' });
    await p.waitStatus(waiting.id, 'RUNNING');
    const stopped = await p.create({ name: 'old_experiment', market: 'nvidia-3060' });
    await p.waitStatus(stopped.id, 'RUNNING');
    await p.post(`/api/deployments/${stopped.id}/stop`);
    await p.waitStatus(stopped.id, 'STOPPED');
    assert.ok(draft.id);

    const dep = await capture(browser, p, 'desktop', H.DESKTOP, null);
    await capture(browser, p, 'phone', H.PHONE, dep);
    await p.post(`/api/deployments/${dep}/stop`);
    await p.waitStatus(dep, 'STOPPED');
  } finally {
    await browser.close();
    await p.stop();
  }
  const files = fs.readdirSync(OUT).filter((f) => f.endsWith('.png')).sort();
  for (const f of files) console.log(`${(fs.statSync(path.join(OUT, f)).size / 1024).toFixed(0).padStart(5)} KB  ${f}`);
}

// All pages at one width. Creates the tutorial deployment through the wizard when `dep` is null;
// returns its id.
async function capture(browser, p, label, viewport, dep) {
  const phone = viewport === H.PHONE;
  const page = await H.newPage(browser, p, { viewport, phone });
  let n = 0;
  // full: the whole page (the viewport grows to the page's height, so the sidebar spans it).
  const shot = async (name, { full = false, locator = null } = {}) => {
    n += 1;
    const file = path.join(OUT, `${label}-${String(n).padStart(2, '0')}-${name}.png`);
    await page.evaluate(() => document.fonts && document.fonts.ready);
    if (locator) {
      await locator.screenshot({ path: file, animations: 'disabled' });
    } else if (full) {
      const height = await page.evaluate(() => document.documentElement.scrollHeight);
      await page.setViewportSize({ width: viewport.width, height: Math.max(viewport.height, Math.min(height, 4000)) });
      await page.screenshot({ path: file, animations: 'disabled' });
      await page.setViewportSize(viewport);
    } else {
      await page.screenshot({ path: file, animations: 'disabled' });
    }
  };
  const byId = (id) => page.getByTestId(id);
  const dismissToasts = () => page.evaluate(() => { for (const t of document.querySelectorAll('[data-testid=toast]')) t.remove(); });

  // Sign in, and a refused key.
  await page.goto(`${p.base}/signin`);
  await byId('signin-key').waitFor();
  await shot('signin');
  await byId('signin-key').fill('inf_notAValidKey000000000000000000000000000');
  await byId('signin-submit').click();
  await byId('signin-error').waitFor({ state: 'visible' });
  await shot('signin-refused');
  await byId('signin-key').fill(p.key);
  await byId('signin-submit').click();
  await page.waitForURL(/\/deployments$/);

  // The deploy wizard: template, variants, market table, settings, cost estimate.
  await page.goto(`${p.base}/deployments/create`);
  await byId('template-card-deepseek-r1-qwen').click();
  await byId('variant-1-5b').click();
  await byId('market-row-local-cpu').click();
  await byId('name-input').fill(dep ? 'phone_preview' : NAME);
  await byId('strategy-select').selectOption('SIMPLE');
  await byId('replicas-input').fill('1');
  await byId('timeout-input').fill('0.5');
  await byId('credit-balance').getByText('available').waitFor();
  await shot('deploy-wizard', { full: true });

  // Insufficient credits: 8x H100 for an hour.
  await byId('market-row-nvidia-8xh100').click();
  await byId('timeout-input').fill('1');
  await byId('insufficient-credits').waitFor();
  await byId('step-summary').scrollIntoViewIfNeeded();
  await shot('insufficient-credits', { locator: byId('step-summary') });

  if (!dep) {
    await byId('market-row-local-cpu').click();
    await byId('timeout-input').fill('0.5');
    await byId('create-deployment').click();
    await page.waitForURL((u) => /^\/deployments\/[^/]+$/.test(u.pathname) && u.pathname !== '/deployments/create');
    dep = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  } else {
    await byId('reset-draft').click();
  }

  // The deployment's tabs.
  await page.goto(`${p.base}/deployments/${dep}?tab=logs`);
  await byId('logs-view').getByText('Health checks passed').waitFor({ timeout: 90_000 });
  await dismissToasts();
  await shot('deployment-logs');
  await byId('tab-overview').click();
  await page.locator('[data-testid=endpoint-status][data-value=ONLINE]').waitFor({ timeout: 90_000 });
  await page.locator('[data-testid=job-state][data-value=RUNNING]').first().waitFor();
  await shot('deployment-overview', { full: true });
  await byId('tab-events').click();
  await byId('events-table').getByText('DEPLOYMENT_STATUS_CHANGED').first().waitFor();
  await shot('deployment-events', { full: !phone });
  await byId('tab-configuration').click();
  await byId('revision-row-1').waitFor();
  await shot('deployment-configuration');

  // The Actions menu and the stop confirmation (cancelled here).
  await byId('tab-overview').click();
  await page.evaluate(() => window.scrollTo(0, 0));
  await byId('actions-menu').click();
  await byId('action-stop').waitFor();
  await shot('actions-menu');
  await byId('action-stop').click();
  await page.getByRole('dialog').waitFor();
  await shot('stop-confirm');
  await byId('confirm-cancel').click();

  // The job page's Chat tab with an answer (random text: the tiny test model).
  await byId('job-link').first().click();
  await byId('tab-chat').click();
  await page.locator('[data-testid=chat-model] option').first().waitFor({ state: 'attached' });
  await byId('chat-max-tokens').fill('48');
  await byId('chat-input').fill('Give me a short fun fact about the roman empire');
  await byId('chat-send').click();
  await page.locator('[data-testid=chat-answer]:not([aria-busy])').waitFor({ state: 'attached', timeout: 60_000 });
  await shot('job-chat', { full: true });

  // The list, markets, nodes, account.
  await page.goto(`${p.base}/deployments`);
  await byId('deployments-table').waitFor();
  await byId('deployments-table').getByText(NAME).waitFor();
  await shot('deployments', { full: phone });
  await page.goto(`${p.base}/markets`);
  await byId('markets-table').waitFor();
  await shot('markets', { full: phone });
  await page.goto(`${p.base}/nodes`);
  await byId('nodes-table').waitFor();
  await shot('nodes');
  await page.goto(`${p.base}/account`);
  await byId('api-keys-table').waitFor();
  await byId('transactions-table').waitFor();
  await shot('account', { full: true });
  if (phone) {
    await byId('nav-toggle').click();
    await byId('nav-markets').waitFor({ state: 'visible' });
    await shot('navigation');
  }
  assert.deepEqual(page.errors, [], 'no uncaught errors in the page');
  await page.context().close();
  return dep;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
