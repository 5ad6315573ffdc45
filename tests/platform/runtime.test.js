// End-to-end tests of the platform runtime (issue "Platform runtime"): the local node agent running
// `infera serve` replicas for the local-cpu market, health checks and readiness, job logs (REST and
// SSE follow), the endpoint gateway, failures of replicas and of the platform itself, and billing.
// Contract: spec/platform.md §5, §6, §10, §11, §12, §13, §14, §16, §19 and the tutorial.
//
// Usage: node tests/platform/runtime.test.js <infera binary> <tiny model gguf>
//
// Every describe block starts its own platform (`--port 0`, a fresh data dir under one temp root,
// `--health-interval 1`, `--serve-threads 1`) and stops it in `after`. The model store of each
// platform holds the tiny random-weight GGUF under deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B/, so the
// DeepSeek-R1 template resolves to it. The last block asserts that no `infera serve` started by
// these platforms is left; an `exit` handler (platform_harness.js, shared with platform_api.test.js
// and the browser tests) kills anything still alive and removes the temp root.
// Only node:test, node:assert, node:child_process, node:fs, node:path, platform_harness.js and web
// globals (fetch, AbortController, TextDecoder, performance) are used.
'use strict';
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const PH = require('./platform_harness.js');

const BIN = process.argv[2];
const MODEL = process.argv[3];
if (!BIN || !MODEL || !fs.existsSync(BIN) || !fs.existsSync(MODEL)) {
  console.error('usage: node tests/platform/runtime.test.js <infera binary> <tiny model gguf>');
  process.exit(2);
}

const ADMIN_KEY = 'inf_runtimeTestAdminKey0123456789abcdefgh';  // INFERA_ADMIN_KEY (>= 16 chars)
const { TEMPLATE_ID } = PH;
const SERVED_NAME = 'DeepSeek-R1-Distill-Qwen-1.5B';
const PRICE = 0.36;                 // $/h on local-cpu = $0.0001 per second
const PER_SECOND = PRICE / 3600;
const SIGNUP_CREDITS = 10;          // §14 default sign-up grant
// The template has --max-model-len 30000; a request asking for more is a 400 (as in vLLM), so the
// "endless" generation asks for just under it.
const LONG_MAX_TOKENS = 29000;

// The tutorial's request (max_tokens lowered from 4000 to keep the run short).
const TUTORIAL_BODY = {
  messages: [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'Give me a short fun fact about the roman empire' },
  ],
  max_tokens: 64,
  temperature: 0.7,
};

// ---------------------------------------------------------------------------------------------
// Process and temp-dir bookkeeping (platform_harness.js): nothing survives the test run.

const ROOT = PH.tempDir('infera-runtime-');
const { live, leftoverServes, sleep } = PH;
PH.globalTimeout('runtime.test.js', 200_000);

function pidAlive(pid) {
  // A zombie (reparented to a PID 1 that does not reap) counts as gone.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch (_) {
    return false;
  }
}

const clone = (x) => JSON.parse(JSON.stringify(x));
const near = (a, b, eps = 1e-6) => Math.abs(a - b) <= eps;
const waitFor = PH.makeWaitFor({ timeout: 10_000, interval: 100 });

// ---------------------------------------------------------------------------------------------
// A platform process with its local node (platform_harness.js).

class Platform extends PH.Platform {
  // dir: data dir (fresh when omitted); price: --local-cpu-price
  static start({ dir, price } = {}) {
    return super.launchLocal({ bin: BIN, model: MODEL, dir: dir || fs.mkdtempSync(path.join(ROOT, 'p-')), price,
      adminKey: ADMIN_KEY, startTimeout: 15_000 });
  }

  async events(id) {
    const r = await this.get(`/api/deployments/${id}/events?limit=100`);
    assert.equal(r.status, 200, r.text);
    return r.json.events;
  }
  async jobLogs(dep, job) {
    const out = [];
    let since = 0;
    for (let i = 0; i < 50; i++) {
      const r = await this.get(`/api/deployments/${dep}/jobs/${job}/logs?since_seq=${since}&limit=10000`);
      assert.equal(r.status, 200, `GET job logs: ${r.text}`);
      out.push(...r.json.logs);
      if (r.json.logs.length === 0) return out;
      since = r.json.next_seq;
    }
    return out;
  }
}

function cli(p, args, { timeout = 30_000 } = {}) {
  const env = { ...process.env, INFERA_PLATFORM_URL: p.base, INFERA_API_KEY: p.key };
  delete env.INFERA_ADMIN_KEY;
  return new Promise((resolve) => {
    execFile(BIN, args, { env, timeout, encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

// `infera deploy logs` (spec §18) may not exist yet: CLI11 prints the parent's help for an unknown
// subcommand, so look for its own usage line.
const HAS_DEPLOY_LOGS = (() => {
  try {
    const out = execFileSync(BIN, ['deploy', 'logs', '--help'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
    return /Usage:.*\bdeploy logs\b/.test(out);
  } catch (_) {
    return false;
  }
})();

// ---------------------------------------------------------------------------------------------
// Endpoint helpers.

async function chat(url, body = TUTORIAL_BODY, { timeout = 30_000 } = {}) {
  const res = await fetch(`${url}v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeout) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch (_) { json = undefined; }
  return { status: res.status, json, text, headers: res.headers };
}

// Reads `reader` until `ms` have passed or the body ends. onChunk(bytes, t). Returns true at the end
// of the body. A read still outstanding at the deadline keeps its handlers (no unhandled rejection).
// Reads until the stream ends (true), `ms` pass (false), or `onChunk` returns 'stop' (false).
async function readFor(reader, ms, onChunk) {
  const end = performance.now() + ms;
  let pending = null;
  while (performance.now() < end) {
    pending = pending || reader.read().then((v) => ({ v }), (e) => ({ e }));
    const r = await Promise.race([pending, sleep(Math.max(0, end - performance.now())).then(() => null)]);
    if (!r) return false;
    pending = null;
    if (r.e) throw r.e;
    if (r.v.done) return true;
    if (onChunk(r.v.value, performance.now()) === 'stop') return false;
  }
  return false;
}

// `data:` payloads of an OpenAI SSE text.
function sseDataLines(text) {
  return text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim());
}

// SSE client for the log follow routes: collects {id, event, data} in the background.
function parseSseEvent(raw) {
  const ev = { id: null, event: 'message', data: '' };
  let any = false;
  for (const line of raw.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? '' : line.slice(c + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    any = true;
    if (field === 'id') ev.id = value;
    else if (field === 'event') ev.event = value;
    else if (field === 'data') ev.data = ev.data ? `${ev.data}\n${value}` : value;
  }
  if (!any) return null;
  try { ev.json = JSON.parse(ev.data); } catch (_) { ev.json = undefined; }
  return ev;
}

class SseFollow {
  constructor(url, headers = {}) {
    this.url = url;
    this.headers = headers;
    this.events = [];
    this.ended = false;
    this.error = null;
  }
  async open() {
    this.ctrl = new AbortController();
    const res = await fetch(this.url, { headers: this.headers, signal: this.ctrl.signal });
    this.status = res.status;
    this.contentType = res.headers.get('content-type') || '';
    if (res.status !== 200) {
      this.body = await res.text();
      this.ended = true;
      this.done = Promise.resolve();
      return this;
    }
    this.done = (async () => {
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true }).replace(/\r\n/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const ev = parseSseEvent(buf.slice(0, i));
            buf = buf.slice(i + 2);
            if (ev) this.events.push(ev);
          }
        }
        this.ended = true;
      } catch (e) {
        this.error = e;
      }
    })();
    return this;
  }
  records() { return this.events.filter((e) => e.event === 'message'); }
  close() { try { this.ctrl.abort(); } catch (_) { /* closed */ } }
}

// ---------------------------------------------------------------------------------------------
// Shared checks of the tutorial flow.

const ENDPOINT_URL_RE = /^http:\/\/127\.0\.0\.1:\d+\/e\/([0-9a-z]{44})\/$/;

// Waits for READY and checks the start-up logs, job and deployment fields. Returns {job, pid, logs}.
async function checkStartup(p, dep) {
  const d = await p.waitReady(dep.id, 1);
  assert.equal(d.status, 'RUNNING');
  assert.equal(d.health, 'READY');
  assert.equal(d.ready_replicas, 1);
  assert.equal(d.active_jobs, 1);
  assert.equal(d.endpoints.length, 1);
  assert.equal(d.endpoints[0].status, 'ONLINE', 'endpoint status');
  const jobs = await p.jobs(dep.id);
  assert.equal(jobs.length, 1, 'one job');
  const job = jobs[0];
  assert.equal(job.state, 'RUNNING');
  assert.equal(job.phase, 'READY');
  assert.equal(job.endpoint_status, 'ONLINE');
  assert.equal(typeof job.time_start, 'number');
  assert.ok(job.node, 'job has a node');
  assert.equal(job.end_reason, null);

  const logs = await p.jobLogs(dep.id, job.job);
  const msgs = logs.map((l) => l.message);
  const idx = (re) => msgs.findIndex((m) => re.test(m));
  const assigned = idx(/^Assigned to node\b/);
  const starting = idx(/^Starting: /);
  const check1 = idx(/^health check #1 POST \/v1\/chat\/completions\b/);
  const passed = idx(/^Health checks passed/);
  const dump = msgs.join('\n').slice(0, 3000);
  assert.ok(assigned >= 0, `logs have "Assigned to node":\n${dump}`);
  assert.ok(starting > assigned, `"Starting:" after "Assigned to node":\n${dump}`);
  assert.ok(check1 > starting, `"health check #1 POST /v1/chat/completions" after "Starting:":\n${dump}`);
  assert.ok(passed > check1, `"Health checks passed" after health check #1:\n${dump}`);
  assert.ok(logs.some((l, i) => i > starting && l.type === 'container' && (l.stream === 'stdout' || l.stream === 'stderr')),
    `a container line of the replica:\n${dump}`);
  assert.match(msgs[starting], /\bserve\b/, 'the op runs `infera serve` natively (§10)');
  for (let i = 1; i < logs.length; i++) assert.equal(logs[i].seq, logs[i - 1].seq + 1, 'log seqs are consecutive');
  // The deployment-level read has the same records, each carrying its job.
  const r = await p.get(`/api/deployments/${dep.id}/logs?limit=10000`);
  assert.equal(r.status, 200, r.text);
  const depMsgs = r.json.logs.filter((l) => l.job === job.job).map((l) => l.message);
  assert.deepEqual(depMsgs.slice(0, msgs.length), msgs, 'GET /deployments/:id/logs has the job\'s records');
  const pm = msgs.map((m) => m.match(/^Process (\d+) started/)).find(Boolean);
  assert.ok(pm, `logs have "Process <pid> started":\n${dump}`);
  // The paged merged view loses nothing: its cursor pages every job's records in write order.
  const paged = [];
  for (let since = 0, guard = 0; guard < 1000; ++guard) {
    const page = await p.get(`/api/deployments/${dep.id}/logs?limit=7&since_seq=${since}`);
    if (!page.json.logs.length) break;
    paged.push(...page.json.logs.map((l) => l.message));
    since = page.json.next_seq;
  }
  assert.deepEqual(paged, r.json.logs.map((l) => l.message), 'paging the deployment logs returns every record once');
  // Job detail (§3.3): one op state per op with its logs, the per-job endpoint as a secret.
  const det = await p.get(`/api/deployments/${dep.id}/jobs/${job.job}`);
  assert.equal(det.status, 200, det.text);
  const jr = det.json.jobResult;
  assert.equal(jr.status, 'running');
  assert.ok(jr.opStates.length >= 1 && jr.opStates[0].status === 'running' && jr.opStates[0].providerId === job.node,
    JSON.stringify(jr.opStates).slice(0, 500));
  assert.ok(jr.opStates[0].logs.some((l) => ['stdout', 'stderr'].includes(l.type) && typeof l.log === 'string'), 'op logs');
  const sec = Object.values(jr.secrets[job.job] || {})[0];
  assert.ok(sec && sec.url === job.url && sec.status === 'ONLINE' && typeof sec.port === 'number',
    JSON.stringify(jr.secrets));
  return { job, pid: Number(pm[1]), logs, deployment: d };
}

function checkChatCompletion(r) {
  assert.equal(r.status, 200, `chat: ${r.text.slice(0, 500)}`);
  const c = r.json;
  assert.ok(c, 'JSON body');
  assert.match(c.id, /^chatcmpl-/);
  assert.equal(c.object, 'chat.completion');
  assert.equal(typeof c.created, 'number');
  assert.equal(c.model, SERVED_NAME);
  assert.ok(Array.isArray(c.choices) && c.choices.length === 1, 'one choice');
  assert.equal(c.choices[0].index, 0);
  assert.equal(c.choices[0].message.role, 'assistant');
  assert.equal(typeof c.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(c.choices[0].finish_reason), `finish_reason ${c.choices[0].finish_reason}`);
  assert.equal(typeof c.usage.prompt_tokens, 'number');
  assert.equal(typeof c.usage.completion_tokens, 'number');
  assert.ok(c.usage.prompt_tokens > 0);
  assert.ok(c.usage.completion_tokens > 0 && c.usage.completion_tokens <= TUTORIAL_BODY.max_tokens);
  assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
}

// Stops the deployment and checks the end state. Returns the ended job.
async function stopAndCheck(p, depId, jobId, pid, stopFn) {
  const t0 = Math.floor(Date.now() / 1000);
  await stopFn();
  const d = await p.waitStatus(depId, 'STOPPED', 20_000);
  const t1 = Math.ceil(Date.now() / 1000);
  assert.equal(d.active_jobs, 0);
  assert.equal(d.health, 'NONE');
  assert.equal(d.ready_replicas, 0);
  const job = (await p.jobs(depId)).find((j) => j.job === jobId);
  assert.equal(job.state, 'STOPPED');
  assert.equal(job.end_reason, 'USER_STOP');
  assert.equal(job.phase, 'EXITED');
  assert.equal(job.endpoint_status, 'OFFLINE');
  assert.ok(job.time_end >= t0 - 1 && job.time_end <= t1 + 1, `time_end ${job.time_end} within the stop [${t0}, ${t1}]`);
  await waitFor(`replica process ${pid} to exit`, () => !pidAlive(pid), { timeout: 3000, interval: 50 });
  return job;
}

// §14 ledger of one job that ran at PRICE: debit, settlement (charge = seconds × price), refund.
async function checkLedger(p, job, { onlyJob = true } = {}) {
  const ledger = await p.ledger();
  const mine = ledger.filter((e) => e.job === job.job);
  const byType = (t) => mine.filter((e) => e.type === t);
  assert.equal(byType('job_debit').length, 1, `one job_debit: ${JSON.stringify(mine)}`);
  assert.equal(byType('job_settlement').length, 1, `one job_settlement: ${JSON.stringify(mine)}`);
  assert.equal(byType('job_refund').length, 1, `one job_refund: ${JSON.stringify(mine)}`);
  const debit = byType('job_debit')[0];
  const settle = byType('job_settlement')[0];
  const refund = byType('job_refund')[0];
  const reserved = -debit.amount_usd;
  assert.ok(near(reserved, PRICE * (60 / 60)), `reserved the 60 min timeout at $${PRICE}/h: ${reserved}`);
  assert.equal(debit.idempotency_key, `job:${job.job}:debit`);
  assert.equal(settle.idempotency_key, `job:${job.job}:settle`);
  assert.equal(refund.idempotency_key, `job:${job.job}:refund`);
  const seconds = job.time_end - job.time_start;
  assert.ok(seconds >= 1, `the job ran ${seconds} s`);
  assert.equal(typeof settle.charge_usd, 'number', `settlement carries charge_usd: ${JSON.stringify(settle)}`);
  const charge = settle.charge_usd;
  assert.ok(Math.abs(charge - seconds * PER_SECOND) <= 0.0002,
    `charge ${charge} ≈ ${seconds} s × $0.0001 = ${(seconds * PER_SECOND).toFixed(6)}`);
  assert.ok(near(settle.amount_usd, 0), 'settlement amount is 0 (moves reserved to settled)');
  assert.ok(near(refund.amount_usd, reserved - charge), `refund ${refund.amount_usd} = reserved ${reserved} − charge ${charge}`);
  assert.ok(near(job.cost_usd, charge, 1e-4), `job cost_usd ${job.cost_usd} ≈ charge ${charge}`);
  if (onlyJob) {
    const b = await p.balance();
    assert.ok(near(b.availableCredits, SIGNUP_CREDITS - charge), `available ${b.availableCredits} = 10 − ${charge}`);
    assert.ok(near(b.reservedCredits, 0), `reserved ${b.reservedCredits}`);
    assert.ok(near(b.settledCredits, charge), `settled ${b.settledCredits}`);
  }
  return { charge, reserved, ledger };
}

// ---------------------------------------------------------------------------------------------
// 1. The tutorial via the REST API.

describe('1. tutorial end to end via the REST API', () => {
  const ctx = {};
  before(async () => { ctx.p = await Platform.start({ price: PRICE }); });
  after(async () => { if (ctx.p) await ctx.p.stop(); });

  it('creates a SIMPLE deployment of the DeepSeek-R1 1.5B template on local-cpu (autostart)', async () => {
    const d = await ctx.p.create({ name: 'tutorial_rest' });
    assert.ok(['STARTING', 'RUNNING'].includes(d.status), d.status);
    assert.equal(d.template, TEMPLATE_ID);
    assert.equal(d.strategy, 'SIMPLE');
    assert.equal(d.replicas, 1);
    assert.equal(d.endpoints.length, 1);
    assert.equal(d.endpoints[0].opId, 'Qwen1-5b');
    assert.equal(d.endpoints[0].port, 9000);
    assert.match(d.endpoints[0].url, ENDPOINT_URL_RE);
    assert.ok(d.endpoints[0].url.startsWith(`${ctx.p.base}/e/`));
    ctx.d = d;
  });

  it('logs show the start-up; the job becomes READY/ONLINE and the deployment READY 1/1', async () => {
    assert.ok(ctx.d, 'created');
    Object.assign(ctx, await checkStartup(ctx.p, ctx.d));
    // The local node (§3.8, §16) runs it.
    const r = await ctx.p.get('/api/nodes');
    assert.equal(r.status, 200, r.text);
    const node = r.json.nodes.find((n) => n.id === ctx.job.node);
    assert.ok(node, `the job's node is listed: ${r.text.slice(0, 500)}`);
    assert.equal(node.status, 'ONLINE');
    assert.ok(node.markets.includes('local-cpu'), `node markets ${JSON.stringify(node.markets)}`);
    assert.equal(node.running_jobs, 1);
  });

  it("the tutorial's request returns 200 with vLLM's chat.completion shape", async () => {
    assert.ok(ctx.job, 'ready');
    checkChatCompletion(await chat(ctx.d.endpoints[0].url));
  });

  it('stop → deployment STOPPED, job STOPPED with end_reason USER_STOP, replica gone', async () => {
    assert.ok(ctx.job, 'ready');
    ctx.ended = await stopAndCheck(ctx.p, ctx.d.id, ctx.job.job, ctx.pid, async () => {
      const r = await ctx.p.post(`/api/deployments/${ctx.d.id}/stop`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.status, 'STOPPING');
    });
    // §11.3: a stopped deployment's endpoint says so.
    const r = await chat(ctx.d.endpoints[0].url);
    assert.equal(r.status, 503, r.text);
    assert.deepEqual(r.json, { error: { message: 'Deployment tutorial_rest is STOPPED. Start it to serve requests.',
      type: 'ServiceUnavailableError', param: null, code: 503 } });
    assert.equal(r.headers.get('retry-after'), null, 'no Retry-After: a stopped deployment will not serve soon');
  });

  it('ledger: settlement ≈ seconds run × $0.0001, refund = reserved − charge, available = 10 − charge', async () => {
    assert.ok(ctx.ended, 'stopped');
    await checkLedger(ctx.p, ctx.ended);
  });
});

// ---------------------------------------------------------------------------------------------
// 1b. The tutorial via the CLI.

describe('1b. tutorial end to end via the CLI', () => {
  const ctx = {};
  before(async () => { ctx.p = await Platform.start({ price: PRICE }); });
  after(async () => { if (ctx.p) await ctx.p.stop(); });

  it('infera deploy create --template deepseek-r1-qwen-1-5b --market local-cpu … --json', async () => {
    const r = await cli(ctx.p, ['deploy', 'create', '--template', TEMPLATE_ID, '--market', 'local-cpu', '--strategy', 'SIMPLE',
      '--replicas', '1', '--timeout', '60m', '--json']);
    assert.equal(r.code, 0, `exit code; stderr: ${r.stderr}`);
    let d;
    assert.doesNotThrow(() => { d = JSON.parse(r.stdout); }, `stdout is JSON: ${r.stdout.slice(0, 300)}`);
    assert.match(d.id, /^[1-9A-HJ-NP-Za-km-z]{43,44}$/);
    assert.ok(['STARTING', 'RUNNING'].includes(d.status), d.status);
    assert.equal(d.template, TEMPLATE_ID);
    assert.equal(d.timeout, 60);
    assert.equal(d.strategy, 'SIMPLE');
    assert.match(d.endpoints[0].url, ENDPOINT_URL_RE);
    ctx.d = d;
  });

  it('logs show the start-up; the job becomes READY/ONLINE and the deployment READY 1/1', async () => {
    assert.ok(ctx.d, 'created');
    Object.assign(ctx, await checkStartup(ctx.p, ctx.d));
  });

  it("the tutorial's request returns 200 with vLLM's chat.completion shape", async () => {
    assert.ok(ctx.job, 'ready');
    checkChatCompletion(await chat(ctx.d.endpoints[0].url));
  });

  it('infera deploy logs ID prints the start-up lines', { skip: HAS_DEPLOY_LOGS ? false : '`infera deploy logs` does not exist in this binary (spec §18)' }, async () => {
    assert.ok(ctx.job, 'ready');
    const r = await cli(ctx.p, ['deploy', 'logs', ctx.d.id]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Assigned to node/);
    assert.match(r.stdout, /Health checks passed/);
  });

  it('infera deploy stop ID → STOPPED, job STOPPED with end_reason USER_STOP', async () => {
    assert.ok(ctx.job, 'ready');
    ctx.ended = await stopAndCheck(ctx.p, ctx.d.id, ctx.job.job, ctx.pid, async () => {
      const r = await cli(ctx.p, ['deploy', 'stop', ctx.d.id]);
      assert.equal(r.code, 0, `exit code; stderr: ${r.stderr}`);
    });
    const r = await cli(ctx.p, ['deploy', 'get', ctx.d.id, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).status, 'STOPPED');
  });

  it('ledger: settlement ≈ seconds run × $0.0001, refund = reserved − charge, available = 10 − charge', async () => {
    assert.ok(ctx.ended, 'stopped');
    await checkLedger(ctx.p, ctx.ended);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. The endpoint gateway.

describe('2. endpoint gateway', () => {
  const ctx = {};
  before(async () => { ctx.p = await Platform.start(); });
  after(async () => { if (ctx.p) await ctx.p.stop(); });

  it('before ready: 503 in OpenAI error shape with Retry-After', async () => {
    const d = await ctx.p.create({ name: 'gateway_test' });
    ctx.d = d;
    ctx.url = d.endpoints[0].url;
    const r = await chat(ctx.url);  // at once, before any replica can be ready
    assert.equal(r.status, 503, r.text);
    assert.match(r.headers.get('content-type') || '', /application\/json/);
    assert.ok(r.headers.get('retry-after'), 'Retry-After header');
    assert.equal(r.headers.get('retry-after'), '10');
    assert.ok(r.json && r.json.error, r.text);
    assert.deepEqual(Object.keys(r.json), ['error']);
    assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(r.json.error.type, 'ServiceUnavailableError');
    assert.equal(r.json.error.param, null);
    assert.equal(r.json.error.code, 503);
    assert.match(r.json.error.message, /^Deployment gateway_test is starting: 0 of 1 replicas ready( \(.+\))?\.$/);
    ctx.first503 = r.json.error.message;
  });

  it('before ready: the 503 message carries the current phase "(…)" from the first moment (§11.3, §19)', () => {
    assert.ok(ctx.first503, 'first 503 seen');
    assert.match(ctx.first503, /^Deployment gateway_test is starting: 0 of 1 replicas ready \(.+\)\.$/);
  });

  it('an unknown label answers 404 "No endpoint at this address."', async () => {
    const label = 'x'.repeat(44);
    for (const p of [`/e/${label}/v1/chat/completions`, `/e/${label}/v1/models`]) {
      const res = await fetch(`${ctx.p.base}${p}`, {
        method: p.endsWith('models') ? 'GET' : 'POST',
        headers: { 'content-type': 'application/json' },
        body: p.endsWith('models') ? undefined : JSON.stringify(TUTORIAL_BODY) });
      const text = await res.text();
      assert.equal(res.status, 404, text);
      assert.deepEqual(JSON.parse(text),
        { error: { message: 'No endpoint at this address.', type: 'NotFoundError', param: null, code: 404 } });
    }
  });

  it('SSE streaming passes through chunk by chunk (TTFB < 2 s, chunks arrive separately)', async () => {
    assert.ok(ctx.d, 'created');
    await ctx.p.waitReady(ctx.d.id, 1);
    // A complete short stream: vLLM chunk shape, ends with [DONE].
    {
      const t0 = performance.now();
      const res = await fetch(`${ctx.url}v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...TUTORIAL_BODY, max_tokens: 32, ignore_eos: true, stream: true }),
        signal: AbortSignal.timeout(30_000) });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') || '', /^text\/event-stream/);
      assert.equal(res.headers.get('x-accel-buffering'), 'no', 'X-Accel-Buffering: no (§11.2)');
      let text = '';
      let firstData = null;
      const dec = new TextDecoder();
      const ended = await readFor(res.body.getReader(), 30_000, (b, t) => {
        text += dec.decode(b, { stream: true });
        if (firstData === null && text.includes('data:')) firstData = t - t0;
      });
      assert.ok(ended, 'the stream ends');
      assert.ok(firstData !== null && firstData < 2000, `first data line after ${firstData} ms`);
      const data = sseDataLines(text);
      assert.equal(data[data.length - 1], '[DONE]');
      const chunks = data.slice(0, -1).map((x) => JSON.parse(x));
      assert.ok(chunks.length >= 2);
      for (const c of chunks) {
        assert.equal(c.object, 'chat.completion.chunk');
        assert.equal(c.model, SERVED_NAME);
      }
      assert.equal(chunks[0].choices[0].delta.role, 'assistant');
      const contentChunks = chunks.filter((c) => c.choices.length && typeof c.choices[0].delta.content === 'string' && c.choices[0].delta.content !== '');
      assert.ok(contentChunks.length >= 2, `several content chunks (${contentChunks.length})`);
    }
    // A long stream: the data lines arrive over time in many separate reads, the first one early
    // (the gateway does not buffer the response).
    {
      const ctrl = new AbortController();
      const t0 = performance.now();
      const res = await fetch(`${ctx.url}v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...TUTORIAL_BODY, max_tokens: LONG_MAX_TOKENS, ignore_eos: true, stream: true }),
        signal: ctrl.signal });
      assert.equal(res.status, 200);
      const reads = [];
      const dec = new TextDecoder();
      const reader = res.body.getReader();
      let ended;
      try {
        // Until 20 reads carried data (a count, not a time: sanitizer builds decode slowly).
        ended = await readFor(reader, 30_000, (b, t) => {
          const s = dec.decode(b, { stream: true });
          reads.push({ t: t - t0, data: (s.match(/^data:/gm) || []).length });
          return reads.filter((r) => r.data > 0).length >= 20 ? 'stop' : undefined;
        });
      } finally {
        ctrl.abort();
      }
      assert.equal(ended, false, 'the long stream is still running after 20 reads');
      const withData = reads.filter((r) => r.data > 0);
      assert.ok(withData.length > 0, 'data arrived');
      assert.ok(withData[0].t < 2000, `TTFB ${withData[0].t.toFixed(0)} ms < 2 s`);
      // Many separate reads while the stream is still running: not one burst buffered to the end.
      // (Not judged by wall time: a tiny model on the fast kernels sends 20 chunks in a few ms.)
      assert.ok(withData.length >= 5, `data arrives in many separate reads (${withData.length})`);
    }
  });

  it('a client that aborts a long streaming request: the replica aborts the generation', async () => {
    assert.ok(ctx.d, 'created');
    await ctx.p.waitReady(ctx.d.id, 1);
    const job = (await ctx.p.jobs(ctx.d.id)).find((j) => j.state === 'RUNNING');
    const ctrl = new AbortController();
    const res = await fetch(`${ctx.url}v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...TUTORIAL_BODY, max_tokens: LONG_MAX_TOKENS, ignore_eos: true, stream: true }),
      signal: ctrl.signal });
    assert.equal(res.status, 200);
    let text = '';
    const dec = new TextDecoder();
    try {
      await readFor(res.body.getReader(), 800, (b) => { text += dec.decode(b, { stream: true }); });
    } finally {
      ctrl.abort();
    }
    const first = sseDataLines(text).find((x) => x.startsWith('{'));
    assert.ok(first, 'got a chunk before aborting');
    const id = JSON.parse(first).id;
    assert.match(id, /^chatcmpl-/);
    // The replica logs one line per request: `infera: <id> prompt_tokens=… completion_tokens=… status=<ok|aborted>`.
    const line = await waitFor(`the replica's log line for ${id}`, async () => {
      const logs = await ctx.p.jobLogs(ctx.d.id, job.job);
      return logs.find((l) => l.type === 'container' && l.message.includes(id) && /status=/.test(l.message));
    }, { timeout: 5000, interval: 200 });
    const status = line.message.match(/status=(\S+)/)[1];
    assert.notEqual(status, 'ok', `the request was aborted, not finished: ${line.message}`);
    const done = Number((line.message.match(/completion_tokens=(\d+)/) || [])[1]);
    assert.ok(done < LONG_MAX_TOKENS, `generation stopped early (${done} tokens): ${line.message}`);
  });

  it('a client that leaves a non-streaming request before the answer: the replica aborts it too', async () => {
    assert.ok(ctx.d, 'created');
    await ctx.p.waitReady(ctx.d.id, 1);
    const job = (await ctx.p.jobs(ctx.d.id)).find((j) => j.state === 'RUNNING');
    const rid = `gwleave${Date.now()}`;  // the replica names the request chatcmpl-<X-Request-Id>
    const ctrl = new AbortController();
    const pending = fetch(`${ctx.url}v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': rid },
      body: JSON.stringify({ ...TUTORIAL_BODY, max_tokens: LONG_MAX_TOKENS, ignore_eos: true }),
      signal: ctrl.signal }).catch(() => null);
    await new Promise((r) => setTimeout(r, 800));
    ctrl.abort();
    await pending;
    const line = await waitFor(`the replica's log line for chatcmpl-${rid}`, async () => {
      const logs = await ctx.p.jobLogs(ctx.d.id, job.job);
      return logs.find((l) => l.type === 'container' && l.message.includes(`chatcmpl-${rid}`) && /status=/.test(l.message));
    }, { timeout: 5000, interval: 200 });
    assert.match(line.message, /status=aborted/, `the request was aborted, not finished: ${line.message}`);
    const done = Number((line.message.match(/completion_tokens=(\d+)/) || [])[1]);
    assert.ok(done < LONG_MAX_TOKENS, `generation stopped early (${done} tokens): ${line.message}`);
  });

});

// ---------------------------------------------------------------------------------------------
// 3. A job whose process fails at once.

describe('3. a job whose op fails at start ("--foo")', () => {
  const ctx = {};
  before(async () => {
    ctx.p = await Platform.start();
    ctx.jd = await ctx.p.templateJD();
    ctx.jd.ops[0].args.cmd.push('--foo');
  });
  after(async () => { if (ctx.p) await ctx.p.stop(); });

  it('SIMPLE: the job ends COMPLETED/FAILED, logs "unsupported vLLM argument: --foo", deployment STOPPED, event JOB_EXITED', async () => {
    const d = await ctx.p.create({ name: 'foo_simple', job_definition: clone(ctx.jd) });
    const job = await waitFor('the job to end', async () => {
      const jobs = await ctx.p.jobs(d.id);
      return jobs.length && !['QUEUED', 'RUNNING'].includes(jobs[0].state) ? jobs[0] : false;
    }, { timeout: 15_000, interval: 200 });
    assert.equal(job.state, 'COMPLETED');
    assert.equal(job.end_reason, 'FAILED');
    const logs = await ctx.p.jobLogs(d.id, job.job);
    assert.ok(logs.some((l) => l.message.includes('unsupported vLLM argument: --foo')),
      `logs: ${logs.map((l) => l.message).join('\n').slice(0, 2000)}`);
    const dd = await ctx.p.waitStatus(d.id, 'STOPPED', 10_000);
    assert.equal(dd.active_jobs, 0);
    assert.equal((await ctx.p.jobs(d.id)).length, 1, 'SIMPLE does not replace the failed job');
    const events = await ctx.p.events(d.id);
    assert.ok(events.some((e) => e.type === 'JOB_EXITED'), `events: ${events.map((e) => e.type).join(', ')}`);
  });

  it('INFINITE (timeout 60): after the first job fails a second job is listed (top-up); stop ends it', async () => {
    const d = await ctx.p.create({ name: 'foo_infinite', strategy: 'INFINITE', timeout: 60, job_definition: clone(ctx.jd) });
    const jobs = await waitFor('a second job after the first failed', async () => {
      const js = await ctx.p.jobs(d.id);
      return js.length >= 2 ? js : false;
    }, { timeout: 15_000, interval: 200 });
    const byCreated = [...jobs].sort((a, b) => a.created_at.localeCompare(b.created_at));
    assert.equal(byCreated[0].state, 'COMPLETED');
    assert.equal(byCreated[0].end_reason, 'FAILED');
    assert.ok(byCreated[1].created_at >= byCreated[0].updated_at || byCreated[1].created_at > byCreated[0].created_at,
      'the second job was listed after the first');
    const r = await ctx.p.post(`/api/deployments/${d.id}/stop`);
    assert.equal(r.status, 200, r.text);
    const dd = await ctx.p.waitStatus(d.id, 'STOPPED', 15_000);
    assert.equal(dd.active_jobs, 0);
  });
});

// ---------------------------------------------------------------------------------------------
// 4. Two replicas under load, one killed.

describe('4. two replicas under load; kill -9 of one replica', () => {
  const ctx = {};
  before(async () => { ctx.p = await Platform.start(); });
  after(async () => { if (ctx.p) await ctx.p.stop(); });

  it('SIMPLE with replicas 2: both replicas become READY', async () => {
    const d = await ctx.p.create({ name: 'two_replicas', replicas: 2 });
    ctx.d = await ctx.p.waitReady(d.id, 2);
    assert.equal(ctx.d.ready_replicas, 2);
    assert.equal(ctx.d.active_jobs, 2);
    const jobs = await ctx.p.jobs(d.id);
    assert.equal(jobs.length, 2);
    ctx.pids = {};
    for (const j of jobs) {
      assert.equal(j.state, 'RUNNING');
      assert.equal(j.phase, 'READY');
      assert.equal(j.endpoint_status, 'ONLINE');
      const logs = await ctx.p.jobLogs(d.id, j.job);
      const m = logs.map((l) => l.message.match(/^Process (\d+) started/)).find(Boolean);
      assert.ok(m, 'Process <pid> started');
      ctx.pids[j.job] = Number(m[1]);
      assert.ok(pidAlive(ctx.pids[j.job]));
    }
    ctx.jobs = jobs;
    assert.notEqual(ctx.pids[jobs[0].job], ctx.pids[jobs[1].job]);
  });

  it('requests keep succeeding through the gateway; only those in flight at the kill may fail', async (t) => {
    assert.ok(ctx.jobs, 'ready');
    const url = ctx.d.endpoints[0].url;
    const body = { messages: [{ role: 'user', content: 'Say hi' }], max_tokens: 8, temperature: 0.7 };
    const results = [];
    let running = true;
    const worker = async () => {
      while (running) {
        const t0 = Date.now();
        let status = 0;
        let ok = false;
        let err = '';
        try {
          const r = await chat(url, body, { timeout: 10_000 });
          status = r.status;
          ok = r.status === 200 && r.json && r.json.object === 'chat.completion';
          if (!ok) err = r.text.slice(0, 200);
        } catch (e) {
          err = String(e && e.message);
        }
        results.push({ t0, t1: Date.now(), ok, status, err });
      }
    };
    const workers = [worker(), worker(), worker(), worker()];
    // Load first (a count, not a time: sanitizer builds are several times slower), then the kill,
    // then enough requests started more than a second after it.
    await waitFor('4 requests before the kill', () => results.length >= 4, { timeout: 60_000, interval: 20 });
    ctx.victim = ctx.jobs[0];
    ctx.killAt = Date.now();
    process.kill(ctx.pids[ctx.victim.job], 'SIGKILL');
    await sleep(1000);
    await waitFor('8 requests after the first second', () =>
      results.filter((r) => r.t0 > ctx.killAt + 1000).length >= 8, { timeout: 60_000, interval: 20 });
    running = false;
    await Promise.all(workers);
    const before = results.filter((r) => r.t1 < ctx.killAt);
    const inflight = results.filter((r) => r.t0 <= ctx.killAt && r.t1 >= ctx.killAt);
    const afterKill = results.filter((r) => r.t0 > ctx.killAt);
    const afterFirstSecond = afterKill.filter((r) => r.t0 > ctx.killAt + 1000);
    t.diagnostic(`requests: ${before.length} before the kill, ${inflight.length} in flight (${inflight.filter((r) => !r.ok).length} failed), ${afterKill.length} after`);
    assert.ok(before.length >= 4, `requests before the kill: ${before.length}`);
    assert.deepEqual(before.filter((r) => !r.ok), [], 'every request before the kill succeeded');
    assert.ok(afterFirstSecond.length >= 8, `requests after the first second: ${afterFirstSecond.length}`);
    assert.deepEqual(afterFirstSecond.filter((r) => !r.ok), [], 'every request started > 1 s after the kill succeeded');
    assert.deepEqual(afterKill.filter((r) => !r.ok), [], 'every request started after the kill succeeded');
  });

  it('the killed job ends COMPLETED/FAILED with exit_code 137; SIMPLE does not replace it', async () => {
    assert.ok(ctx.killAt, 'killed');
    const job = await waitFor('the killed job to end', async () => {
      const j = (await ctx.p.jobs(ctx.d.id)).find((x) => x.job === ctx.victim.job);
      return j && !['QUEUED', 'RUNNING'].includes(j.state) ? j : false;
    }, { timeout: 5000, interval: 100 });
    assert.equal(job.state, 'COMPLETED');
    assert.equal(job.end_reason, 'FAILED');
    assert.equal(job.exit_code, 137);
    // One scheduler period (5 s, §7) after the end: still no replacement.
    await sleep(Math.max(0, ctx.killAt + 6500 - Date.now()));
    const jobs = await ctx.p.jobs(ctx.d.id);
    assert.equal(jobs.length, 2, 'no replacement job was listed');
    const d = await ctx.p.deployment(ctx.d.id);
    assert.equal(d.status, 'RUNNING');
    assert.equal(d.active_jobs, 1);
    assert.equal(d.ready_replicas, 1);
    assert.equal(d.health, 'DEGRADED');
    const events = await ctx.p.events(ctx.d.id);
    assert.ok(events.some((e) => e.type === 'JOB_EXITED' && e.message.includes(ctx.victim.job)),
      `JOB_EXITED for the killed job: ${events.map((e) => e.type).join(', ')}`);
    checkChatCompletion(await chat(ctx.d.endpoints[0].url));
  });
});

// ---------------------------------------------------------------------------------------------
// 5. The platform killed with SIGKILL, then restarted on the same data dir.

describe('5. kill -9 of the platform and restart on the same data dir', () => {
  const ctx = {};
  before(async () => {
    ctx.dir = fs.mkdtempSync(path.join(ROOT, 'p-'));
    ctx.p = await Platform.start({ dir: ctx.dir, price: PRICE });
  });
  after(async () => {
    if (ctx.p) await ctx.p.stop();
    if (ctx.p2) await ctx.p2.stop();
  });

  it('an INFINITE deployment (timeout 60) is READY and has served a request', async () => {
    const d = await ctx.p.create({ name: 'survivor', strategy: 'INFINITE', timeout: 60 });
    ctx.d = d;
    const s = await checkStartup(ctx.p, d);
    ctx.job = s.job;
    ctx.pid = s.pid;
    checkChatCompletion(await chat(d.endpoints[0].url));
    await waitFor('the request line in the job log', async () => {
      const logs = await ctx.p.jobLogs(d.id, s.job.job);
      return logs.filter((l) => /status=ok/.test(l.message)).length >= 2;  // health check + our request
    }, { timeout: 5000, interval: 200 });
    ctx.logsBefore = await ctx.p.jobLogs(d.id, s.job.job);
    ctx.ledgerBefore = await ctx.p.ledger();
    const r = await ctx.p.get('/api/nodes');
    ctx.nodesBefore = r.json.nodes;
  });

  it('the replica dies with the platform (gone within 2 s)', async () => {
    assert.ok(ctx.pid, 'ready');
    assert.ok(pidAlive(ctx.pid));
    ctx.killAt = Date.now();
    ctx.p.proc.kill('SIGKILL');
    await ctx.p.exitedP;
    await waitFor(`replica ${ctx.pid} to be gone`, () => !pidAlive(ctx.pid),
      { timeout: Math.max(1, ctx.killAt + 2000 - Date.now()), interval: 50 });
  });

  it('after a restart the old job is STOPPED/NODE_LOST within seconds; its logs and the ledger are intact', async () => {
    assert.ok(ctx.killAt, 'killed');
    await sleep(Math.max(0, ctx.killAt + 3000 - Date.now()));  // stay down a while
    ctx.p2 = await Platform.start({ dir: ctx.dir, price: PRICE });
    const p = ctx.p2;
    const lost = await waitFor('the old job to end', async () => {
      const j = (await p.jobs(ctx.d.id)).find((x) => x.job === ctx.job.job);
      return j && !['QUEUED', 'RUNNING'].includes(j.state) ? j : false;
    }, { timeout: 8000, interval: 200 });
    assert.equal(lost.state, 'STOPPED');
    assert.equal(lost.end_reason, 'NODE_LOST');
    ctx.lost = lost;
    // Logs: everything from before is still there, unchanged.
    const logs = await p.jobLogs(ctx.d.id, ctx.job.job);
    assert.ok(logs.length >= ctx.logsBefore.length);
    for (let i = 0; i < ctx.logsBefore.length; i++) {
      assert.equal(logs[i].seq, ctx.logsBefore[i].seq);
      assert.equal(logs[i].message, ctx.logsBefore[i].message);
      assert.equal(logs[i].type, ctx.logsBefore[i].type);
    }
    // Ledger: the old entries unchanged, plus the lost job's settlement and refund (and the
    // debits of replacement jobs).
    const ledger = await p.ledger();
    const byId = new Map(ledger.map((e) => [e.id, e]));
    for (const e of ctx.ledgerBefore) assert.deepEqual(byId.get(e.id), e, `ledger entry ${e.type} ${e.id} unchanged`);
    const before = new Set(ctx.ledgerBefore.map((e) => e.id));
    const added = ledger.filter((e) => !before.has(e.id));
    const lostEntries = added.filter((e) => e.job === ctx.job.job).map((e) => e.type).sort();
    assert.deepEqual(lostEntries, ['job_refund', 'job_settlement'], `new entries of the lost job: ${JSON.stringify(added)}`);
    for (const e of added.filter((x) => x.job !== ctx.job.job)) assert.equal(e.type, 'job_debit', `other new entry: ${JSON.stringify(e)}`);
    const { charge } = await checkLedger(p, lost, { onlyJob: false });
    assert.ok(charge > 0);
    // The same local node is back ONLINE.
    const r = await p.get('/api/nodes');
    assert.equal(r.status, 200, r.text);
    const local = ctx.nodesBefore.find((n) => n.id === ctx.job.node);
    assert.ok(local, 'the node was listed before');
    const again = r.json.nodes.find((n) => n.id === local.id);
    assert.ok(again, `node ${local.id} is listed after the restart: ${r.text.slice(0, 400)}`);
    assert.equal(again.status, 'ONLINE');
  });

  it('the lost job is billed up to its last heartbeat, not up to the restart (§16, §19)', async () => {
    assert.ok(ctx.lost, 'lost job seen');
    const killS = ctx.killAt / 1000;
    assert.ok(ctx.lost.time_end <= Math.ceil(killS) + 1,
      `time_end ${ctx.lost.time_end} should be ≤ the kill (${killS.toFixed(1)}) + 1 s; the platform was down ~3 s`);
  });

  it('INFINITE lists a replacement that becomes READY and serves the same endpoint label', async () => {
    assert.ok(ctx.lost, 'lost job seen');
    const p = ctx.p2;
    const d = await p.waitReady(ctx.d.id, 1, 30_000);
    const jobs = await p.jobs(ctx.d.id);
    const repl = jobs.find((j) => j.job !== ctx.job.job && j.state === 'RUNNING');
    assert.ok(repl, `a replacement job: ${JSON.stringify(jobs.map((j) => [j.job.slice(0, 6), j.state, j.end_reason]))}`);
    assert.equal(repl.phase, 'READY');
    assert.equal(repl.endpoint_status, 'ONLINE');
    assert.equal(d.status, 'RUNNING');
    assert.equal(d.endpoints[0].url.match(ENDPOINT_URL_RE)[1], ctx.d.endpoints[0].url.match(ENDPOINT_URL_RE)[1],
      'same endpoint label after the restart');
    checkChatCompletion(await chat(d.endpoints[0].url));
    const r = await p.post(`/api/deployments/${ctx.d.id}/stop`);
    assert.equal(r.status, 200, r.text);
    await p.waitStatus(ctx.d.id, 'STOPPED', 20_000);
  });

  it('a graceful stop (SIGTERM) ends the running jobs NODE_LOST, not as exits of their own', async () => {
    assert.ok(ctx.p2, 'restarted');
    const d = await ctx.p2.create({ name: 'graceful', strategy: 'SIMPLE', timeout: 60 });
    const s = await checkStartup(ctx.p2, d);
    await ctx.p2.stop('SIGTERM');
    ctx.p2 = await Platform.start({ dir: ctx.dir, price: PRICE });
    const job = (await ctx.p2.jobs(d.id)).find((x) => x.job === s.job.job);
    assert.equal(job.state, 'STOPPED', JSON.stringify(job));
    assert.equal(job.end_reason, 'NODE_LOST', JSON.stringify(job));
    const types = (await ctx.p2.events(d.id)).map((e) => e.type);
    assert.ok(!types.includes('JOB_EXITED'), `events: ${types.join(', ')}`);
  });
});

// ---------------------------------------------------------------------------------------------
// 6. Logs follow (SSE).

describe('6. job logs follow (SSE)', () => {
  const ctx = { streams: [] };
  before(async () => {
    ctx.dir = fs.mkdtempSync(path.join(ROOT, 'p-'));
    ctx.p = await Platform.start({ dir: ctx.dir });
  });
  after(async () => {
    for (const s of ctx.streams) s.close();
    if (ctx.p) await ctx.p.stop();
  });

  const followUrl = (dep, job) => `${ctx.p.base}/api/deployments/${dep}/jobs/${job}/logs?follow=true`;
  const auth = () => ({ authorization: `Bearer ${ctx.p.key}` });
  async function follow(url, headers = {}) {
    const s = await new SseFollow(url, { ...auth(), ...headers }).open();
    ctx.streams.push(s);
    assert.equal(s.status, 200, s.body);
    assert.match(s.contentType, /^text\/event-stream/);
    return s;
  }
  // Whether the platform is still up 700 ms after a follow stream ended; restarts it on the same
  // data dir when it is not, so later tests still check their own property.
  async function survived() {
    await sleep(700);
    if (!ctx.p.exited) return true;
    const last = ctx.p.stderr.split('\n').filter(Boolean).slice(-1)[0];
    ctx.p = await Platform.start({ dir: ctx.dir });
    return `the platform died; its last stderr line: ${JSON.stringify(last)}`;
  }
  function checkConsecutive(records, from, what = '') {
    for (let i = 0; i < records.length; i++) {
      assert.equal(String(records[i].id), String(from + i), `${what} event #${i} has id ${from + i} (got ${records[i].id})`);
      assert.ok(records[i].json, `${what} event #${i} data is JSON`);
      assert.equal(records[i].json.seq, from + i, `${what} id = seq`);
    }
  }

  it('follow=true streams records with increasing ids (= seq), no gaps or duplicates', async () => {
    const d = await ctx.p.create({ name: 'follow_me' });
    ctx.d = d;
    const job = await waitFor('the job to be listed', async () => {
      const js = await ctx.p.jobs(d.id);
      return js.length ? js[0] : false;
    }, { timeout: 10_000, interval: 50 });
    ctx.job = job;
    ctx.s1 = await follow(followUrl(d.id, job.job));
    await ctx.p.waitReady(d.id, 1);
    for (let i = 0; i < 3; i++) checkChatCompletion(await chat(d.endpoints[0].url));
    // 1 health check + 3 requests = 4 request lines from the replica, live.
    await waitFor('the request lines in the stream', () =>
      ctx.s1.records().filter((e) => e.json && /status=ok/.test(e.json.message)).length >= 4,
    { timeout: 5000, interval: 100 });
    const recs = ctx.s1.records();
    checkConsecutive(recs, 1);
    const rest = await ctx.p.jobLogs(d.id, job.job);
    assert.ok(rest.length >= recs.length);
    for (let i = 0; i < recs.length; i++) {
      assert.equal(recs[i].json.message, rest[i].message);
      assert.equal(recs[i].json.job, job.job);
    }
    assert.ok(recs.some((e) => /^Assigned to node/.test(e.json.message)));
    assert.ok(recs.some((e) => /^Health checks passed/.test(e.json.message)));
    assert.equal(ctx.s1.ended, false, 'the stream is still open while the job runs');
  });

  it('after the job is stopped the stream ends with `event: end`, after every record', async () => {
    assert.ok(ctx.s1, 'stream open');
    const r = await ctx.p.post(`/api/deployments/${ctx.d.id}/stop`);
    assert.equal(r.status, 200, r.text);
    await waitFor('the stream to end', () => ctx.s1.ended || ctx.s1.error, { timeout: 20_000, interval: 100 });
    assert.equal(ctx.s1.error, null, `stream error: ${ctx.s1.error}`);
    assert.equal(ctx.s1.events[ctx.s1.events.length - 1].event, 'end', 'the last event is "end"');
    const recs = ctx.s1.records();
    checkConsecutive(recs, 1);
    assert.ok(recs.some((e) => /^Job ended STOPPED \(USER_STOP\b/.test(e.json.message)), 'the end line comes before "end"');
    ctx.ended = true;
    ctx.survivedEnd = await survived();
    const rest = await ctx.p.jobLogs(ctx.d.id, ctx.job.job);
    assert.equal(recs.length, rest.length, 'the stream had every record');
  });

  it('the platform survives the end of a follow stream (`event: end`)', () => {
    assert.ok(ctx.ended, 'stream ended');
    assert.equal(ctx.survivedEnd, true, `after a follow stream ended with "event: end": ${ctx.survivedEnd}`);
  });

  it('reconnecting with Last-Event-ID: N resumes at N+1, then streams live; since_seq does the same', async () => {
    const d = await ctx.p.create({ name: 'follow_resume' });
    await ctx.p.waitReady(d.id, 1);
    const job = (await ctx.p.jobs(d.id)).find((j) => j.state === 'RUNNING');
    const rest = await ctx.p.jobLogs(d.id, job.job);
    const n = Math.floor(rest.length / 2);
    const s2 = await follow(followUrl(d.id, job.job), { 'last-event-id': String(n) });
    const s3 = await follow(`${followUrl(d.id, job.job)}&since_seq=${n + 2}`);
    await waitFor('the replays', () => s2.records().length >= rest.length - n && s3.records().length >= rest.length - n - 2,
      { timeout: 5000, interval: 50 });
    checkConsecutive(s2.records(), n + 1, 'Last-Event-ID');
    checkConsecutive(s3.records(), n + 3, 'since_seq');
    for (let i = 0; i < rest.length - n; i++) assert.equal(s2.records()[i].json.message, rest[n + i].message);
    // Live after the replay.
    const c = await chat(d.endpoints[0].url);
    checkChatCompletion(c);
    await waitFor('the new request line in the resumed stream', () =>
      s2.records().some((e) => e.json && e.json.message.includes(c.json.id)), { timeout: 5000, interval: 100 });
    checkConsecutive(s2.records(), n + 1, 'Last-Event-ID (live)');
    assert.equal(s2.ended, false);
  });

  it('the deployment-level follow has unique increasing ids and resumes from Last-Event-ID', async () => {
    assert.ok(ctx.d, 'created');
    const url = () => `${ctx.p.base}/api/deployments/${ctx.d.id}/logs?follow=true`;
    const rest = await ctx.p.jobLogs(ctx.d.id, ctx.job.job);
    const s = await follow(url());
    await waitFor('the merged replay', () => s.records().length >= rest.length, { timeout: 5000, interval: 50 });
    s.close();
    ctx.survivedClose = await survived();
    const recs = s.records();
    assert.equal(recs.length, rest.length);
    assert.ok(recs.every((e) => e.json && e.json.job === ctx.job.job), 'each record carries its job');
    const ids = recs.map((e) => Number(e.id));
    const k = 5;
    const s2 = await follow(url(), { 'last-event-id': String(ids[k - 1]) });
    await waitFor('the merged resume', () => s2.records().length >= rest.length - k, { timeout: 3000, interval: 50 }).catch(() => {});
    s2.close();
    await survived();
    for (let i = 1; i < ids.length; i++) {
      assert.ok(ids[i] > ids[i - 1], `ids strictly increase: #${i - 1}=${ids[i - 1]}, #${i}=${ids[i]} (ids ${ids.slice(0, 10).join(',')}…)`);
    }
    assert.deepEqual(s2.records().map((e) => e.json.message), recs.slice(k).map((e) => e.json.message),
      `reconnecting with the id of record #${k} replays exactly the records after it`);
  });

  it('the deployment-level follow of a stopped deployment replays its logs, then ends (`event: end`)', async () => {
    assert.ok(ctx.d, 'created');
    const r = await ctx.p.post(`/api/deployments/${ctx.d.id}/stop`);
    assert.ok([200, 409].includes(r.status), r.text);
    await ctx.p.waitStatus(ctx.d.id, 'STOPPED', 20_000);
    const s = await follow(`${ctx.p.base}/api/deployments/${ctx.d.id}/logs?follow=true`);
    await waitFor('the end of the merged stream', () => s.ended, { timeout: 5000, interval: 50 });
    s.close();
    const all = await ctx.p.get(`/api/deployments/${ctx.d.id}/logs?limit=10000`);
    assert.deepEqual(s.records().map((e) => e.json.message), all.json.logs.map((l) => l.message));
  });

  it('the platform survives a follow client closing its connection', () => {
    assert.notEqual(ctx.survivedClose, undefined, 'closed a stream');
    assert.equal(ctx.survivedClose, true, `after a follow client disconnected: ${ctx.survivedClose}`);
  });
});

// ---------------------------------------------------------------------------------------------

describe('no replica outlives its platform', () => {
  it('no `infera serve` process of these platforms is left', async () => {
    for (const p of live) { try { p.kill('SIGTERM'); } catch (_) { /* gone */ } }
    const left = await waitFor('no leftover replicas', () => {
      const l = leftoverServes();
      return l.length === 0 ? [] : false;
    }, { timeout: 5000, interval: 200 }).catch((e) => e);
    const now = leftoverServes();
    for (const s of now) { try { process.kill(s.pid, 'SIGKILL'); } catch (_) { /* gone */ } }
    assert.deepEqual(now.map((s) => `${s.pid} ${s.args}`), [], `leftover replicas (killed now): ${left && left.message}`);
  });
});
