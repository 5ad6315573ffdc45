// A second node joins over loopback (spec platform.md §16): join tokens, `infera node run`, a
// replica scheduled on the remote node and served through the gateway, then kill -9 of the node:
// OFFLINE after the heartbeat window, its job NODE_LOST, the SIMPLE deployment STOPPED, the
// endpoint 503. Thresholds are shortened with --node-offline-after / --node-lost-grace.
//
// Usage: node tests/platform/nodes.test.js <infera binary> <tiny model gguf>
'use strict';
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const BIN = process.argv[2];
const MODEL = process.argv[3];
if (!BIN || !MODEL || !fs.existsSync(BIN) || !fs.existsSync(MODEL)) {
  console.error('usage: node tests/platform/nodes.test.js <infera binary> <tiny model gguf>');
  process.exit(2);
}
const KEY = 'inf_nodesTestAdminKey0123456789abcdefghij';
const ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'infera-nodes-'));
const procs = [];
process.on('exit', () => {
  for (const p of procs) try { process.kill(p.pid, 'SIGKILL'); } catch {}
  fs.rmSync(ROOT, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, fn, timeout = 20000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function start(args, env = {}) {
  const p = spawn(BIN, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  p.out = '';
  p.stdout.on('data', (d) => (p.out += d));
  p.stderr.on('data', (d) => (p.out += d));
  p.exited = new Promise((r) => p.on('exit', (code, sig) => r({ code, sig })));
  return p;
}

describe('a second node joins over loopback', () => {
  const ctx = {};
  before(async () => {
    const data = path.join(ROOT, 'platform');
    ctx.platform = start(['platform', '--port', '0', '--data-dir', data, '--no-local-node', '--health-interval', '1',
      '--node-offline-after', '2', '--node-lost-grace', '2'], { INFERA_ADMIN_KEY: KEY });
    const m = await waitFor('the platform to listen', () => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(ctx.platform.out));
    ctx.url = m[1];
    ctx.api = async (method, p, body) => {
      const r = await fetch(ctx.url + '/api' + p, {
        method, headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      let json = null;
      try { json = JSON.parse(text); } catch {}
      return { status: r.status, json, text };
    };
    ctx.models = path.join(ROOT, 'node-models');
    const imp = spawnSync(BIN, ['model', 'import', MODEL, '--as', 'deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B',
      '--models-dir', ctx.models, '--demo']);
    assert.equal(imp.status, 0, String(imp.stderr));
  });
  after(async () => {
    for (const p of procs) try { p.kill('SIGTERM'); } catch {}
    await Promise.all(procs.map((p) => Promise.race([p.exited, sleep(5000)])));
  });

  it('a bad join token is refused', async () => {
    const n = start(['node', 'run', '--platform', ctx.url, '--token', 'join_nope', '--name', 'bad', '--models-dir', ctx.models]);
    const { code } = await n.exited;
    assert.equal(code, 1);
    assert.match(n.out, /cannot join the platform.*401/);
  });

  it('the node joins with a join token and is ONLINE', async () => {
    const t = await ctx.api('POST', '/nodes/join-tokens', {});
    assert.equal(t.status, 200, t.text);
    assert.match(t.json.token, /^join_/);
    ctx.node = start(['node', 'run', '--platform', ctx.url, '--token', t.json.token, '--name', 'n2', '--models-dir', ctx.models,
      '--health-interval', '1', '--serve-threads', '1']);
    const n = await waitFor('node n2 ONLINE', async () => {
      const r = await ctx.api('GET', '/nodes');
      return r.json.nodes.find((x) => x.name === 'n2' && x.status === 'ONLINE');
    });
    ctx.nodeId = n.id;
    assert.equal(n.local, false);
    assert.deepEqual(n.markets, ['local-cpu']);
    assert.ok(n.resources.cpu_cores >= 1);
  });

  it('a deployment runs on the remote node and answers through the gateway', async () => {
    const tpl = (await ctx.api('GET', '/jobs/templates')).json.find((x) => x.id === 'deepseek-r1-qwen-1-5b');
    const c = await ctx.api('POST', '/deployments/create', { name: 'remote', market: 'local-cpu', strategy: 'SIMPLE',
      replicas: 1, timeout: 60, autostart: true, job_definition: tpl.job_definition });
    assert.equal(c.status, 200, c.text);
    ctx.dep = c.json;
    await waitFor('READY', async () => (await ctx.api('GET', `/deployments/${ctx.dep.id}`)).json.health === 'READY', 30000);
    const jobs = (await ctx.api('GET', `/deployments/${ctx.dep.id}/jobs`)).json.jobs;
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0].node, ctx.nodeId);
    ctx.job = jobs[0].job;
    const r = await fetch(ctx.dep.endpoints[0].url + 'v1/chat/completions', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
    });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).object, 'chat.completion');
    const logs = (await ctx.api('GET', `/deployments/${ctx.dep.id}/logs`)).json.logs.map((l) => l.message);
    assert.ok(logs.some((m) => m === 'Assigned to node n2'), logs.join('\n'));
    ctx.replicaPid = Number(/Process (\d+) started/.exec(logs.join('\n'))[1]);
  });

  it('kill -9 of the node: its replica dies, the node goes OFFLINE, the job ends NODE_LOST', async () => {
    process.kill(ctx.node.pid, 'SIGKILL');
    await ctx.node.exited;
    await waitFor('the replica to die with its node', () => {
      try { return /^\d+ \S+ [ZX]/.test(fs.readFileSync(`/proc/${ctx.replicaPid}/stat`, 'utf8')); } catch { return true; }
    }, 5000);
    await waitFor('node OFFLINE', async () => (await ctx.api('GET', `/nodes/${ctx.nodeId}`)).json.status === 'OFFLINE', 10000);
    const job = await waitFor('job NODE_LOST', async () => {
      const j = (await ctx.api('GET', `/deployments/${ctx.dep.id}/jobs`)).json.jobs[0];
      return j.state === 'STOPPED' ? j : null;
    }, 15000);
    assert.equal(job.end_reason, 'NODE_LOST');
    const d = await waitFor('STOPPED', async () => {
      const x = (await ctx.api('GET', `/deployments/${ctx.dep.id}`)).json;
      return x.status === 'STOPPED' ? x : null;
    });
    assert.equal(d.active_jobs, 0);
    const events = (await ctx.api('GET', `/deployments/${ctx.dep.id}/events?limit=100`)).json.events.map((e) => e.type);
    assert.ok(events.includes('FRPS_TUNNEL_LOST'), events.join(','));
    assert.ok(events.includes('NODE_LOST'), events.join(','));
    const r = await fetch(ctx.dep.endpoints[0].url + 'v1/models');
    assert.equal(r.status, 503);
  });
});
