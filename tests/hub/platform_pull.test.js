// The tutorial flow with a model that exists only on the (loopback) Hub: the platform starts with
// HF_ENDPOINT pointing at fake_hub.js, an empty Hugging Face cache and an empty model store; the
// DeepSeek-R1 template's job downloads deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B (the tiny HF fixture
// under that name) with progress lines in its log, then its replica serves the tutorial's request.
// A second deployment with HF_HUB_OFFLINE=1 and a model absent from the cache fails with a clear log.
//
// Usage: node tests/hub/platform_pull.test.js <infera binary> <fixtures/models dir>
'use strict';
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FakeHub, repoFromDir } = require('./fake_hub.js');

const BIN = process.argv[2];
const MODELS = process.argv[3];
if (!BIN || !MODELS || !fs.existsSync(BIN)) {
  console.error('usage: node tests/hub/platform_pull.test.js <infera binary> <tests/fixtures/models>');
  process.exit(2);
}
const ADMIN_KEY = 'inf_hubPullTestAdminKey0123456789abcdefgh';
const TEMPLATE_ID = 'deepseek-r1-qwen-1-5b';
const MODEL_ID = 'deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B';
const ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'infera-hubplat-'));
const live = new Set();
process.on('exit', () => {
  for (const p of live) try { process.kill(-p.pid, 'SIGKILL'); } catch (_) { try { p.kill('SIGKILL'); } catch (_) { /* gone */ } }
  fs.rmSync(ROOT, { recursive: true, force: true });
});
setTimeout(() => { console.error('platform_pull.test.js: global timeout'); process.exit(1); }, 170_000).unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, fn, { timeout = 60_000, interval = 200 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 2000)}`);
    await sleep(interval);
  }
}

async function startPlatform(env) {
  const dir = fs.mkdtempSync(path.join(ROOT, 'p-'));
  const models = path.join(dir, 'models');
  fs.mkdirSync(models);
  const e = { ...process.env, INFERA_ADMIN_KEY: ADMIN_KEY, ...env };
  for (const k of ['INFERA_PLATFORM_URL', 'INFERA_API_KEY', 'HF_TOKEN', 'HF_HOME']) delete e[k];
  if (!env.HF_HUB_OFFLINE) delete e.HF_HUB_OFFLINE;
  const proc = spawn(BIN, ['platform', '--port', '0', '--data-dir', dir, '--models-dir', models, '--health-interval', '1',
    '--serve-threads', '1'], { env: e, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  live.add(proc);
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  proc.exited = new Promise((r) => proc.on('exit', () => { live.delete(proc); r(); }));
  const port = await waitFor('the platform to listen', () => {
    const m = stderr.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    return m && Number(m[1]);
  }, { timeout: 20_000, interval: 50 });
  const base = `http://127.0.0.1:${port}`;
  const api = async (method, p, body) => {
    const res = await fetch(base + p, { method, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined, text };
  };
  const stop = async () => {
    try { proc.kill('SIGTERM'); } catch (_) { /* gone */ }
    const t = setTimeout(() => { try { proc.kill('SIGKILL'); } catch (_) { /* gone */ } }, 15_000);
    await proc.exited;
    clearTimeout(t);
  };
  return { base, api, stop };
}

async function deploy(p) {
  const t = await p.api('GET', '/api/jobs/templates');
  const list = Array.isArray(t.json) ? t.json : (t.json.templates || t.json.items || []);
  const tpl = list.find((x) => x.id === TEMPLATE_ID);
  assert.ok(tpl, 'the DeepSeek-R1 template is listed');
  const r = await p.api('POST', '/api/deployments/create', { name: 'hub_pull', market: 'local-cpu', replicas: 1, timeout: 60,
    strategy: 'SIMPLE', autostart: true, template: TEMPLATE_ID, job_definition: tpl.job_definition });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function logsOf(p, dep) {
  const r = await p.api('GET', `/api/deployments/${dep}/logs?limit=10000`);
  assert.equal(r.status, 200, r.text);
  return r.json.logs.map((l) => l.message);
}

describe('a deployment whose model is only on the Hub', () => {
  const hub = new FakeHub();
  let cache;
  before(async () => {
    await hub.start();
    hub.addRepo(MODEL_ID, repoFromDir(path.join(MODELS, 'tiny-qwen2-hf')));
    hub.bytesPerSecond = 1 << 20;  // ~3.5 s for the 3.5 MB model: progress lines while it downloads
    cache = fs.mkdtempSync(path.join(ROOT, 'hf-'));
  });
  after(() => hub.close());

  it('downloads the model with progress in the job log, then serves the tutorial request', async () => {
    const p = await startPlatform({ HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache });
    try {
      const dep = await deploy(p);
      const d = await waitFor('a READY replica', async () => {
        const x = (await p.api('GET', `/api/deployments/${dep.id}`)).json;
        if (x.status === 'ERROR' || x.status === 'STOPPED') return x;
        return x.ready_replicas >= 1 && x.health === 'READY' ? x : false;
      }, { timeout: 90_000 });
      const msgs = await logsOf(p, dep.id);
      const dump = msgs.join('\n').slice(0, 4000);
      assert.equal(d.health, 'READY', dump);
      const idx = (re) => msgs.findIndex((m) => re.test(m));
      const start = idx(/^Model deepseek-ai\/DeepSeek-R1-Distill-Qwen-1\.5B is not on this node: downloading it from http:\/\/127\.0\.0\.1:\d+ into /);
      const progress = msgs.filter((m) => /^Downloading \S+ \(\d\/5\)  [\d.]+ [KMG]?B \/ 3\.55 MB \(\d+%\)/.test(m));
      const done = idx(/^Model deepseek-ai\/DeepSeek-R1-Distill-Qwen-1\.5B downloaded: 5 files/);
      const found = idx(/found in the Hugging Face cache/);
      const serving = idx(/^Starting: .* serve --model /);
      assert.ok(start >= 0, `download announced:\n${dump}`);
      assert.ok(progress.length >= 2 && progress.some((m) => /^Downloading model\.safetensors .*[KM]B\/s  ETA /.test(m)),
        `progress lines with rate and ETA:\n${dump}`);
      assert.ok(done > start && found > done && serving > found, `order: download, cache, serve:\n${dump}`);
      const res = await fetch(`${d.endpoints[0].url}v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'Give me a short fun fact about the roman empire' }], max_tokens: 8 }),
        signal: AbortSignal.timeout(30_000) });
      assert.equal(res.status, 200, await res.clone().text());
      const j = await res.json();
      assert.equal(j.object, 'chat.completion');
      assert.ok(fs.readFileSync(path.join(cache, 'models--deepseek-ai--DeepSeek-R1-Distill-Qwen-1.5B', 'refs', 'main'), 'utf8').length === 40);
      await p.api('POST', `/api/deployments/${dep.id}/stop`);
    } finally {
      await p.stop();
    }
  });

  it('with HF_HUB_OFFLINE=1 and an empty cache the job fails with a clear log line', async () => {
    const p = await startPlatform({ HF_ENDPOINT: hub.url, HF_HUB_CACHE: fs.mkdtempSync(path.join(ROOT, 'hf-')), HF_HUB_OFFLINE: '1' });
    try {
      const dep = await deploy(p);
      const line = await waitFor('the offline failure in the log', async () =>
        (await logsOf(p, dep.id)).find((m) => /HF_HUB_OFFLINE is set/.test(m)), { timeout: 30_000 });
      assert.match(line, /model deepseek-ai\/DeepSeek-R1-Distill-Qwen-1\.5B is not on node \S+ \(model store .*, Hugging Face cache .*\) and HF_HUB_OFFLINE is set/);
      await p.api('POST', `/api/deployments/${dep.id}/stop`);
    } finally {
      await p.stop();
    }
  });
});
