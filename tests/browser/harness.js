// Shared harness of the dashboard browser tests (dashboard.test.js) and of the screenshot script
// (screenshots.js): `infera platform` processes with the tiny model in their store, Debian's chromium
// driven by playwright-core (from tests/oracles/node_modules), artifacts, and clean-up.
//
// A platform here is started as in tests/platform/runtime.test.js, by the same launcher
// (tests/platform/platform_harness.js): `--port 0`, a fresh data dir under one temp root, the tiny
// random-weight GGUF under deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B/ of its model store (so the
// DeepSeek-R1 1.5B template resolves to it), `--health-interval 1`, `--serve-threads 1`. The
// harness's `exit` handler kills every browser, platform and `infera serve` left and removes the temp
// root, so nothing outlives a run, even a failed one.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const PH = require('../platform/platform_harness.js');

const ADMIN_KEY = 'inf_browserTestAdminKey0123456789abcdefgh';  // INFERA_ADMIN_KEY (>= 16 chars)
const { MODEL_ID, TEMPLATE_ID } = PH;
const SKIP = 77;  // ctest SKIP_RETURN_CODE

const ROOT = PH.tempDir('infera-browser-');
const browsers = new Set();
PH.onKillAll(() => {
  for (const b of browsers) {
    try { b.process && b.process().kill('SIGKILL'); } catch (_) { /* gone */ }
  }
});
const { globalTimeout, sleep, killAll, leftoverServes } = PH;
const waitFor = PH.makeWaitFor({ timeout: 30_000, interval: 100 });

// ---------------------------------------------------------------------------------------------
// Chromium and playwright-core.

function findChromium() {
  // INFERA_CHROMIUM, when set, is the only candidate.
  const candidates = process.env.INFERA_CHROMIUM ? [process.env.INFERA_CHROMIUM] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((c) => fs.existsSync(c)) || null;
}

function loadPlaywright() {
  try {
    return require(path.join(__dirname, '..', 'oracles', 'node_modules', 'playwright-core'));
  } catch (_) {
    return null;
  }
}

// Chromium and playwright-core, or exit: 77 (skip) when one is missing, unless INFERA_REQUIRE_ORACLES
// is set (CI), where a missing browser is a failure.
function requireBrowser(what) {
  const exe = findChromium();
  const pw = loadPlaywright();
  const missing = [];
  if (!exe) missing.push('chromium (apt-get install chromium, or set INFERA_CHROMIUM)');
  if (!pw) missing.push('playwright-core (npm ci --prefix tests/oracles)');
  if (missing.length) {
    const msg = `${what}: missing ${missing.join(' and ')}`;
    if (process.env.INFERA_REQUIRE_ORACLES) {
      console.error(`${msg}; INFERA_REQUIRE_ORACLES is set, so this is a failure`);
      process.exit(1);
    }
    console.error(`${msg}; skipping`);
    process.exit(SKIP);
  }
  return { chromium: pw.chromium, executablePath: exe };
}

async function launchBrowser({ chromium, executablePath }) {
  const b = await chromium.launch({
    executablePath,
    headless: true,
    timeout: 60_000,
    // No GPU, no first-run UI, a fixed language and timezone: the same pages on every machine.
    args: ['--disable-gpu', '--no-first-run', '--no-default-browser-check', '--lang=en-US'],
  });
  browsers.add(b);
  b.on('disconnected', () => browsers.delete(b));
  return b;
}

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

// A fresh browser context (its own sessionStorage and localStorage) with a page on `platform`. The page
// records its uncaught errors in page.errors (tests assert there are none); clipboard access is
// granted for the platform's origin.
async function newPage(browser, platform, { viewport = DESKTOP, phone = false } = {}) {
  const ctx = await browser.newContext({
    viewport,
    deviceScaleFactor: 1,
    isMobile: phone,
    hasTouch: phone,
    locale: 'en-US',
    timezoneId: 'UTC',
    reducedMotion: 'reduce',
  });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: platform.base });
  // Sanitizer builds answer slowly: generous waits, always on a condition.
  ctx.setDefaultTimeout(45_000);
  ctx.setDefaultNavigationTimeout(45_000);
  if (process.env.INFERA_DASHBOARD_DIR) await serveAssetsFrom(ctx, platform, process.env.INFERA_DASHBOARD_DIR);
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e && e.stack ? e.stack : e)));
  page.on('console', (m) => {
    // A 401 from the sign-in page's "--auth none" probe is expected; anything else is recorded.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) page.errors.push(`console: ${m.text()}`);
  });
  return page;
}

// Development aid: INFERA_DASHBOARD_DIR=web makes the browser load /assets/* from that folder
// instead of the copy built into the binary, so web/ edits are tried without a rebuild.
async function serveAssetsFrom(ctx, platform, dir) {
  const types = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html' };
  await ctx.route(`${platform.base}/assets/**`, (route) => {
    const rel = decodeURIComponent(new URL(route.request().url()).pathname.slice('/assets/'.length));
    const file = path.join(dir, rel);
    if (rel.includes('..') || !fs.existsSync(file)) return route.continue();
    return route.fulfill({ status: 200, contentType: types[path.extname(file)] || 'application/octet-stream', body: fs.readFileSync(file) });
  });
}

async function signIn(page, platform, key = platform.key) {
  await page.goto(`${platform.base}/signin`);
  await page.getByTestId('signin-key').fill(key);
  await page.getByTestId('signin-submit').click();
  await page.waitForURL(/\/deployments$/);
  await page.getByRole('heading', { level: 1, name: 'Deployments' }).waitFor();
}

// ---------------------------------------------------------------------------------------------
// Artifacts: screenshots of every test under $INFERA_ARTIFACTS/browser, else under `fallback` (the
// build tree when run by ctest), else under the temp dir.

function artifactsDir(fallback) {
  const dir = process.env.INFERA_ARTIFACTS ? path.join(process.env.INFERA_ARTIFACTS, 'browser')
    : fallback || path.join(os.tmpdir(), 'infera-browser-artifacts');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

// ---------------------------------------------------------------------------------------------
// A platform process with its local node.

class Platform extends PH.Platform {
  // bin, model: the infera binary and the tiny GGUF; price: --local-cpu-price; args: extra CLI args
  static start({ bin, model, price, args = [] }) {
    return super.launchLocal({ bin, model, dir: fs.mkdtempSync(path.join(ROOT, 'p-')), price, args,
      adminKey: ADMIN_KEY, startTimeout: 30_000 });
  }

  waitStatus(id, status, timeout = 30_000) { return super.waitStatus(id, status, timeout); }
  waitReady(id, timeout = 90_000) { return super.waitReady(id, 1, timeout); }
}

module.exports = {
  ADMIN_KEY, MODEL_ID, TEMPLATE_ID, SKIP, ROOT, DESKTOP, PHONE,
  Platform, waitFor, sleep, globalTimeout, killAll, leftoverServes,
  requireBrowser, launchBrowser, newPage, signIn, artifactsDir,
};
