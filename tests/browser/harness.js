// Shared harness of the dashboard browser tests (dashboard.test.js) and of the screenshot script
// (screenshots.js): `infera platform` processes with the tiny model in their store, Debian's chromium
// driven by playwright-core (from tests/oracles/node_modules), artifacts, and clean-up.
//
// A platform here is started as in tests/platform/runtime.test.js: `--port 0`, a fresh data dir under
// one temp root, the tiny random-weight GGUF under deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B/ of its
// model store (so the DeepSeek-R1 1.5B template resolves to it), `--health-interval 1`,
// `--serve-threads 1`. An `exit` handler kills every platform and `infera serve` left and removes the
// temp root, so nothing outlives a run, even a failed one.
'use strict';
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ADMIN_KEY = 'inf_browserTestAdminKey0123456789abcdefgh';  // INFERA_ADMIN_KEY (>= 16 chars)
const MODEL_ID = 'deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B';
const TEMPLATE_ID = 'deepseek-r1-qwen-1-5b';
const SKIP = 77;  // ctest SKIP_RETURN_CODE

const ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'infera-browser-'));
const live = new Set();
const browsers = new Set();

// `infera serve` processes started by our platforms: their args hold a model path under ROOT.
function leftoverServes() {
  let out = '';
  try { out = execFileSync('ps', ['-eo', 'pid,stat,args'], { encoding: 'utf8' }); } catch (_) { return []; }
  return out.split('\n').slice(1)
    .map((l) => l.trim().match(/^(\d+)\s+(\S+)\s+(.*)$/))
    .filter(Boolean)
    .map((m) => ({ pid: Number(m[1]), stat: m[2], args: m[3] }))
    .filter((x) => !x.stat.startsWith('Z') && x.args.includes(ROOT) && /\sserve\s/.test(x.args));
}

function killAll() {
  for (const b of browsers) {
    try { b.process && b.process().kill('SIGKILL'); } catch (_) { /* gone */ }
  }
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch (_) { /* already gone */ }
  }
  live.clear();
  for (const s of leftoverServes()) {
    try { process.kill(s.pid, 'SIGKILL'); } catch (_) { /* gone */ }
  }
}
process.on('exit', () => {
  killAll();
  try { fs.rmSync(ROOT, { recursive: true, force: true }); } catch (_) { /* best effort */ }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { killAll(); process.exit(130); });
}

// Hard cap so a hung platform or browser can never hang CI.
function globalTimeout(what, ms) {
  setTimeout(() => {
    console.error(`${what}: global timeout (${ms / 1000} s), killing everything`);
    killAll();
    process.exit(1);
  }, ms).unref();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `fn` until it returns a truthy value; fails with the last value seen after `timeout` ms.
async function waitFor(what, fn, { timeout = 30_000, interval = 100 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) {
      assert.fail(`timed out after ${timeout} ms waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 800)}`);
    }
    await sleep(interval);
  }
}

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

class Platform {
  static start({ bin, model, price, args = [] }) {
    const dir = fs.mkdtempSync(path.join(ROOT, 'p-'));
    const models = path.join(dir, 'models');
    const modelDir = path.join(models, MODEL_ID);
    fs.mkdirSync(modelDir, { recursive: true });
    fs.copyFileSync(model, path.join(modelDir, path.basename(model)));
    const env = { ...process.env };
    for (const k of ['INFERA_ADMIN_KEY', 'INFERA_PLATFORM_URL', 'INFERA_API_KEY']) delete env[k];
    env.INFERA_ADMIN_KEY = ADMIN_KEY;
    const argv = ['platform', '--port', '0', '--data-dir', dir, '--models-dir', models, '--health-interval', '1',
      '--serve-threads', '1', '--max-jobs', '4', ...args];
    if (price !== undefined) argv.push('--local-cpu-price', String(price));
    const proc = spawn(bin, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    const p = new Platform(proc, dir);
    proc.stdout.on('data', (d) => { p.stdout += d.toString(); });
    proc.stderr.on('data', (d) => { p.stderr += d.toString(); });
    p.exitedP = new Promise((r) => proc.once('exit', (code, signal) => {
      live.delete(proc);
      p.exited = true;
      r({ code, signal });
    }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`platform did not start within 30 s:\n${p.stderr}`));
      }, 30_000);
      const onData = () => {
        const m = p.stderr.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
        if (m && !p.port) {
          p.port = Number(m[1]);
          p.base = `http://127.0.0.1:${p.port}`;
          clearTimeout(timer);
          proc.stderr.off('data', onData);
          resolve(p);
        }
      };
      proc.stderr.on('data', onData);
      p.exitedP.then(({ code, signal }) => {
        if (!p.port) {
          clearTimeout(timer);
          reject(new Error(`platform exited (${code ?? signal}) before listening:\n${p.stderr}`));
        }
      });
    });
  }

  constructor(proc, dir) {
    this.proc = proc;
    this.dir = dir;
    this.key = ADMIN_KEY;
    this.stdout = '';
    this.stderr = '';
    this.port = 0;
    this.base = '';
    this.exited = false;
  }

  // SIGTERM (the platform stops its replicas first), SIGKILL after 15 s.
  async stop() {
    if (this.exited) return;
    try { this.proc.kill('SIGTERM'); } catch (_) { /* gone */ }
    const t = setTimeout(() => { try { this.proc.kill('SIGKILL'); } catch (_) { /* gone */ } }, 15_000);
    await this.exitedP;
    clearTimeout(t);
  }

  async api(method, p, body, { timeout = 15_000 } = {}) {
    const h = { authorization: `Bearer ${this.key}` };
    let payload;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      h['content-type'] = 'application/json';
    }
    const res = await fetch(this.base + p, { method, headers: h, body: payload, signal: AbortSignal.timeout(timeout) });
    const text = await res.text();
    let json;
    try { json = text ? JSON.parse(text) : undefined; } catch (_) { json = undefined; }
    return { status: res.status, json, text };
  }
  get(p, o) { return this.api('GET', p, undefined, o); }
  post(p, body, o) { return this.api('POST', p, body === undefined ? {} : body, o); }

  async templateJD(id = TEMPLATE_ID) {
    const r = await this.get('/api/jobs/templates');
    assert.equal(r.status, 200, r.text);
    const t = r.json.find((x) => x.id === id);
    assert.ok(t, `template ${id} is listed`);
    return t.job_definition;
  }
  async create(over = {}) {
    const body = { name: 'browser_test', market: 'local-cpu', replicas: 1, timeout: 60, strategy: 'SIMPLE',
      autostart: true, template: TEMPLATE_ID, ...over };
    if (!body.job_definition) body.job_definition = await this.templateJD(body.template);
    const r = await this.post('/api/deployments/create', body);
    assert.equal(r.status, 200, `create: ${r.text}`);
    return r.json;
  }
  async deployment(id) {
    const r = await this.get(`/api/deployments/${id}`);
    assert.equal(r.status, 200, `GET deployment ${id}: ${r.text}`);
    return r.json;
  }
  async jobs(id) {
    const r = await this.get(`/api/deployments/${id}/jobs?limit=100&sort_order=asc`);
    assert.equal(r.status, 200, r.text);
    return r.json.jobs;
  }
  async waitStatus(id, status, timeout = 30_000) {
    return waitFor(`deployment ${id} to be ${status}`, async () => {
      const d = await this.deployment(id);
      return d.status === status ? d : false;
    }, { timeout, interval: 200 });
  }
  async waitReady(id, timeout = 90_000) {
    return waitFor(`deployment ${id} to be ready`, async () => {
      const d = await this.deployment(id);
      return d.ready_replicas >= 1 && d.health === 'READY' ? d : false;
    }, { timeout, interval: 200 });
  }
}

module.exports = {
  ADMIN_KEY, MODEL_ID, TEMPLATE_ID, SKIP, ROOT, DESKTOP, PHONE,
  Platform, waitFor, sleep, globalTimeout, killAll, leftoverServes,
  requireBrowser, launchBrowser, newPage, signIn, artifactsDir,
};
