// Shared harness of the `infera platform` test suites (platform_api.test.js, runtime.test.js) and of the
// browser tests (tests/browser/harness.js): platform processes on `--port 0`, their REST API, waits, and
// the bookkeeping that lets nothing outlive a run.
//
// Requiring this module installs an `exit` handler that SIGKILLs every process in `live` (and whatever
// the hooks given to onKillAll kill), then every `infera serve` whose args name a temp dir made by
// tempDir(), and removes those temp dirs; SIGINT, SIGTERM and SIGHUP do the same and exit 130.
// Only node:assert, node:child_process, node:fs, node:os, node:path and web globals (fetch,
// AbortSignal) are used.
'use strict';
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

// The model store of a platform with a local node holds the tiny GGUF under this id, so the DeepSeek-R1
// 1.5B template resolves to it.
const MODEL_ID = 'deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B';
const TEMPLATE_ID = 'deepseek-r1-qwen-1-5b';

// ---------------------------------------------------------------------------------------------
// Process and temp-dir bookkeeping: nothing survives the test run.

const live = new Set();     // child processes SIGKILLed by killAll (platforms are added by Platform.launch)
const tempDirs = [];        // removed at exit
const killHooks = [];

// A fresh dir under the system temp dir, removed at exit.
function tempDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

// `infera serve` processes started by our platforms: their args hold a model path under one of `roots`.
function leftoverServes(roots = tempDirs) {
  let out = '';
  try { out = execFileSync('ps', ['-eo', 'pid,ppid,stat,args'], { encoding: 'utf8' }); } catch (_) { return []; }
  return out.split('\n').slice(1)
    .map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/))
    .filter(Boolean)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), stat: m[3], args: m[4] }))
    .filter((x) => !x.stat.startsWith('Z') && roots.some((r) => x.args.includes(r)) && /\sserve\s/.test(x.args));
}

// `fn` runs first on every killAll (e.g. to kill browsers).
function onKillAll(fn) { killHooks.push(fn); }

function killAll() {
  for (const f of killHooks) f();
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
  for (const d of tempDirs) {
    try { fs.rmSync(d, { recursive: true, force: true }); } catch (_) { /* best effort */ }
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { killAll(); process.exit(130); });
}

// Hard cap so a hung platform (or browser) can never hang CI.
function globalTimeout(what, ms) {
  setTimeout(() => {
    console.error(`${what}: global timeout (${ms / 1000} s), killing everything`);
    killAll();
    process.exit(1);
  }, ms).unref();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A waitFor(what, fn, {timeout, interval}) with these defaults: it polls `fn` (sync or async) every
// `interval` ms until it returns a truthy value, and fails with the last value seen after `timeout` ms.
function makeWaitFor({ timeout: defaultTimeout = 10_000, interval: defaultInterval = 100 } = {}) {
  return async function waitFor(what, fn, { timeout = defaultTimeout, interval = defaultInterval } = {}) {
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
  };
}
const waitFor = makeWaitFor();

// ---------------------------------------------------------------------------------------------
// A platform process. Suites subclass it for their defaults and helpers (static launch returns an
// instance of the class it is called on).

class Platform {
  // bin: the infera binary; dir: its data dir; adminKey: INFERA_ADMIN_KEY (null: none, and no key);
  // args: CLI args after `--data-dir DIR`; startTimeout: ms until it listens; stopGrace: ms from the
  // stop signal to SIGKILL in stop(); apiTimeout: the default timeout of api() calls, ms.
  static launch({ bin, dir, adminKey = null, args = [], startTimeout = 15_000, stopGrace = 15_000, apiTimeout = 15_000 }) {
    const env = { ...process.env };
    for (const k of ['INFERA_ADMIN_KEY', 'INFERA_PLATFORM_URL', 'INFERA_API_KEY']) delete env[k];
    if (adminKey) env.INFERA_ADMIN_KEY = adminKey;
    const argv = ['platform', '--port', '0', '--data-dir', dir, ...args];
    const proc = spawn(bin, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    const p = new this(proc, dir, adminKey);
    p.stopGrace = stopGrace;
    p.apiTimeout = apiTimeout;
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
        reject(new Error(`platform did not start within ${startTimeout / 1000} s:\n${p.stderr}`));
      }, startTimeout);
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

  // A platform whose local node serves `model` (a GGUF): its data dir `dir` gets a model store with the
  // model under MODEL_ID (copied unless already there), and the args are `--models-dir`,
  // `--health-interval 1`, `--serve-threads 1`, `--max-jobs 4`, then `args`, then
  // `--local-cpu-price PRICE` when `price` is given. Other options as for launch.
  static launchLocal({ model, dir, price, args = [], ...opts }) {
    const models = path.join(dir, 'models');
    const modelDir = path.join(models, MODEL_ID);
    if (!fs.existsSync(modelDir)) {
      fs.mkdirSync(modelDir, { recursive: true });
      fs.copyFileSync(model, path.join(modelDir, path.basename(model)));
    }
    const argv = ['--models-dir', models, '--health-interval', '1', '--serve-threads', '1', '--max-jobs', '4', ...args];
    if (price !== undefined) argv.push('--local-cpu-price', String(price));
    return this.launch({ ...opts, dir, args: argv });
  }

  constructor(proc, dir, key) {
    this.proc = proc;
    this.dir = dir;
    this.key = key;
    this.stopGrace = 15_000;
    this.apiTimeout = 15_000;
    this.stdout = '';
    this.stderr = '';
    this.port = 0;
    this.base = '';
    this.exited = false;
  }

  // Stops the process: SIGTERM (or `signal`; the platform stops its replicas first), SIGKILL after
  // stopGrace ms; resolves once it has exited.
  async stop(signal = 'SIGTERM') {
    if (this.exited) return;
    try { this.proc.kill(signal); } catch (_) { /* gone */ }
    const t = setTimeout(() => { try { this.proc.kill('SIGKILL'); } catch (_) { /* gone */ } }, this.stopGrace);
    await this.exitedP;
    clearTimeout(t);
  }

  // One REST call. `body` is JSON-encoded; `raw` is sent as is. Returns {status, json, text, headers}.
  async api(method, p, body, { key = this.key, raw, headers = {}, timeout = this.apiTimeout } = {}) {
    const h = { ...headers };
    if (key) h.authorization = `Bearer ${key}`;
    let payload;
    if (raw !== undefined) {
      payload = raw;
      h['content-type'] = 'application/json';
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      h['content-type'] = 'application/json';
    }
    const res = await fetch(this.base + p, { method, headers: h, body: payload, signal: AbortSignal.timeout(timeout) });
    const text = await res.text();
    let json;
    try { json = text ? JSON.parse(text) : undefined; } catch (_) { json = undefined; }
    return { status: res.status, json, text, headers: res.headers };
  }

  get(p, o) { return this.api('GET', p, undefined, o); }
  post(p, body, o) { return this.api('POST', p, body === undefined ? {} : body, o); }
  patch(p, body, o) { return this.api('PATCH', p, body, o); }
  del(p, o) { return this.api('DELETE', p, undefined, o); }

  async deployment(id) {
    const r = await this.get(`/api/deployments/${id}`);
    assert.equal(r.status, 200, `GET deployment ${id}: ${r.text}`);
    return r.json;
  }
  async jobs(id, query = 'limit=100&sort_order=asc') {
    const r = await this.get(`/api/deployments/${id}/jobs?${query}`);
    assert.equal(r.status, 200, `GET jobs ${id}: ${r.text}`);
    return r.json.jobs;
  }
  async balance() {
    const r = await this.get('/api/credits/balance');
    assert.equal(r.status, 200, r.text);
    return r.json;
  }
  // Every ledger entry of the caller, in creation order, following cursor_next.
  async ledger() {
    const out = [];
    let cursor = null;
    for (let i = 0; i < 100; i++) {
      const r = await this.get(`/api/credits/transactions?limit=100&sort_order=asc${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(r.status, 200, r.text);
      out.push(...r.json.transactions);
      cursor = r.json.pagination.cursor_next;
      if (!cursor) return out;
    }
    assert.fail('ledger pagination does not end');
  }

  // The job definition of template `id` (a copy).
  async templateJD(id = TEMPLATE_ID) {
    const r = await this.get('/api/jobs/templates');
    assert.equal(r.status, 200, r.text);
    const list = Array.isArray(r.json) ? r.json : (r.json.templates || r.json.items || []);
    const t = list.find((x) => x.id === id);
    assert.ok(t, `template ${id} is listed`);
    return JSON.parse(JSON.stringify(t.job_definition));
  }
  // Creates a deployment on local-cpu from the DeepSeek-R1 template (or `over.template`); `over` overrides.
  async create(over = {}) {
    const body = { name: 'platform_test', market: 'local-cpu', replicas: 1, timeout: 60, strategy: 'SIMPLE',
      autostart: true, template: TEMPLATE_ID, ...over };
    if (!body.job_definition) body.job_definition = await this.templateJD(body.template);
    const r = await this.post('/api/deployments/create', body);
    assert.equal(r.status, 200, `create: ${r.text}`);
    return r.json;
  }

  async waitStatus(id, status, timeout = 15_000, { interval = 200 } = {}) {
    return waitFor(`deployment ${id} to be ${status}`, async () => {
      const d = await this.deployment(id);
      return d.status === status ? d : false;
    }, { timeout, interval });
  }
  async waitReady(id, n = 1, timeout = 40_000) {
    return waitFor(`deployment ${id} to have ${n} ready replica(s)`, async () => {
      const d = await this.deployment(id);
      return d.ready_replicas >= n && d.health === 'READY' ? d : false;
    }, { timeout, interval: 200 });
  }
}

module.exports = {
  MODEL_ID, TEMPLATE_ID, live, tempDir, leftoverServes, onKillAll, killAll, globalTimeout, sleep,
  makeWaitFor, waitFor, Platform,
};
