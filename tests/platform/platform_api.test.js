// End-to-end test of `infera platform` (control plane REST API, reconciler, credits, API keys, SSE,
// persistence) and of the platform CLI, against the contract in spec/platform.md.
//
// Usage: node tests/platform/platform_api.test.js <infera binary>
//
// Every describe block starts its own platform (`--port 0`, fresh temp data dir) and stops it in its
// `after` hook; a process `exit` handler (platform_harness.js) SIGKILLs anything still alive, so no
// platform outlives the run, even on failure. Exits non-zero when any test fails (node:test sets
// process.exitCode). Only node:test, node:assert, node:child_process, node:fs, node:path,
// platform_harness.js and web globals (fetch, AbortController, TextDecoder) are used.
'use strict';
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const PH = require('./platform_harness.js');

const BIN = process.argv[2];
if (!BIN || !fs.existsSync(BIN)) {
  console.error('usage: node tests/platform/platform_api.test.js <path to the infera binary>');
  process.exit(2);
}

const ADMIN_KEY = 'inf_testAdminKey0123456789abcdefghijklmnopqr';  // INFERA_ADMIN_KEY (>= 16 chars)
const SEED = Number(process.env.PLATFORM_TEST_SEED || 20251208);  // kill timing of the persistence test

// These scenarios need jobs that stay QUEUED (no node claims them). When the binary has a local
// node that can be turned off (spec §18 `--no-local-node`), turn it off.
const NO_LOCAL_NODE = (() => {
  let help = '';
  try {
    help = execFileSync(BIN, ['platform', '--help'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    help = String(e.stdout || '');
  }
  return /--no-local-node\b/.test(help);
})();

// ---------------------------------------------------------------------------------------------
// Process and temp-dir bookkeeping (platform_harness.js): nothing survives the test run.

const { live, sleep } = PH;
PH.globalTimeout('platform_api.test.js', 150_000);

function tmpDir(tag) {
  return PH.tempDir(`infera-platform-${tag}-`);
}

const waitFor = PH.makeWaitFor({ timeout: 5000, interval: 50 });

// ---------------------------------------------------------------------------------------------
// A platform process (platform_harness.js).

class Platform extends PH.Platform {
  // opts: dataDir, adminKey (null: no INFERA_ADMIN_KEY), args (extra CLI args)
  static start({ dataDir, adminKey = ADMIN_KEY, args = [] } = {}) {
    return super.launch({ bin: BIN, dir: dataDir || tmpDir('data'), adminKey,
      args: [...(NO_LOCAL_NODE ? ['--no-local-node'] : []), ...args],
      startTimeout: 10_000, stopGrace: 3000, apiTimeout: 10_000 });
  }

  jobs(id) { return super.jobs(id, 'limit=100'); }
  // Every deployment of the caller in any status, following cursor_next.
  async allDeployments() {
    const all = 'DRAFT,STARTING,RUNNING,STOPPING,STOPPED,INSUFFICIENT_FUNDS,ERROR,ARCHIVED';
    const out = [];
    let cursor = null;
    for (let i = 0; i < 100; i++) {
      const r = await this.get(`/api/deployments?limit=100&status=${all}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(r.status, 200, r.text);
      out.push(...r.json.deployments);
      cursor = r.json.pagination.cursor_next;
      if (!cursor) return out;
    }
    assert.fail('deployment pagination does not end');
  }
  async create(over) {
    const r = await this.post('/api/deployments/create', deploymentBody(over));
    assert.equal(r.status, 200, `create: ${r.text}`);
    return r.json;
  }
  waitStatus(id, status, timeout = 5000) { return super.waitStatus(id, status, timeout, { interval: 50 }); }
}

// One platform per describe block.
function usePlatform(opts = {}) {
  const ctx = {};
  before(async () => { ctx.p = await Platform.start(opts); });
  after(async () => { if (ctx.p) await ctx.p.stop(); });
  return ctx;
}

// ---------------------------------------------------------------------------------------------
// Spec data.

// §9.2 job-definition-1.5b.json, verbatim.
const SPEC_JD_1_5B = {
  version: '0.1',
  type: 'container',
  ops: [
    {
      type: 'container/run',
      id: 'Qwen1-5b',
      args: {
        cmd: [
          '--model', 'deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B',
          '--served-model-name', 'DeepSeek-R1-Distill-Qwen-1.5B',
          '--port', '9000',
          '--max-model-len', '30000',
        ],
        gpu: true,
        image: 'docker.io/vllm/vllm-openai:v0.10.2',
        expose: [
          {
            port: 9000,
            health_checks: [
              {
                body: '{"model":"DeepSeek-R1-Distill-Qwen-1.5B","messages":[{"role":"user","content":"Respond with a single word: Ready"}],"stream":false}',
                path: '/v1/chat/completions',
                type: 'http',
                method: 'POST',
                headers: { 'Content-Type': 'application/json' },
                expected_status: 200,
                continuous: false,
              },
            ],
          },
        ],
      },
    },
  ],
  meta: {
    trigger: 'dashboard',
    system_requirements: { required_cuda: ['12.8', '12.9'], vram_total_mb: 6144 },
  },
};

// §14 seeded catalogue.
const SPEC_MARKETS = [
  { slug: 'nvidia-3060', name: 'NVIDIA 3060', type: 'PREMIUM', vram: 12, price: 0.0436,
    address: '7AtiXMSH6R1jjBxrcYjehCkkSF7zvYWte63gwEDBcGHq' },
  { slug: 'nvidia-4090', name: 'NVIDIA 4090', type: 'PREMIUM', vram: 24, price: 0.2909,
    address: '97G9NnvBDQ2WpKu6fasoMsAKmfj63C9rhysJnkeWodAf' },
  { slug: 'nvidia-4090-community', name: 'NVIDIA 4090', type: 'COMMUNITY', vram: 24, price: 0.2182 },
  { slug: 'nvidia-5090', name: 'NVIDIA 5090', type: 'PREMIUM', vram: 32, price: 0.3636 },
  { slug: 'nvidia-h100', name: 'NVIDIA H100', type: 'PREMIUM', vram: 80, price: 1.3636 },
  { slug: 'nvidia-8xh100', name: '8\u00d7 NVIDIA H100', type: 'OTHER', vram: 640, price: 18.20 },
];

const clone = (x) => JSON.parse(JSON.stringify(x));

function deploymentBody(over = {}) {
  return { name: 'test_deployment', market: 'local-cpu', replicas: 1, timeout: 60, strategy: 'SIMPLE',
           autostart: false, job_definition: clone(SPEC_JD_1_5B), ...over };
}

// Asserts an error answer: status and `{"error": msg}` (exact string, or a RegExp on the message).
function expectError(r, status, msg, what = '') {
  assert.equal(r.status, status, `${what} status (body ${r.text.slice(0, 300)})`);
  assert.ok(r.json && typeof r.json === 'object' && !Array.isArray(r.json), `${what} body is a JSON object: ${r.text.slice(0, 300)}`);
  assert.deepEqual(Object.keys(r.json), ['error'], `${what} body has only "error": ${r.text.slice(0, 300)}`);
  assert.equal(typeof r.json.error, 'string');
  if (msg instanceof RegExp) assert.match(r.json.error, msg, what);
  else if (msg !== undefined) assert.equal(r.json.error, msg, what);
}

// 409 "Deployment is in the incorrect state: <STATUS> (allowed: …)" with the allowed set of §4.
function expectWrongState(r, status, allowedExact, what, { mayAlsoAllow = [] } = {}) {
  expectError(r, 409, undefined, what);
  const m = r.json.error.match(/^Deployment is in the incorrect state: ([A-Z_]+) \(allowed: ([A-Z_, ]+)\)$/);
  assert.ok(m, `${what}: message format, got ${JSON.stringify(r.json.error)}`);
  assert.equal(m[1], status, `${what}: state in the message`);
  const allowed = m[2].split(',').map((s) => s.trim()).sort();
  for (const a of allowedExact) assert.ok(allowed.includes(a), `${what}: allowed list ${m[2]} lacks ${a}`);
  for (const a of allowed) {
    assert.ok(allowedExact.includes(a) || mayAlsoAllow.includes(a), `${what}: allowed list ${m[2]} has unexpected ${a}`);
  }
}

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const near = (a, b, eps = 1e-9) => Math.abs(a - b) <= eps;

// ---------------------------------------------------------------------------------------------
// §11.1 endpoint labels: Hn(s) = first n chars of base58(SHA-512(UTF-8 s)). Pure-JS SHA-512
// (BigInt), its constants derived from the primes, checked against the spec's test vector below.

const M64 = (1n << 64n) - 1n;
function iroot(n, k) {  // floor(n^(1/k)), BigInt
  const K = BigInt(k);
  let x = 1n << BigInt(Math.ceil(n.toString(2).length / k) + 1);
  for (;;) {
    const y = ((K - 1n) * x + n / x ** (K - 1n)) / K;
    if (y >= x) return x;
    x = y;
  }
}
const PRIMES = (() => {
  const out = [];
  for (let n = 2; out.length < 80; n++) if (out.every((p) => n % p !== 0)) out.push(n);
  return out;
})();
const SHA512_K = PRIMES.map((p) => iroot(BigInt(p) << 192n, 3) & M64);
const SHA512_H0 = PRIMES.slice(0, 8).map((p) => iroot(BigInt(p) << 128n, 2) & M64);
function sha512(bytes) {
  const len = bytes.length;
  const padLen = ((len + 17 + 127) >> 7) << 7;
  const buf = new Uint8Array(padLen);
  buf.set(bytes);
  buf[len] = 0x80;
  const bitLen = BigInt(len) * 8n;
  for (let i = 0; i < 8; i++) buf[padLen - 1 - i] = Number((bitLen >> BigInt(8 * i)) & 0xffn);
  const rotr = (x, n) => ((x >> n) | (x << (64n - n))) & M64;
  let h = SHA512_H0.slice();
  for (let off = 0; off < padLen; off += 128) {
    const w = new Array(80);
    for (let t = 0; t < 16; t++) {
      let v = 0n;
      for (let b = 0; b < 8; b++) v = (v << 8n) | BigInt(buf[off + t * 8 + b]);
      w[t] = v;
    }
    for (let t = 16; t < 80; t++) {
      const s0 = rotr(w[t - 15], 1n) ^ rotr(w[t - 15], 8n) ^ (w[t - 15] >> 7n);
      const s1 = rotr(w[t - 2], 19n) ^ rotr(w[t - 2], 61n) ^ (w[t - 2] >> 6n);
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) & M64;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let t = 0; t < 80; t++) {
      const S1 = rotr(e, 14n) ^ rotr(e, 18n) ^ rotr(e, 41n);
      const ch = (e & f) ^ (~e & M64 & g);
      const t1 = (hh + S1 + ch + SHA512_K[t] + w[t]) & M64;
      const S0 = rotr(a, 28n) ^ rotr(a, 34n) ^ rotr(a, 39n);
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) & M64;
      hh = g; g = f; f = e; e = (d + t1) & M64; d = c; c = b; b = a; a = (t1 + t2) & M64;
    }
    const v = [a, b, c, d, e, f, g, hh];
    h = h.map((x, i) => (x + v[i]) & M64);
  }
  const out = new Uint8Array(64);
  h.forEach((x, i) => { for (let b = 0; b < 8; b++) out[i * 8 + b] = Number((x >> BigInt(56 - 8 * b)) & 0xffn); });
  return out;
}
const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
function base58(bytes) {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let s = '';
  while (n > 0n) { s = B58[Number(n % 58n)] + s; n /= 58n; }
  for (const b of bytes) { if (b !== 0) break; s = '1' + s; }
  return s;
}
const H = (n, s) => base58(sha512(new TextEncoder().encode(s))).slice(0, n);
const deploymentHash = (id, vault) => H(45, `${id}:${vault}`);
const opLabel = (opId, hash, port = 0) => H(44, `${opId}:${port}:${hash}`).toLowerCase();
const jobLabel = (index, port, jobId) => H(44, `${index}:${port}:${jobId}`).toLowerCase();

// Seeded PRNG (mulberry32) for reproducible "random" kill moments.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// SSE client on fetch: collects `data:` JSON events; close() aborts.
async function openStream(p, id, key = p.key) {
  const ac = new AbortController();
  const res = await fetch(`${p.base}/api/deployments/${id}/stream`, {
    headers: { authorization: `Bearer ${key}` }, signal: ac.signal });
  const events = [];
  let buf = '';
  const pump = (async () => {
    if (!res.body) return;
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
          if (data) events.push({ at: Date.now(), data: JSON.parse(data) });
        }
      }
    } catch (_) { /* aborted */ }
  })();
  return { res, events, close: async () => { ac.abort(); await pump; } };
}

// Runs the CLI; resolves {code, stdout, stderr}.
function cli(args, { url, key, home }) {
  const env = { ...process.env, INFERA_PLATFORM_URL: url, INFERA_API_KEY: key, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') };
  delete env.INFERA_ADMIN_KEY;
  return new Promise((resolve) => {
    const child = execFile(BIN, args, { env, timeout: 20_000 }, (err, stdout, stderr) => {
      live.delete(child);
      const code = err ? (typeof err.code === 'number' ? err.code : `signal ${err.signal}`) : 0;
      resolve({ code, stdout, stderr });
    });
    live.add(child);
  });
}

// =============================================================================================

describe('0. test helpers', () => {
  it('SHA-512/base58 label derivation reproduces the spec §11.1 test vector', () => {
    const hash = deploymentHash('9sQm3WZ5vH1bqzD8RkTnJd4YxFpC2eLgUa7oV6iN1rTy', '5tGkq2yDh7Rk3mWnXc8VbJ4sLpF6aZeT1uQoN9iE2rYw');
    assert.equal(hash, '4ZxN9mnSLKDVA9CvfseH8aAB8zg1iEmVnZ1V2RQrEzVho');
    assert.equal(opLabel('Qwen1-5b', hash), '5c1q4mgx3ccrqzm8y5khwnqcxdyritfncudimvnxgg8d');
    assert.equal(jobLabel(0, 9000, '3JbXq7Lm2Nv8Rt5Ws9Yc4Zd6Fh1Gk3Jp5Ms7Qu9Xa2Be'), 'b47epvspjd5cccr6ub6sqtc3egdbze4uvk83x1guxsh6');
  });
});

describe('1. tutorial walk via REST', () => {
  const ctx = usePlatform();
  const s = {};  // state shared by the steps

  it('GET /api/jobs/templates has deepseek-r1-qwen-1-5b with the §9.2 job definition', async () => {
    const r = await ctx.p.get('/api/jobs/templates', { key: null });  // public
    assert.equal(r.status, 200, r.text);
    assert.ok(Array.isArray(r.json), 'flat list');
    const t = r.json.find((x) => x.id === 'deepseek-r1-qwen-1-5b');
    assert.ok(t, 'deepseek-r1-qwen-1-5b is listed');
    assert.equal(t.parent, 'deepseek-r1-qwen');
    assert.deepEqual(t.job_definition, SPEC_JD_1_5B);
    for (const k of ['name', 'category', 'icon', 'description', 'readme']) assert.ok(k in t, `template has ${k}`);
    s.templates = r.json;
  });

  it('the DeepSeek-R1 variants are exactly those of the §9.2 info.json (8b and 70b-awq are file only)', async () => {
    const mine = s.templates.filter((x) => x.parent === 'deepseek-r1-qwen');
    const ids = mine.filter((x) => x.listed).map((x) => x.id).sort();
    assert.deepEqual(ids, ['deepseek-r1-qwen-14b', 'deepseek-r1-qwen-1-5b', 'deepseek-r1-qwen-32b', 'deepseek-r1-qwen-7b'].sort());
    // The issue's catalogue also carries the file-only 8B and 70B definitions, deployable by id.
    const unlisted = mine.filter((x) => !x.listed).map((x) => x.id).sort();
    assert.deepEqual(unlisted, ['deepseek-r1-qwen-70b-awq', 'deepseek-r1-qwen-8b']);
    const g = await ctx.p.get('/api/jobs/templates/grouped', { key: null });
    assert.equal(g.status, 200);
    const grp = g.json.find((x) => x.id === 'deepseek-r1-qwen');
    assert.equal(grp.name, 'DeepSeek R1 Qwen Models');
    assert.deepEqual(grp.variants.map((v) => v.id), ['1-5b', '7b', '14b', '32b']);
  });

  it('GET /api/openapi.json describes the API (§8.4); /api/swagger shows it', async () => {
    const r = await ctx.p.get('/api/openapi.json', { key: null });
    assert.equal(r.status, 200, r.text.slice(0, 200));
    assert.equal(r.json.openapi, '3.1.0');
    const ops = [];
    for (const [p, item] of Object.entries(r.json.paths)) {
      for (const m of Object.keys(item)) if (['get', 'post', 'patch', 'delete', 'put'].includes(m)) ops.push(`${m.toUpperCase()} ${p}`);
    }
    for (const want of ['POST /deployments/create', 'GET /deployments/{id}', 'POST /deployments/{id}/stop',
      'GET /deployments/{id}/jobs/{job}', 'GET /deployments/{id}/logs', 'GET /credits/balance', 'GET /markets',
      'GET /jobs/templates', 'POST /api-keys', 'GET /nodes']) {
      assert.ok(ops.includes(want), `documented: ${want}`);
    }
    const ids = ops.length;
    assert.ok(ids >= 50, `${ids} operations`);
    const html = await ctx.p.get('/api/swagger', { key: null });
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-type'), /^text\/html/);
    assert.match(html.text, /openapi\.json/);
  });

  it('GET /api/markets has the §14 seeded catalogue plus local-cpu', async () => {
    const r = await ctx.p.get('/api/markets', { key: null });  // public
    assert.equal(r.status, 200, r.text);
    const bySlug = Object.fromEntries(r.json.map((m) => [m.slug, m]));
    for (const want of SPEC_MARKETS) {
      const m = bySlug[want.slug];
      assert.ok(m, `market ${want.slug} is seeded`);
      assert.equal(m.name, want.name, `${want.slug} name`);
      assert.equal(m.type, want.type, `${want.slug} type`);
      assert.equal(m.kind, 'GPU', `${want.slug} kind`);
      assert.equal(m.lowest_vram, want.vram, `${want.slug} lowest_vram`);
      assert.ok(near(m.usd_price_per_hour, want.price), `${want.slug} usd_price_per_hour ${m.usd_price_per_hour} != ${want.price}`);
      assert.equal(m.network_fee_percentage, 10, `${want.slug} fee`);
      assert.ok(near(m.usd_reward_per_hour, Math.round(want.price / 1.1 * 1e5) / 1e5), `${want.slug} reward ${m.usd_reward_per_hour}`);
      assert.equal(m.nos_job_price_per_second, null);
      if (want.address) assert.equal(m.address, want.address, `${want.slug} keeps the compatible address`);
      else assert.match(m.address, /^[1-9A-HJ-NP-Za-km-z]{43,44}$/, `${want.slug} address is a base58 id`);
    }
    const cpu = bySlug['local-cpu'];
    assert.ok(cpu, 'local-cpu market exists');
    assert.equal(cpu.kind, 'CPU');
    assert.equal(cpu.type, 'OTHER');
    assert.equal(cpu.usd_price_per_hour, 0, 'local-cpu default price 0.00');
    const extra = Object.keys(bySlug).filter((k) => !SPEC_MARKETS.some((m) => m.slug === k) && k !== 'local-cpu' && k !== 'local-gpu');
    assert.deepEqual(extra, [], 'no unexpected markets');
    // §2: a market route accepts the address or the slug.
    const a = await ctx.p.get('/api/markets/97G9NnvBDQ2WpKu6fasoMsAKmfj63C9rhysJnkeWodAf', { key: null });
    const b = await ctx.p.get('/api/markets/nvidia-4090', { key: null });
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.equal(a.json.slug, 'nvidia-4090');
    assert.equal(b.json.address, '97G9NnvBDQ2WpKu6fasoMsAKmfj63C9rhysJnkeWodAf');
    expectError(await ctx.p.get('/api/markets/nvidia-9999', { key: null }), 404);
  });

  it('the admin starts with $10 of free credits', async () => {
    const b = await ctx.p.balance();
    assert.deepEqual(b, { assignedCredits: 10, reservedCredits: 0, settledCredits: 0, availableCredits: 10 });
    const l = await ctx.p.ledger();
    assert.equal(l.length, 1);
    assert.equal(l[0].type, 'credit_request');
    assert.equal(l[0].amount_usd, 10);
  });

  it('create SIMPLE 1-replica autostart on nvidia-4090 → STARTING, then RUNNING with one QUEUED job', async () => {
    const r = await ctx.p.post('/api/deployments/create', {
      name: 'brave_quiet_falcon', market: 'nvidia-4090', replicas: 1, timeout: 60, strategy: 'SIMPLE',
      autostart: true, job_definition: clone(SPEC_JD_1_5B) });
    assert.equal(r.status, 200, r.text);
    const d = r.json;
    assert.match(d.id, /^[1-9A-HJ-NP-Za-km-z]{43,44}$/);
    assert.equal(d.status, 'STARTING');
    assert.equal(d.strategy, 'SIMPLE');
    assert.equal(d.replicas, 1);
    assert.equal(d.timeout, 60);
    assert.equal(d.market, '97G9NnvBDQ2WpKu6fasoMsAKmfj63C9rhysJnkeWodAf');
    assert.equal(d.vault, d.owner);
    assert.equal(d.active_revision, 1);
    assert.match(d.created_at, ISO_MS);
    assert.match(d.updated_at, ISO_MS);
    for (const k of ['id', 'name', 'vault', 'market', 'owner', 'status', 'strategy', 'replicas', 'timeout', 'endpoints',
                     'active_revision', 'confidential', 'active_jobs', 'ready_replicas', 'health', 'startup_timeout',
                     'next_retry_at', 'rapid_streak', 'template', 'created_at', 'updated_at']) {
      assert.ok(k in d, `deployment has ${k} (§3.1)`);
    }
    assert.equal(d.name, 'brave_quiet_falcon');
    assert.equal(d.confidential, false);
    assert.equal(d.startup_timeout, 30, 'default startup_timeout');
    assert.equal(d.next_retry_at, null);
    assert.equal(d.rapid_streak, 0);
    s.id = d.id;
    s.owner = d.owner;
    const running = await ctx.p.waitStatus(s.id, 'RUNNING', 4000);
    assert.equal(running.active_jobs, 1);
    const jobs = await waitFor('one job', async () => { const j = await ctx.p.jobs(s.id); return j.length ? j : false; });
    assert.equal(jobs.length, 1, 'exactly one job');
    assert.equal(jobs[0].state, 'QUEUED');
    assert.equal(jobs[0].node, null);
    assert.equal(jobs[0].revision, 1);
    assert.equal(jobs[0].deployment, s.id);
    assert.equal(jobs[0].market, '97G9NnvBDQ2WpKu6fasoMsAKmfj63C9rhysJnkeWodAf');
    assert.equal(jobs[0].phase, 'QUEUED');
    assert.equal(jobs[0].time_start, null);
    assert.equal(jobs[0].end_reason, null);
    for (const k of ['tx', 'deployment', 'job', 'market', 'node', 'revision', 'state', 'time_start', 'time_end', 'phase',
                     'endpoint_status', 'url', 'end_reason', 'exit_code', 'cost_usd', 'created_at', 'updated_at']) {
      assert.ok(k in jobs[0], `job has ${k} (§3.3)`);
    }
    s.job = jobs[0].job;
    s.jobUrl = jobs[0].url;
  });

  it('the credits are reserved: reservedCredits 0.2909, availableCredits 9.7091, ledger job_debit -0.2909', async () => {
    const b = await ctx.p.balance();
    assert.ok(near(b.reservedCredits, 0.2909), `reserved ${b.reservedCredits}`);
    assert.ok(near(b.availableCredits, 9.7091), `available ${b.availableCredits}`);
    assert.ok(near(b.assignedCredits, 10));
    assert.ok(near(b.settledCredits, 0));
    const debit = (await ctx.p.ledger()).filter((e) => e.type === 'job_debit');
    assert.equal(debit.length, 1);
    assert.ok(near(debit[0].amount_usd, -0.2909), `debit ${debit[0].amount_usd}`);
    assert.equal(debit[0].job, s.job);
    assert.equal(debit[0].deployment, s.id);
    assert.equal(debit[0].idempotency_key, `job:${s.job}:debit`);
  });

  it('the revision has deployment_id, meta.trigger deployment-manager and a sha256 hash (§3.2)', async () => {
    const r = await ctx.p.get(`/api/deployments/${s.id}/revisions`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.revisions.length, 1);
    const rev = r.json.revisions[0];
    assert.equal(rev.revision, 1);
    assert.equal(rev.job_definition.deployment_id, s.id);
    assert.equal(rev.job_definition.meta.trigger, 'deployment-manager');
    assert.match(rev.ipfs_definition_hash, /^sha256:[0-9a-f]{64}$/);
  });

  it('endpoints[0].url is http://127.0.0.1:PORT/e/<44 lowercase base58>/ derived as in §11.1', async () => {
    const d = await ctx.p.deployment(s.id);
    assert.equal(d.endpoints.length, 1);
    assert.equal(d.endpoints[0].opId, 'Qwen1-5b');
    assert.equal(d.endpoints[0].port, 9000);
    const want = `http://127.0.0.1:${ctx.p.port}/e/${opLabel('Qwen1-5b', deploymentHash(s.id, s.owner))}/`;
    assert.match(d.endpoints[0].url, /^http:\/\/127\.0\.0\.1:\d+\/e\/[1-9a-z]{44}\/$/);
    assert.equal(d.endpoints[0].url, want, 'deployment URL (port = the port the platform listens on)');
  });

  it('the job url is the per-job URL of §11.1', async () => {
    assert.equal(s.jobUrl, `http://127.0.0.1:${ctx.p.port}/e/${jobLabel(0, 9000, s.job)}/`);
  });

  it('stop → {"status":"STOPPING"}, STOPPED within 2 s, job STOPPED/USER_STOP, full refund', async () => {
    const t0 = Date.now();
    const r = await ctx.p.post(`/api/deployments/${s.id}/stop`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'STOPPING');
    assert.match(r.json.updated_at, ISO_MS);
    await ctx.p.waitStatus(s.id, 'STOPPED', 2000);
    assert.ok(Date.now() - t0 <= 2500);
    const jobs = await ctx.p.jobs(s.id);
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0].state, 'STOPPED');
    assert.equal(jobs[0].end_reason, 'USER_STOP');
    assert.equal(jobs[0].cost_usd, 0);
    const b = await ctx.p.balance();
    assert.deepEqual(b, { assignedCredits: 10, reservedCredits: 0, settledCredits: 0, availableCredits: 10 });
    const l = await ctx.p.ledger();
    const settle = l.filter((e) => e.type === 'job_settlement');
    const refund = l.filter((e) => e.type === 'job_refund');
    assert.equal(settle.length, 1, 'one settlement');
    assert.equal(settle[0].amount_usd, 0);
    assert.equal(settle[0].idempotency_key, `job:${s.job}:settle`);
    assert.equal(refund.length, 1, 'one refund');
    assert.ok(near(refund[0].amount_usd, 0.2909), `refund ${refund[0].amount_usd}`);
    assert.equal(refund[0].idempotency_key, `job:${s.job}:refund`);
    const d = await ctx.p.deployment(s.id);
    assert.equal(d.active_jobs, 0);
    assert.equal(d.health, 'NONE');
  });

  it('the events record the walk: status changes, JOB_LIST_CONFIRMED, JOB_STOPPED_CONFIRMED (§3.4)', async () => {
    const r = await ctx.p.get(`/api/deployments/${s.id}/events?limit=100&sort_order=asc`);
    assert.equal(r.status, 200, r.text);
    const ev = r.json.events;
    for (const e of ev) {
      assert.ok(['Deployment', 'Event'].includes(e.category), `category ${e.category}`);
      assert.equal(e.deploymentId, s.id);
      assert.equal(typeof e.type, 'string');
      assert.equal(typeof e.message, 'string');
      assert.match(e.created_at, ISO_MS);
    }
    const types = ev.map((e) => e.type);
    for (const t of ['DEPLOYMENT_STATUS_CHANGED', 'JOB_LIST_CONFIRMED', 'JOB_STOPPED_CONFIRMED']) {
      assert.ok(types.includes(t), `event ${t} in ${types.join(',')}`);
    }
    assert.ok(types.indexOf('JOB_LIST_CONFIRMED') < types.indexOf('JOB_STOPPED_CONFIRMED'));
    const t = await ctx.p.get(`/api/deployments/${s.id}/tasks`);
    assert.equal(t.status, 200);
    assert.deepEqual(t.json.tasks, [], 'no pending task once STOPPED');
  });
});

describe('2. status-machine guards (§4)', () => {
  const ctx = usePlatform({ args: ['--local-cpu-price', '0.05'] });
  const s = {};
  const START_ALLOWED = ['DRAFT', 'STOPPED', 'ERROR', 'INSUFFICIENT_FUNDS'];
  const ARCHIVE_ALLOWED = ['STOPPED', 'DRAFT'];
  const DELETE_ALLOWED = ['STOPPED', 'DRAFT'];
  const STOP_ALLOWED = ['STARTING', 'RUNNING', 'ERROR', 'INSUFFICIENT_FUNDS'];

  it('a RUNNING deployment refuses archive, start and delete with 409', async () => {
    const d = await ctx.p.create({ name: 'guards', autostart: true });
    s.id = d.id;
    await ctx.p.waitStatus(s.id, 'RUNNING');
    expectWrongState(await ctx.p.post(`/api/deployments/${s.id}/archive`), 'RUNNING', ARCHIVE_ALLOWED, 'archive RUNNING');
    expectWrongState(await ctx.p.post(`/api/deployments/${s.id}/start`), 'RUNNING', START_ALLOWED, 'start RUNNING');
    expectWrongState(await ctx.p.del(`/api/deployments/${s.id}`), 'RUNNING', DELETE_ALLOWED, 'delete RUNNING');
    assert.equal((await ctx.p.deployment(s.id)).status, 'RUNNING', 'unchanged');
  });

  it('update-schedule on a non-SCHEDULED deployment → 400 "Deployment has incorrect strategy."', async () => {
    expectError(await ctx.p.patch(`/api/deployments/${s.id}/update-schedule`, { schedule: '0 * * * *' }), 400,
                'Deployment has incorrect strategy.');
  });

  it('stop of a STOPPED deployment → 409; archive of STOPPED → ARCHIVED', async () => {
    assert.equal((await ctx.p.post(`/api/deployments/${s.id}/stop`)).status, 200);
    await ctx.p.waitStatus(s.id, 'STOPPED', 2000);
    expectWrongState(await ctx.p.post(`/api/deployments/${s.id}/stop`), 'STOPPED', STOP_ALLOWED, 'stop STOPPED',
                     { mayAlsoAllow: ['STOPPING'] });
    const r = await ctx.p.post(`/api/deployments/${s.id}/archive`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'ARCHIVED');
    assert.match(r.json.updated_at, ISO_MS);
    assert.equal((await ctx.p.deployment(s.id)).status, 'ARCHIVED');
  });

  it('any change on ARCHIVED → 409 {"error":"Cannot modify an archived deployment."}', async () => {
    const id = s.id;
    const calls = [
      ['start', () => ctx.p.post(`/api/deployments/${id}/start`)],
      ['stop', () => ctx.p.post(`/api/deployments/${id}/stop`)],
      ['archive', () => ctx.p.post(`/api/deployments/${id}/archive`)],
      ['delete', () => ctx.p.del(`/api/deployments/${id}`)],
      ['update-name', () => ctx.p.patch(`/api/deployments/${id}/update-name`, { name: 'renamed' })],
      ['update-replica-count', () => ctx.p.patch(`/api/deployments/${id}/update-replica-count`, { replicas: 2 })],
      ['update-timeout', () => ctx.p.patch(`/api/deployments/${id}/update-timeout`, { timeout: 90 })],
      ['create-revision', () => ctx.p.post(`/api/deployments/${id}/create-revision`, clone(SPEC_JD_1_5B))],
      ['update-active-revision', () => ctx.p.patch(`/api/deployments/${id}/update-active-revision`, { active_revision: 1 })],
    ];
    for (const [what, call] of calls) {
      const r = await call();
      assert.equal(r.status, 409, `${what} on ARCHIVED: ${r.text}`);
      assert.deepEqual(r.json, { error: 'Cannot modify an archived deployment.' }, what);
    }
    const d = await ctx.p.deployment(id);
    assert.equal(d.status, 'ARCHIVED');
    assert.equal(d.name, 'guards');
    assert.equal(d.replicas, 1);
  });

  it('ARCHIVED is hidden from GET /api/deployments unless ?status names it', async () => {
    const all = await ctx.p.get('/api/deployments?limit=100');
    assert.equal(all.status, 200);
    assert.ok(!all.json.deployments.some((d) => d.id === s.id), 'hidden by default');
    const arch = await ctx.p.get('/api/deployments?status=ARCHIVED');
    assert.deepEqual(arch.json.deployments.map((d) => d.id), [s.id]);
    const csv = await ctx.p.get('/api/deployments?status=STOPPED,ARCHIVED');
    assert.ok(csv.json.deployments.some((d) => d.id === s.id), 'shown when the csv names it');
  });

  it('DELETE of a DRAFT → 204, then 404', async () => {
    const d = await ctx.p.create({ name: 'draft-to-delete' });
    assert.equal(d.status, 'DRAFT');
    const r = await ctx.p.del(`/api/deployments/${d.id}`);
    assert.equal(r.status, 204, r.text);
    assert.equal(r.text, '');
    expectError(await ctx.p.get(`/api/deployments/${d.id}`), 404);
    expectError(await ctx.p.get(`/api/deployments/${d.id}/jobs`), 404);
    expectError(await ctx.p.del(`/api/deployments/${d.id}`), 404, undefined, 'second delete');
  });

  it('DELETE of a STOPPED → 204, then 404; its ledger entries stay', async () => {
    const d = await ctx.p.create({ name: 'stopped-to-delete', autostart: true });
    await ctx.p.waitStatus(d.id, 'RUNNING');
    await waitFor('a job', async () => (await ctx.p.jobs(d.id)).length === 1);
    assert.equal((await ctx.p.post(`/api/deployments/${d.id}/stop`)).status, 200);
    await ctx.p.waitStatus(d.id, 'STOPPED', 2000);
    const r = await ctx.p.del(`/api/deployments/${d.id}`);
    assert.equal(r.status, 204, r.text);
    expectError(await ctx.p.get(`/api/deployments/${d.id}`), 404);
    const mine = (await ctx.p.ledger()).filter((e) => e.deployment === d.id).map((e) => e.type).sort();
    assert.deepEqual(mine, ['job_debit', 'job_refund', 'job_settlement']);
  });

  it('archive of a DRAFT → ARCHIVED (OURS); stop of a STARTING deployment → STOPPING (OURS)', async () => {
    const d = await ctx.p.create({ name: 'draft-to-archive' });
    const r = await ctx.p.post(`/api/deployments/${d.id}/archive`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'ARCHIVED');
    const st = await ctx.p.create({ name: 'stop-while-starting', autostart: true });
    assert.equal(st.status, 'STARTING');
    const s2 = await ctx.p.post(`/api/deployments/${st.id}/stop`);
    assert.equal(s2.status, 200, s2.text);
    assert.equal(s2.json.status, 'STOPPING');
    await ctx.p.waitStatus(st.id, 'STOPPED', 2000);
    assert.ok((await ctx.p.jobs(st.id)).length <= 1);
  });

  it('updates on a DRAFT are stored and answer the §6.5 shapes; out-of-range values → 400', async () => {
    const d = await ctx.p.create({ name: 'draft-updates' });
    const rep = await ctx.p.patch(`/api/deployments/${d.id}/update-replica-count`, { replicas: 0 });
    assert.equal(rep.status, 200, rep.text);
    assert.equal(rep.json.replicas, 0, 'update allows 0');
    assert.match(rep.json.updated_at, ISO_MS);
    const alias = await ctx.p.patch(`/api/deployments/${d.id}/update-replicas`, { replicas: 3 });
    assert.equal(alias.status, 200, alias.text);
    expectError(await ctx.p.patch(`/api/deployments/${d.id}/update-replica-count`, { replicas: 101 }), 400, /replicas/);
    const tmo = await ctx.p.patch(`/api/deployments/${d.id}/update-timeout`, { timeout: 90 });
    assert.equal(tmo.status, 200, tmo.text);
    assert.equal(tmo.json.timeout, 90);
    expectError(await ctx.p.patch(`/api/deployments/${d.id}/update-timeout`, { timeout: 0 }), 400, /timeout/);
    const nm = await ctx.p.patch(`/api/deployments/${d.id}/update-name`, { name: 'renamed-draft' });
    assert.equal(nm.status, 200, nm.text);
    const got = await ctx.p.deployment(d.id);
    assert.equal(got.status, 'DRAFT');
    assert.equal(got.replicas, 3);
    assert.equal(got.timeout, 90);
    assert.equal(got.name, 'renamed-draft');
  });

  it('a stopped deployment can be started again (STOPPED → STARTING)', async () => {
    const d = await ctx.p.create({ name: 'restartable', autostart: true });
    await ctx.p.waitStatus(d.id, 'RUNNING');
    await ctx.p.post(`/api/deployments/${d.id}/stop`);
    await ctx.p.waitStatus(d.id, 'STOPPED', 2000);
    const r = await ctx.p.post(`/api/deployments/${d.id}/start`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'STARTING');
    await ctx.p.waitStatus(d.id, 'RUNNING');
    await ctx.p.post(`/api/deployments/${d.id}/stop`);
    await ctx.p.waitStatus(d.id, 'STOPPED', 2000);
  });
});

describe('3. credits (§14)', () => {
  const ctx = usePlatform();
  const NEED = 'Insufficient credits. Need $18.200, have $10.00';

  it('autostart on nvidia-8xh100 with timeout 60 → 402 with the exact message; nothing is created or reserved', async () => {
    const r = await ctx.p.post('/api/deployments/create', deploymentBody({ market: 'nvidia-8xh100', autostart: true }));
    assert.equal(r.status, 402, r.text);
    assert.deepEqual(r.json, { error: NEED });
    const list = await ctx.p.get('/api/deployments');
    assert.equal(list.json.pagination.total_items, 0);
    assert.deepEqual(await ctx.p.balance(), { assignedCredits: 10, reservedCredits: 0, settledCredits: 0, availableCredits: 10 });
  });

  it('the check covers replicas × timeout: 2 replicas × 20 h on nvidia-4090 → Need $11.636', async () => {
    const r = await ctx.p.post('/api/deployments/create', deploymentBody({ market: 'nvidia-4090', replicas: 2, timeout: 1200, autostart: true }));
    expectError(r, 402, 'Insufficient credits. Need $11.636, have $10.00');
  });

  it('an upscale whose reservations are not covered → 402; replicas unchanged', async () => {
    const d = await ctx.p.create({ name: 'upscale', market: 'nvidia-4090', autostart: true });
    await ctx.p.waitStatus(d.id, 'RUNNING');
    await waitFor('the job', async () => (await ctx.p.jobs(d.id)).length === 1);
    // 39 more replicas × 0.2909 $/h × 1 h = $11.3451 > $9.7091 available.
    const r = await ctx.p.patch(`/api/deployments/${d.id}/update-replica-count`, { replicas: 40 });
    expectError(r, 402, /^Insufficient credits\. Need \$11\.345, have \$9\.7[01]$/);
    assert.equal((await ctx.p.deployment(d.id)).replicas, 1);
    await ctx.p.post(`/api/deployments/${d.id}/stop`);
    await ctx.p.waitStatus(d.id, 'STOPPED', 2000);
    assert.deepEqual(await ctx.p.balance(), { assignedCredits: 10, reservedCredits: 0, settledCredits: 0, availableCredits: 10 });
  });

  it('autostart:false creates a DRAFT without a credit check; POST start → 402; a grant makes it startable', async () => {
    const before = (await ctx.p.ledger()).length;
    const r = await ctx.p.post('/api/deployments/create', deploymentBody({ market: 'nvidia-8xh100', autostart: false }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'DRAFT');
    const id = r.json.id;
    assert.equal((await ctx.p.ledger()).length, before, 'no ledger entry for a DRAFT');
    const st = await ctx.p.post(`/api/deployments/${id}/start`);
    assert.equal(st.status, 402, st.text);
    assert.deepEqual(st.json, { error: NEED });
    assert.equal((await ctx.p.deployment(id)).status, 'DRAFT', 'still DRAFT');
    // Admin grant (§8.4) → manual_grant; then the start is covered.
    const g = await ctx.p.post('/api/credits/grant', { account: r.json.owner, amount: 10, note: 'test top-up' });
    assert.equal(g.status, 200, g.text);
    const l = await ctx.p.ledger();
    assert.equal(l.filter((e) => e.type === 'manual_grant').length, 1);
    assert.ok(near((await ctx.p.balance()).assignedCredits, 20));
    const st2 = await ctx.p.post(`/api/deployments/${id}/start`);
    assert.equal(st2.status, 200, st2.text);
    assert.equal(st2.json.status, 'STARTING');
    await ctx.p.waitStatus(id, 'RUNNING');
    const b = await waitFor('reservation', async () => { const x = await ctx.p.balance(); return x.reservedCredits > 0 ? x : false; });
    assert.ok(near(b.reservedCredits, 18.2));
    assert.ok(near(b.availableCredits, 1.8));
    await ctx.p.post(`/api/deployments/${id}/stop`);
    await ctx.p.waitStatus(id, 'STOPPED', 2000);
    assert.deepEqual(await ctx.p.balance(), { assignedCredits: 20, reservedCredits: 0, settledCredits: 0, availableCredits: 20 });
  });
});

describe('4. bad input (§2, §8, §9.4, §15)', () => {
  const ctx = usePlatform();
  const create = (over) => ctx.p.post('/api/deployments/create', deploymentBody(over));

  it('malformed JSON body → 400', async () => {
    const r = await ctx.p.api('POST', '/api/deployments/create', undefined, { raw: '{"name": "x", "market": ' });
    expectError(r, 400, undefined, 'malformed JSON');
  });

  it('replicas 0 and 101 → 400 mentioning replicas', async () => {
    expectError(await create({ replicas: 0 }), 400, /replicas/, 'replicas 0');
    expectError(await create({ replicas: 101 }), 400, /replicas/, 'replicas 101');
  });

  it('timeout 0 → 400 mentioning timeout; INFINITE with timeout 30 → 400', async () => {
    expectError(await create({ timeout: 0 }), 400, /timeout/, 'timeout 0');
    expectError(await create({ strategy: 'INFINITE', timeout: 30 }), 400, /timeout/, 'INFINITE 30');
  });

  it('several problems are joined with "; " (§9.4)', async () => {
    expectError(await create({ replicas: 0, timeout: 0 }), 400, /replicas.*; .*timeout|timeout.*; .*replicas/);
  });

  it('a 10 KB name → 400 mentioning name', async () => {
    expectError(await create({ name: 'n'.repeat(10 * 1024) }), 400, /name/);
  });

  it('unknown market → 404; unknown deployment → 404', async () => {
    expectError(await create({ market: 'nvidia-9999' }), 404, undefined, 'unknown market');
    expectError(await ctx.p.get('/api/deployments/3kZVR7DvCQGn1JEoAPEo1VKswaQMtDMJtRAkRagKsd2B'), 404, undefined, 'GET unknown');
    expectError(await ctx.p.post('/api/deployments/3kZVR7DvCQGn1JEoAPEo1VKswaQMtDMJtRAkRagKsd2B/stop'), 404, undefined, 'stop unknown');
    expectError(await ctx.p.get('/api/deployments/nonexistent/jobs'), 404, undefined, 'jobs of unknown');
  });

  it('invalid job_definition → 400 "job_definition.ops[0].args.image: expected string"', async () => {
    const jd = clone(SPEC_JD_1_5B);
    jd.ops[0].args.image = 42;
    const r = await create({ job_definition: jd });
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(r.json, { error: 'job_definition.ops[0].args.image: expected string' });
  });

  it('an unknown key outside meta → 400 naming its path (§9.4)', async () => {
    const jd = clone(SPEC_JD_1_5B);
    jd.bogus = 1;
    expectError(await create({ job_definition: jd }), 400, /job_definition\.bogus/);
    const ok = clone(SPEC_JD_1_5B);
    ok.meta.free_key = 'allowed';
    assert.equal((await create({ job_definition: ok })).status, 200, 'unknown keys inside meta are allowed');
  });

  it('32B template on nvidia-4090 → 400 with the VRAM message', async () => {
    const t = (await ctx.p.get('/api/jobs/templates', { key: null })).json.find((x) => x.id === 'deepseek-r1-qwen-32b');
    assert.ok(t, '32b template listed');
    const r = await create({ market: 'nvidia-4090', job_definition: t.job_definition, autostart: true });
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(r.json, { error: 'Market nvidia-4090 does not meet the required VRAM (68608 MB) for this job definition.' });
  });

  it('no key / wrong key / malformed header / revoked key → 401 {"error":"Unauthorized"}, no WWW-Authenticate', async () => {
    const check = (r, what) => {
      assert.equal(r.status, 401, `${what}: ${r.text}`);
      assert.deepEqual(r.json, { error: 'Unauthorized' }, what);
      assert.equal(r.headers.get('www-authenticate'), null, `${what}: no WWW-Authenticate`);
    };
    check(await ctx.p.get('/api/deployments', { key: null }), 'no key');
    check(await ctx.p.get('/api/deployments', { key: 'inf_' + 'x'.repeat(40) }), 'wrong key');
    check(await ctx.p.get('/api/deployments', { key: null, headers: { authorization: `Basic ${ADMIN_KEY}` } }), 'not Bearer');
    check(await ctx.p.post('/api/deployments/create', deploymentBody(), { key: null }), 'create without key');
    const k = await ctx.p.post('/api/api-keys', { name: 'to-revoke', expires_in_days: null });
    assert.equal(k.status, 200, k.text);
    assert.equal((await ctx.p.get('/api/deployments', { key: k.json.key })).status, 200);
    assert.equal((await ctx.p.post(`/api/api-keys/${k.json.id}/update`, { status: 'inactive' })).status, 200);
    check(await ctx.p.get('/api/deployments', { key: k.json.key }), 'revoked key');
  });

  it('a body over 1 MB → 413', async () => {
    const big = JSON.stringify(deploymentBody({ name: 'big', description: 'x'.repeat(1100 * 1024) }));
    const r = await ctx.p.api('POST', '/api/deployments/create', undefined, { raw: big });
    expectError(r, 413, undefined, 'body > 1 MB');
  });

  it('pagination: limit=7 → 400, a garbage cursor → 400', async () => {
    expectError(await ctx.p.get('/api/deployments?limit=7'), 400, /limit/, 'limit=7');
    expectError(await ctx.p.get('/api/deployments?cursor=garbage'), 400, /cursor/, 'cursor=garbage');
    expectError(await ctx.p.get('/api/deployments?cursor=%21%21not-base64%21%21'), 400, /cursor/, 'cursor=!!not-base64!!');
    expectError(await ctx.p.get('/api/credits/transactions?limit=7'), 400, /limit/, 'transactions limit=7');
  });
});

describe('5. API keys (§15)', () => {
  const ctx = usePlatform();
  const s = {};

  it('POST /api/api-keys returns the key once: inf_ + 40 base62, prefix = first 12 chars', async () => {
    const t0 = Date.now();
    const r = await ctx.p.post('/api/api-keys', { name: 'ci', expires_in_days: 30 });
    assert.equal(r.status, 200, r.text);
    const k = r.json;
    assert.match(k.key, /^inf_[0-9A-Za-z]{40}$/);
    assert.equal(k.key.length, 44);
    assert.equal(k.prefix, k.key.slice(0, 12));
    assert.equal(k.name, 'ci');
    assert.equal(k.status, 'active');
    assert.ok(k.id);
    const exp = Date.parse(k.expires_at) - t0;
    assert.ok(Math.abs(exp - 30 * 86400e3) < 120e3, `expires_at ≈ now + 30 days (${k.expires_at})`);
    s.key = k;
  });

  it('GET /api/api-keys lists it with the prefix, never the secret', async () => {
    const r = await ctx.p.get('/api/api-keys');
    assert.equal(r.status, 200, r.text);
    assert.ok(!r.text.includes(s.key.key), 'secret not in the list');
    const items = Object.values(r.json).find(Array.isArray);
    assert.ok(items, 'an array of keys');
    const mine = items.find((x) => x.id === s.key.id);
    assert.ok(mine, 'listed');
    assert.equal(mine.prefix, s.key.prefix);
    assert.equal(mine.name, 'ci');
    assert.ok(!('key' in mine), 'no key field');
    for (const x of items) assert.ok(!('key' in x));
  });

  it('the new key works and acts as the same account', async () => {
    const a = await ctx.p.get('/api/credits/balance', { key: s.key.key });
    assert.equal(a.status, 200, a.text);
    assert.deepEqual(a.json, await ctx.p.balance());
    const d = await ctx.p.create({ name: 'made-with-ci-key' });
    const seen = await ctx.p.get(`/api/deployments/${d.id}`, { key: s.key.key });
    assert.equal(seen.status, 200, 'same account sees the deployment');
    const items = Object.values((await ctx.p.get('/api/api-keys')).json).find(Array.isArray);
    assert.ok(items.find((x) => x.id === s.key.id).last_used_at, 'last_used_at is set once used');
  });

  it('status inactive → 401 for that key; re-activate → works again', async () => {
    const r = await ctx.p.post(`/api/api-keys/${s.key.id}/update`, { status: 'inactive' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'inactive');
    const denied = await ctx.p.get('/api/credits/balance', { key: s.key.key });
    assert.equal(denied.status, 401);
    assert.deepEqual(denied.json, { error: 'Unauthorized' });
    const re = await ctx.p.post(`/api/api-keys/${s.key.id}/update`, { status: 'active' });
    assert.equal(re.status, 200, re.text);
    assert.equal(re.json.status, 'active');
    assert.equal((await ctx.p.get('/api/credits/balance', { key: s.key.key })).status, 200);
  });

  it('delete → the key is gone and gets 401', async () => {
    const r = await ctx.p.post(`/api/api-keys/${s.key.id}/delete`);
    assert.ok(r.status >= 200 && r.status < 300, `delete: ${r.status} ${r.text}`);
    const denied = await ctx.p.get('/api/credits/balance', { key: s.key.key });
    assert.equal(denied.status, 401);
    assert.deepEqual(denied.json, { error: 'Unauthorized' });
    const items = Object.values((await ctx.p.get('/api/api-keys')).json).find(Array.isArray);
    assert.ok(!items.some((x) => x.id === s.key.id), 'not listed');
    expectError(await ctx.p.post(`/api/api-keys/${s.key.id}/update`, { status: 'active' }), 404);
  });

  it('expires_in_days outside 30|60|90|365|null → 400', async () => {
    expectError(await ctx.p.post('/api/api-keys', { name: 'x', expires_in_days: 7 }), 400, /expires_in_days/);
  });

  it('first start without INFERA_ADMIN_KEY prints a one-time admin key; a restart does not; the key keeps working', async () => {
    const dir = tmpDir('firstkey');
    const p1 = await Platform.start({ dataDir: dir, adminKey: null });
    try {
      const m = await waitFor('admin key on stderr', () => p1.stderr.match(/\binf_[0-9A-Za-z]{40}\b/), { timeout: 3000, interval: 20 });
      const key = m[0];
      assert.deepEqual((await p1.get('/api/credits/balance', { key })).json,
                       { assignedCredits: 10, reservedCredits: 0, settledCredits: 0, availableCredits: 10 });
      await p1.stop();
      const p2 = await Platform.start({ dataDir: dir, adminKey: null });
      try {
        assert.equal((await p2.get('/api/credits/balance', { key })).status, 200, 'old key works after restart');
        await sleep(200);
        assert.ok(!/inf_[0-9A-Za-z]{40}/.test(p2.stderr), `no new key printed:\n${p2.stderr}`);
        assert.ok(near((await p2.get('/api/credits/balance', { key })).json.assignedCredits, 10), 'no second sign-up grant');
      } finally { await p2.stop(); }
    } finally { await p1.stop(); }
  });

  it('with INFERA_ADMIN_KEY no random key is printed', async () => {
    await sleep(50);
    assert.ok(!/inf_[0-9A-Za-z]{40}/.test(ctx.p.stderr.replace(ADMIN_KEY, '')), `stderr:\n${ctx.p.stderr}`);
  });
});

describe('6. pagination and filters (§8)', () => {
  const ctx = usePlatform();
  const names = Array.from({ length: 25 }, (_, i) => `page-${String(i).padStart(2, '0')}`);
  const ids = {};

  before(async () => {
    for (const n of names) ids[n] = (await ctx.p.create({ name: n })).id;  // sequential: creation order known
  });

  it('limit=10 pages through 25 DRAFT deployments with cursor_next', async () => {
    const seen = [];
    let cursor = null;
    const sizes = [];
    for (let page = 0; page < 5; page++) {
      const r = await ctx.p.get(`/api/deployments?limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.pagination.total_items, 25);
      if (page === 0) assert.equal(r.json.pagination.cursor_prev, null);
      else assert.ok(r.json.pagination.cursor_prev, 'cursor_prev on later pages');
      sizes.push(r.json.deployments.length);
      seen.push(...r.json.deployments.map((d) => d.id));
      cursor = r.json.pagination.cursor_next;
      if (!cursor) break;
    }
    assert.deepEqual(sizes, [10, 10, 5]);
    assert.equal(new Set(seen).size, 25, 'distinct');
    assert.deepEqual([...seen].sort(), Object.values(ids).sort());
  });

  it('cursor_prev leads back to the previous page', async () => {
    const p1 = await ctx.p.get('/api/deployments?limit=10');
    const p2 = await ctx.p.get(`/api/deployments?limit=10&cursor=${encodeURIComponent(p1.json.pagination.cursor_next)}`);
    const back = await ctx.p.get(`/api/deployments?limit=10&cursor=${encodeURIComponent(p2.json.pagination.cursor_prev)}`);
    assert.deepEqual(back.json.deployments.map((d) => d.id), p1.json.deployments.map((d) => d.id));
  });

  it('default order is desc (newest first); asc is the reverse', async () => {
    const desc = (await ctx.p.get('/api/deployments?limit=50')).json.deployments.map((d) => d.name);
    const descExplicit = (await ctx.p.get('/api/deployments?limit=50&sort_order=desc')).json.deployments.map((d) => d.name);
    const asc = (await ctx.p.get('/api/deployments?limit=50&sort_order=asc')).json.deployments.map((d) => d.name);
    assert.deepEqual(asc, names, 'asc = creation order');
    assert.deepEqual(desc, [...names].reverse(), 'default desc');
    assert.deepEqual(descExplicit, desc);
    const firstAsc = (await ctx.p.get('/api/deployments?limit=10&sort_order=asc')).json.deployments.map((d) => d.name);
    assert.deepEqual(firstAsc, names.slice(0, 10));
  });

  it('filters: status=DRAFT, status csv, search, name', async () => {
    const run = await ctx.p.create({ name: 'other-running', autostart: true });
    await ctx.p.waitStatus(run.id, 'RUNNING');
    const drafts = await ctx.p.get('/api/deployments?limit=50&status=DRAFT');
    assert.equal(drafts.json.pagination.total_items, 25);
    assert.ok(drafts.json.deployments.every((d) => d.status === 'DRAFT'));
    const running = await ctx.p.get('/api/deployments?status=RUNNING');
    assert.deepEqual(running.json.deployments.map((d) => d.id), [run.id]);
    const csv = await ctx.p.get('/api/deployments?limit=50&status=RUNNING,DRAFT');
    assert.equal(csv.json.pagination.total_items, 26);
    const all = await ctx.p.get('/api/deployments?limit=50');
    assert.equal(all.json.pagination.total_items, 26);
    const search = await ctx.p.get('/api/deployments?limit=50&search=page-1');
    assert.deepEqual(search.json.deployments.map((d) => d.name).sort(), names.filter((n) => n.startsWith('page-1')));
    assert.equal(search.json.pagination.total_items, 10);
    const byName = await ctx.p.get('/api/deployments?name=page-07');
    assert.deepEqual(byName.json.deployments.map((d) => d.id), [ids['page-07']]);
    const strat = await ctx.p.get('/api/deployments?limit=50&strategy=INFINITE');
    assert.equal(strat.json.pagination.total_items, 0);
    await ctx.p.post(`/api/deployments/${run.id}/stop`);
    await ctx.p.waitStatus(run.id, 'STOPPED', 2000);
  });
});

describe('7. SSE stream (§8.3)', () => {
  const ctx = usePlatform();

  it('snapshot starts with a "deployment" event, then live STOPPING/STOPPED events within 2 s of stop', async () => {
    const d = await ctx.p.create({ name: 'streamed', autostart: true });
    await ctx.p.waitStatus(d.id, 'RUNNING');
    const jobs = await waitFor('one job', async () => { const j = await ctx.p.jobs(d.id); return j.length === 1 ? j : false; });
    const st = await openStream(ctx.p, d.id);
    try {
      assert.equal(st.res.status, 200);
      assert.match(st.res.headers.get('content-type') || '', /^text\/event-stream/);
      await waitFor('snapshot', () => st.events.length >= 2, { timeout: 3000 });
      const first = st.events[0].data;
      assert.equal(first.type, 'deployment', `first event: ${JSON.stringify(first).slice(0, 200)}`);
      assert.equal(first.id, d.id);
      assert.equal(first.status, 'RUNNING');
      await waitFor('snapshot job event', () => st.events.some((e) => e.data.type === 'job' && e.data.job === jobs[0].job), { timeout: 2000 });
      const t0 = Date.now();
      const r = await ctx.p.post(`/api/deployments/${d.id}/stop`);
      assert.equal(r.status, 200);
      const live = (status) => st.events.find((e) => e.data.type === 'deployment' && e.data.status === status);
      const stopping = await waitFor('live deployment STOPPING event', () => live('STOPPING'), { timeout: 2500, interval: 20 });
      const stopped = await waitFor('live deployment STOPPED event', () => live('STOPPED'), { timeout: 2500, interval: 20 });
      assert.ok(stopped.at - t0 <= 2000, `STOPPED arrived after ${stopped.at - t0} ms`);
      assert.ok(stopping.at <= stopped.at);
      for (const k of ['status', 'replicas', 'active_revision', 'ready_replicas', 'health']) {
        assert.ok(k in stopped.data, `live deployment event has ${k}`);
      }
      const jobEv = await waitFor('live job STOPPED event',
        () => st.events.find((e) => e.data.type === 'job' && e.data.job === jobs[0].job && e.data.state === 'STOPPED'), { timeout: 2000 });
      for (const k of ['job', 'state', 'node', 'timeStart', 'timeEnd', 'phase', 'endpoint_status']) {
        assert.ok(k in jobEv.data, `live job event has ${k}`);
      }
    } finally {
      await st.close();
    }
  });

  it('stream of an unknown deployment → 404; without a key → 401', async () => {
    const r = await ctx.p.get('/api/deployments/nonexistent/stream');
    expectError(r, 404);
    const u = await ctx.p.get('/api/deployments/nonexistent/stream', { key: null });
    assert.equal(u.status, 401);
  });
});

describe('8. persistence under kill -9 (§7, §14, §19 "Double charging")', () => {
  const dir = tmpDir('persist');
  const random = rng(SEED);
  // id -> { stop: 'none' | 'sent' (answer lost to the kill: may or may not have happened) | 'done' (200) }
  const tracked = new Map();
  const fiveHundreds = [];
  let p;
  after(async () => { if (p) await p.stop(); });

  it(`5 rounds of kill -9 at random moments while the reconciler works (seed ${SEED})`, async (t) => {
    const delays = [];
    for (let round = 0; round < 5; round++) {
      p = await Platform.start({ dataDir: dir, args: ['--local-cpu-price', '0.05'] });
      const pending = [];
      const create = (name) => p.post('/api/deployments/create', deploymentBody({ name, autostart: true }))
        .then((r) => {
          if (r.status === 200) tracked.set(r.json.id, { stop: 'none' });
          else fiveHundreds.push(`create ${r.status} ${r.text}`);
        }).catch(() => {});
      // A burst at once, then a trickle spread over the round so that API writes interleave with
      // the reconciler's tick; the kill may land on any of them.
      for (let i = 0; i < (round === 0 ? 6 : 2); i++) pending.push(create(`persist-${round}-burst-${i}`));
      const gaps = Array.from({ length: 5 }, () => 50 + Math.floor(random() * 200));
      pending.push((async () => {
        for (let i = 0; i < gaps.length && !p.exited; i++) {
          await sleep(gaps[i]);
          if (!p.exited) await create(`persist-${round}-trickle-${i}`);
        }
      })());
      if (round >= 2) {
        const candidates = [...tracked].filter(([, v]) => v.stop === 'none');
        if (candidates.length) {
          const [id, v] = candidates[Math.floor(random() * candidates.length)];
          v.stop = 'sent';
          pending.push(p.post(`/api/deployments/${id}/stop`).then((r) => {
            if (r.status === 200) v.stop = 'done';
            else fiveHundreds.push(`stop ${r.status} ${r.text}`);
          }).catch(() => {}));
        }
      }
      const delay = 100 + Math.floor(random() * 1400);  // spans the first reconciler tick (1 s after start)
      delays.push(delay);
      await sleep(delay);
      await p.stop('SIGKILL');
      await Promise.allSettled(pending);
    }
    t.diagnostic(`kill -9 after ${delays.join(', ')} ms; ${tracked.size} deployments acknowledged, ` +
                 `${[...tracked.values()].filter((v) => v.stop !== 'none').length} stop requests`);
    p = await Platform.start({ dataDir: dir, args: ['--local-cpu-price', '0.05'] });
    assert.deepEqual(fiveHundreds, [], 'no 5xx answers');
    assert.ok(tracked.size >= 6, `deployments created: ${tracked.size}`);
    // Converge: nothing STARTING/STOPPING, every RUNNING deployment has its job and no pending LIST.
    await waitFor('the reconciler to converge', async () => {
      for (const d of await p.allDeployments()) {
        if (d.status === 'STARTING' || d.status === 'STOPPING') return false;
        if (d.status === 'RUNNING') {
          const t = await p.get(`/api/deployments/${d.id}/tasks`);
          if (t.json.tasks.length || d.active_jobs !== 1) return false;
        }
      }
      return true;
    }, { timeout: 6000, interval: 100 });
    await sleep(1200);  // one more tick: nothing may be listed twice
  });

  it('each SIMPLE 1-replica deployment has exactly one job (none duplicated)', async () => {
    const all = await p.allDeployments();
    for (const id of tracked.keys()) assert.ok(all.some((d) => d.id === id), `deployment ${id} survived`);
    for (const d of all) {
      const jobs = await p.jobs(d.id);
      const info = tracked.get(d.id);
      assert.ok(jobs.length <= 1, `${d.name} has ${jobs.length} jobs`);
      const stop = info ? info.stop : 'none';  // untracked: created, but the answer was lost to a kill
      const running = () => {
        assert.equal(jobs.length, 1, `${d.name} (never stopped) has exactly one job`);
        const active = jobs[0].state === 'QUEUED' || jobs[0].state === 'RUNNING';
        if (active) assert.equal(d.status, 'RUNNING', `${d.name} with an active job is RUNNING`);
        else assert.ok(['STOPPED', 'ERROR'].includes(d.status), `${d.name} whose job ended is ${d.status}`);
      };
      const stopped = () => {
        assert.equal(d.status, 'STOPPED', `${d.name} (stopped) is STOPPED`);
        assert.ok(jobs.every((j) => j.state === 'STOPPED'));
      };
      if (stop === 'none') running();
      else if (stop === 'done') stopped();
      else if (d.status === 'RUNNING') running();
      else stopped();
    }
  });

  it('every ledger idempotency_key is unique; one debit per job, one settlement per ended job', async () => {
    const l = await p.ledger();
    const keys = l.map((e) => e.idempotency_key);
    assert.equal(new Set(keys).size, keys.length, 'unique idempotency keys');
    const all = await p.allDeployments();
    for (const d of all) {
      for (const j of await p.jobs(d.id)) {
        const mine = l.filter((e) => e.job === j.job);
        assert.equal(mine.filter((e) => e.type === 'job_debit').length, 1, `job ${j.job}: one debit`);
        assert.ok(near(mine.find((e) => e.type === 'job_debit').amount_usd, -0.05), 'debit = 0.05 $/h × 1 h');
        const settled = mine.filter((e) => e.type === 'job_settlement').length;
        assert.equal(settled, j.state === 'QUEUED' || j.state === 'RUNNING' ? 0 : 1, `job ${j.job} (${j.state}) settlements`);
      }
    }
    const jobIds = new Set();
    for (const d of all) for (const j of await p.jobs(d.id)) jobIds.add(j.job);
    for (const e of l.filter((x) => x.job)) assert.ok(jobIds.has(e.job), `ledger entry ${e.idempotency_key} names a known job`);
  });

  it('balance: available = assigned − reserved − settled = sum of the ledger (1e-9)', async () => {
    const b = await p.balance();
    assert.ok(near(b.availableCredits, b.assignedCredits - b.reservedCredits - b.settledCredits),
              `balance ${JSON.stringify(b)}`);
    const l = await p.ledger();
    const sum = l.reduce((a, e) => a + e.amount_usd, 0);
    assert.ok(near(sum, b.availableCredits, 1e-6), `ledger sum ${sum} vs available ${b.availableCredits}`);
    let active = 0;
    for (const d of await p.allDeployments()) for (const j of await p.jobs(d.id)) if (j.state === 'QUEUED' || j.state === 'RUNNING') active++;
    assert.ok(near(b.reservedCredits, active * 0.05, 1e-9), `reserved ${b.reservedCredits} = ${active} × 0.05`);
    assert.ok(near(b.assignedCredits, 10), 'the sign-up grant is given once');
  });

  it('the INFERA_ADMIN_KEY admin key still works after the restarts; local-cpu price is 0.05', async () => {
    const r = await p.get('/api/credits/balance', { key: ADMIN_KEY });
    assert.equal(r.status, 200);
    assert.ok(!/inf_[0-9A-Za-z]{40}/.test(p.stderr.replace(ADMIN_KEY, '')), 'no random key printed');
    const m = await p.get('/api/markets/local-cpu', { key: null });
    assert.equal(m.json.usd_price_per_hour, 0.05);
  });
});

describe('9. CLI exit codes (§18)', () => {
  const ctx = usePlatform();
  const home = tmpDir('home');
  const run = (...args) => cli(args, { url: ctx.p.base, key: ADMIN_KEY, home });
  const s = {};

  before(async () => {
    const d = await ctx.p.create({ name: 'cli-running', autostart: true });
    s.running = d.id;
    await ctx.p.waitStatus(d.id, 'RUNNING');
  });

  it('deploy get <unknown> → 3', async () => {
    const r = await run('deploy', 'get', '3kZVR7DvCQGn1JEoAPEo1VKswaQMtDMJtRAkRagKsd2B');
    assert.equal(r.code, 3, `stderr: ${r.stderr}`);
    assert.match(r.stderr, /not found/i);
  });

  it('deploy start <running id> → 4', async () => {
    const r = await run('deploy', 'start', s.running);
    assert.equal(r.code, 4, `stderr: ${r.stderr}`);
    assert.match(r.stderr, /Deployment is in the incorrect state: RUNNING/);
  });

  it('deploy create --market nvidia-8xh100 --timeout 60m → 5 with the message on stderr', async () => {
    const r = await run('deploy', 'create', '--template', 'deepseek-r1-qwen-1-5b', '--market', 'nvidia-8xh100', '--timeout', '60m');
    assert.equal(r.code, 5, `stderr: ${r.stderr}`);
    assert.ok(r.stderr.includes('Insufficient credits. Need $18.200, have $10.00'), `stderr: ${r.stderr}`);
  });

  it('deploy create --market local-cpu --timeout 60m --json → 0 and valid JSON', async () => {
    const r = await run('deploy', 'create', '--template', 'deepseek-r1-qwen-1-5b', '--market', 'local-cpu', '--timeout', '60m', '--json');
    assert.equal(r.code, 0, `stderr: ${r.stderr}`);
    let d;
    assert.doesNotThrow(() => { d = JSON.parse(r.stdout); }, `stdout is JSON: ${r.stdout.slice(0, 300)}`);
    assert.match(d.id, /^[1-9A-HJ-NP-Za-km-z]{43,44}$/);
    assert.equal(d.status, 'STARTING');
    assert.equal(d.strategy, 'SIMPLE');
    assert.equal(d.replicas, 1);
    assert.equal(d.timeout, 60);
    assert.equal(d.template, 'deepseek-r1-qwen-1-5b');
    assert.equal(d.market, (await ctx.p.get('/api/markets/local-cpu', { key: null })).json.address);
    s.created = d.id;
  });

  it('deploy list shows the table header and the deployments', async () => {
    const r = await run('deploy', 'list');
    assert.equal(r.code, 0, `stderr: ${r.stderr}`);
    assert.match(r.stdout, /^ID\s+NAME\s+STATUS/m, r.stdout);
    assert.ok(r.stdout.includes(s.running));
    assert.ok(r.stdout.includes(s.created));
  });

  it('deploy stop → 0; deploy archive of RUNNING → 4; deploy create without --template/--file → 2', async () => {
    const other = await ctx.p.create({ name: 'cli-other', autostart: true });
    await ctx.p.waitStatus(other.id, 'RUNNING');
    const a = await run('deploy', 'archive', other.id);
    assert.equal(a.code, 4, `stderr: ${a.stderr}`);
    const st = await run('deploy', 'stop', other.id);
    assert.equal(st.code, 0, `stderr: ${st.stderr}`);
    assert.match(st.stdout, /STOPPING/);
    const u = await run('deploy', 'create', '--market', 'local-cpu');
    assert.equal(u.code, 2, `stderr: ${u.stderr}`);
  });
});
