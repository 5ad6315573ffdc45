#!/usr/bin/env node
// Gateway overhead benchmark: the platform's endpoint gateway (/e/<label>/...)
// against the replica it proxies to, reached directly on its own port.
//
// Usage: node bench/gateway_bench.js <infera binary> <model.gguf> [--json]
//
// Starts `infera platform` on a free port with a throw-away data dir, imports the
// model under the 1.5B template's Hub name, deploys that template on local-cpu,
// waits for READY, then measures, alternating direct and gateway requests over
// keep-alive connections (one agent with one socket per target):
//   1. latency of GET /v1/models and of a 1-token POST /v1/chat/completions
//   2. streamed-token throughput and time to first token of a long streaming chat
// At the end the platform is stopped (its replica with it) and the data dir removed.
// Only Node built-in modules are used (Node 20).
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');

const ADMIN_KEY = 'inf_benchadminkey000000000000';
const MODEL_NAME = 'deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B';
const TEMPLATE_ID = 'deepseek-r1-qwen-1-5b';
const WARMUP = 20;
const LAT_N = 300;
const STREAM_RUNS = 5;
const STREAM_BODY = { stream: true, max_tokens: 2000, ignore_eos: true, messages: [{ role: 'user', content: 'hi' }] };
const CHAT_BODY = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 };

// ---------------------------------------------------------------------------------
// helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowNs = () => process.hrtime.bigint();
const msSince = (t0) => Number(nowNs() - t0) / 1e6;

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const pos = (s.length - 1) * q; // linear interpolation between closest ranks
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
const median = (xs) => quantile(xs, 0.5);
const round = (x, d = 3) => (Number.isFinite(x) ? Number(x.toFixed(d)) : null);

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}

// A target: base URL (origin + path prefix) and its own keep-alive agent with one socket.
function makeTarget(name, baseUrl) {
  const u = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return {
    name,
    host: u.hostname,
    port: Number(u.port),
    prefix: u.pathname.replace(/\/+$/, ''),
    agent,
    sockets: new WeakSet(),
    connections: 0,
    errors: 0,
    errorSamples: [],
  };
}

function noteSocket(target, req) {
  req.on('socket', (sock) => {
    if (!target.sockets.has(sock)) { target.sockets.add(sock); target.connections++; }
  });
}

function noteError(target, what) {
  target.errors++;
  if (target.errorSamples.length < 5) target.errorSamples.push(what);
}

// One plain request; resolves { status, body, ms } once the whole body is read.
function request(target, method, p, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = {};
    if (payload) { headers['Content-Type'] = 'application/json'; headers['Content-Length'] = payload.length; }
    const t0 = nowNs();
    const req = http.request(
      { host: target.host, port: target.port, method, path: target.prefix + p, agent: target.agent, headers },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), ms: msSince(t0) }));
        res.on('error', reject);
      });
    noteSocket(target, req);
    req.on('error', reject);
    req.setTimeout(120000, () => req.destroy(new Error('request timed out')));
    if (payload) req.write(payload);
    req.end();
  });
}

// One streaming chat; counts SSE data: chunks with non-empty delta content.
function streamChat(target) {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(STREAM_BODY));
    const t0 = nowNs();
    let ttft = null, tokens = 0, chunks = 0, done = false, doneMs = null, buf = '', status = 0, bad = 0;
    const req = http.request(
      {
        host: target.host, port: target.port, method: 'POST', path: target.prefix + '/v1/chat/completions',
        agent: target.agent, headers: { 'Content-Type': 'application/json', 'Content-Length': payload.length },
      },
      (res) => {
        status = res.statusCode;
        res.setEncoding('utf8');
        res.on('data', (s) => {
          buf += s;
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, i).replace(/\r$/, '');
            buf = buf.slice(i + 1);
            if (!line.startsWith('data:')) continue;
            const data = line.slice(5).trim();
            if (data === '[DONE]') { if (!done) { done = true; doneMs = msSince(t0); } continue; }
            try {
              const j = JSON.parse(data);
              const delta = j.choices && j.choices[0] && j.choices[0].delta;
              const c = delta && delta.content;
              // every generated token is one chunk; some decode to no text yet (content "")
              if (typeof c === 'string' && !delta.role) chunks++;
              if (typeof c === 'string' && c.length > 0) {
                tokens++;
                if (ttft === null) ttft = msSince(t0);
              }
            } catch { bad++; }
          }
        });
        res.on('end', () => resolve({ status, tokens, chunks, ttft, done, ms: doneMs ?? msSince(t0), bad }));
        res.on('error', reject);
      });
    noteSocket(target, req);
    req.on('error', reject);
    req.setTimeout(300000, () => req.destroy(new Error('stream timed out')));
    req.write(payload);
    req.end();
  });
}

// Platform API (setup only), via fetch.
async function api(base, method, p, body) {
  const res = await fetch(base + p, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_KEY}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* keep text */ }
  if (!res.ok) throw new Error(`${method} ${p} -> ${res.status}: ${text.slice(0, 500)}`);
  return json;
}

// ---------------------------------------------------------------------------------
// platform lifecycle

function startPlatform(bin, dataDir, log) {
  const child = spawn(bin, [
    'platform', '--port', '0', '--data-dir', dataDir, '--models-dir', path.join(dataDir, 'models'),
    '--health-interval', '1', '--serve-threads', '1',
  ], { env: { ...process.env, INFERA_ADMIN_KEY: ADMIN_KEY }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => log.push(d.toString()));
  const ready = new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('platform did not report its port within 30 s')), 30000);
    child.stderr.on('data', (d) => {
      const s = d.toString();
      log.push(s);
      buf += s;
      const m = buf.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`platform exited early (code ${code}, signal ${sig})`)); });
  });
  return { child, ready };
}

async function stopPlatform(child, replicaPid) {
  const info = { platform_exit: null, platform_exit_ms: null, replica_exited: null, forced: [] };
  if (child.exitCode === null && child.signalCode === null) {
    const t0 = nowNs();
    const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
    child.kill('SIGTERM');
    const res = await Promise.race([exited, sleep(15000).then(() => null)]);
    if (res === null) {
      info.forced.push(`platform pid ${child.pid} still running 15 s after SIGTERM; sent SIGKILL`);
      child.kill('SIGKILL');
      info.platform_exit = await exited;
    } else {
      info.platform_exit = res;
    }
    info.platform_exit_ms = round(msSince(t0), 1);
  } else {
    info.platform_exit = { code: child.exitCode, sig: child.signalCode };
  }
  if (replicaPid) {
    const t0 = Date.now();
    while (alive(replicaPid) && Date.now() - t0 < 10000) await sleep(100);
    // A zombie whose parent is gone counts as exited for our purpose; check /proc state.
    let state = null;
    try { state = fs.readFileSync(`/proc/${replicaPid}/stat`, 'utf8').split(') ')[1].split(' ')[0]; } catch { /* gone */ }
    info.replica_exited = !alive(replicaPid) || state === 'Z';
    if (!info.replica_exited) {
      info.forced.push(`replica pid ${replicaPid} still running 10 s after the platform exited; sent SIGKILL`);
      try { process.kill(replicaPid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  return info;
}

// ---------------------------------------------------------------------------------
// measurements

async function latency(direct, gateway, label, fn) {
  const r = { direct: [], gateway: [] };
  for (let i = 0; i < WARMUP; i++) {
    for (const t of [direct, gateway]) await fn(t);
  }
  for (let i = 0; i < LAT_N; i++) {
    const order = i % 2 === 0 ? [direct, gateway] : [gateway, direct];
    for (const t of order) {
      const res = await fn(t);
      if (res.status !== 200) noteError(t, `${label}: HTTP ${res.status} ${res.body.slice(0, 200)}`);
      r[t === direct ? 'direct' : 'gateway'].push(res.ms);
    }
  }
  const paired = r.gateway.map((g, i) => g - r.direct[i]);
  const stats = (xs) => ({ median: round(median(xs)), p90: round(quantile(xs, 0.9)), p99: round(quantile(xs, 0.99)), mean: round(xs.reduce((a, b) => a + b, 0) / xs.length) });
  return {
    n: LAT_N,
    direct_ms: stats(r.direct),
    gateway_ms: stats(r.gateway),
    median_diff_ms: round(median(r.gateway) - median(r.direct)),
    median_paired_diff_ms: round(median(paired)),
  };
}

async function throughput(direct, gateway) {
  const runs = { direct: [], gateway: [] };
  for (let i = 0; i < STREAM_RUNS; i++) {
    const order = i % 2 === 0 ? [direct, gateway] : [gateway, direct];
    for (const t of order) {
      const res = await streamChat(t);
      if (res.status !== 200 || !res.done || res.bad) noteError(t, `stream: HTTP ${res.status} done=${res.done} unparsable=${res.bad} tokens=${res.tokens}`);
      runs[t === direct ? 'direct' : 'gateway'].push(res);
    }
  }
  const summarize = (rs) => ({
    tokens: rs.map((x) => x.tokens),
    chunks: rs.map((x) => x.chunks),
    // all token chunks, including those whose content is still "" (partial UTF-8 etc.)
    chunk_s_median: round(median(rs.map((x) => x.chunks / (x.ms / 1000))), 1),
    tok_s_runs: rs.map((x) => round(x.tokens / (x.ms / 1000), 1)),
    tok_s_median: round(median(rs.map((x) => x.tokens / (x.ms / 1000))), 1),
    // decode rate after the first token: (tokens - 1) / (done - ttft)
    decode_tok_s_median: round(median(rs.map((x) => (x.tokens - 1) / ((x.ms - x.ttft) / 1000))), 1),
    ttft_ms_median: round(median(rs.map((x) => x.ttft))),
    total_ms_median: round(median(rs.map((x) => x.ms)), 1),
  });
  const d = summarize(runs.direct), g = summarize(runs.gateway);
  return { runs: STREAM_RUNS, direct: d, gateway: g, tok_s_ratio_gateway_over_direct: round(g.tok_s_median / d.tok_s_median, 4) };
}

// ---------------------------------------------------------------------------------
// output

function table(rows) {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  return rows.map((r, i) => {
    const line = r.map((x, c) => (c === 0 ? String(x).padEnd(w[c]) : String(x).padStart(w[c]))).join('  ');
    return i === 0 ? line + '\n' + w.map((n) => '-'.repeat(n)).join('  ') : line;
  }).join('\n');
}

function printReport(out) {
  const L = [];
  L.push(`infera gateway benchmark  (${out.machine.cpu}, ${out.machine.nproc} CPUs, node ${out.machine.node})`);
  L.push(`binary ${out.binary}`);
  L.push(`model  ${out.model}`);
  L.push(`direct  ${out.urls.direct}`);
  L.push(`gateway ${out.urls.gateway}`);
  L.push('');
  L.push(`Latency, ms (${LAT_N} requests each after ${WARMUP} warm-up, alternating, keep-alive)`);
  const rows = [['request', 'target', 'median', 'p90', 'p99', 'mean', 'gw-direct (median)', 'paired diff (median)']];
  for (const [name, r] of [['GET /v1/models', out.latency.models], ['POST chat max_tokens=1', out.latency.chat]]) {
    rows.push([name, 'direct', r.direct_ms.median, r.direct_ms.p90, r.direct_ms.p99, r.direct_ms.mean, '', '']);
    rows.push(['', 'gateway', r.gateway_ms.median, r.gateway_ms.p90, r.gateway_ms.p99, r.gateway_ms.mean, r.median_diff_ms, r.median_paired_diff_ms]);
  }
  L.push(table(rows));
  L.push('');
  const t = out.throughput;
  L.push(`Streamed tokens (${t.runs} runs each, stream, max_tokens=2000, ignore_eos, alternating)`);
  L.push(table([
    ['target', 'tok/s (median)', 'decode tok/s (median)', 'TTFT ms (median)', 'total ms (median)', 'content chunks per run', 'tok/s per run'],
    ['direct', t.direct.tok_s_median, t.direct.decode_tok_s_median, t.direct.ttft_ms_median, t.direct.total_ms_median, t.direct.tokens.join(','), t.direct.tok_s_runs.join(',')],
    ['gateway', t.gateway.tok_s_median, t.gateway.decode_tok_s_median, t.gateway.ttft_ms_median, t.gateway.total_ms_median, t.gateway.tokens.join(','), t.gateway.tok_s_runs.join(',')],
  ]));
  L.push(`tok/s ratio gateway/direct: ${t.tok_s_ratio_gateway_over_direct}`);
  L.push(`token chunks incl. empty content: direct ${t.direct.chunks.join(',')} (${t.direct.chunk_s_median}/s median), gateway ${t.gateway.chunks.join(',')} (${t.gateway.chunk_s_median}/s median)`);
  L.push('');
  L.push(`connections opened: direct ${out.connections.direct}, gateway ${out.connections.gateway}; errors: direct ${out.errors.direct}, gateway ${out.errors.gateway}`);
  for (const e of out.error_samples) L.push(`  error: ${e}`);
  L.push(`setup: platform up ${out.timings.platform_up_ms} ms, deployment READY ${out.timings.deploy_ready_ms} ms after create`);
  const s = out.shutdown;
  L.push(`shutdown: platform exit ${JSON.stringify(s.platform_exit)} after ${s.platform_exit_ms} ms, replica exited: ${s.replica_exited}${s.forced.length ? '; ' + s.forced.join('; ') : ''}`);
  console.log(L.join('\n'));
}

// ---------------------------------------------------------------------------------

async function main() {
  const args = process.argv.slice(2);
  const asJson = args.includes('--json');
  const pos = args.filter((a) => a !== '--json');
  if (pos.length !== 2) {
    console.error('usage: node bench/gateway_bench.js <infera binary> <model.gguf> [--json]');
    process.exit(2);
  }
  const bin = path.resolve(pos[0]);
  const model = path.resolve(pos[1]);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'infera-gwbench-'));
  const log = [];
  let child = null, replicaPid = null, direct = null, gateway = null;
  const out = {
    binary: bin, model,
    machine: { nproc: os.availableParallelism ? os.availableParallelism() : os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', node: process.version },
    timings: {},
  };
  const progress = (m) => { if (!asJson) process.stderr.write(`# ${m}\n`); };

  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    if (direct) direct.agent.destroy();
    if (gateway) gateway.agent.destroy();
    if (child) out.shutdown = await stopPlatform(child, replicaPid);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => { cleanup().finally(() => process.exit(130)); });
  }

  try {
    let t0 = nowNs();
    const p = startPlatform(bin, dataDir, log);
    child = p.child;
    const port = await p.ready;
    out.timings.platform_up_ms = round(msSince(t0), 1);
    const base = `http://127.0.0.1:${port}`;
    progress(`platform pid ${child.pid} on ${base}`);

    execFileSync(bin, ['model', 'import', model, '--as', MODEL_NAME, '--models-dir', path.join(dataDir, 'models')], { stdio: ['ignore', 'pipe', 'pipe'] });

    const templates = await api(base, 'GET', '/api/jobs/templates');
    const list = Array.isArray(templates) ? templates : templates.templates;
    const tpl = list.find((x) => x.id === TEMPLATE_ID);
    if (!tpl) throw new Error(`template ${TEMPLATE_ID} not found`);

    t0 = nowNs();
    const dep = await api(base, 'POST', '/api/deployments/create', {
      market: 'local-cpu', strategy: 'SIMPLE', replicas: 1, timeout: 60, autostart: true, job_definition: tpl.job_definition,
    });
    const id = dep.id;
    progress(`deployment ${id} created`);
    let d = dep;
    while (d.health !== 'READY') {
      if (msSince(t0) > 120000) throw new Error(`deployment not READY after 120 s (status ${d.status}, health ${d.health})`);
      await sleep(100);
      d = await api(base, 'GET', `/api/deployments/${id}`);
    }
    out.timings.deploy_ready_ms = round(msSince(t0), 1);

    const logs = await api(base, 'GET', `/api/deployments/${id}/logs`);
    const entries = Array.isArray(logs) ? logs : logs.logs;
    let directPort = null;
    for (const e of entries) {
      const m = /Process (\d+) started; listening on 127\.0\.0\.1:(\d+)/.exec(e.message || '');
      if (m) { replicaPid = Number(m[1]); directPort = Number(m[2]); }
    }
    if (!directPort) throw new Error('no "Process <pid> started; listening on 127.0.0.1:<port>" line in the deployment logs');
    const gwUrl = d.endpoints && d.endpoints[0] && d.endpoints[0].url;
    if (!gwUrl) throw new Error('deployment has no endpoint URL');
    out.urls = { direct: `http://127.0.0.1:${directPort}/`, gateway: gwUrl };
    out.replica_pid = replicaPid;
    direct = makeTarget('direct', out.urls.direct);
    gateway = makeTarget('gateway', out.urls.gateway);
    progress(`replica pid ${replicaPid}, direct ${out.urls.direct}, gateway ${gwUrl}`);

    progress('latency: GET /v1/models');
    out.latency = {};
    out.latency.models = await latency(direct, gateway, 'GET /v1/models', (t) => request(t, 'GET', '/v1/models'));
    progress('latency: POST /v1/chat/completions max_tokens=1');
    out.latency.chat = await latency(direct, gateway, 'POST chat', (t) => request(t, 'POST', '/v1/chat/completions', CHAT_BODY));
    progress('throughput: streaming chat');
    out.throughput = await throughput(direct, gateway);

    out.connections = { direct: direct.connections, gateway: gateway.connections };
    out.errors = { direct: direct.errors, gateway: gateway.errors };
    out.error_samples = [...direct.errorSamples.map((e) => 'direct ' + e), ...gateway.errorSamples.map((e) => 'gateway ' + e)];
  } catch (e) {
    await cleanup();
    console.error(`gateway_bench: ${e.stack || e}`);
    console.error('--- platform output (tail) ---\n' + log.join('').slice(-4000));
    process.exit(1);
  }
  await cleanup();
  if (asJson) console.log(JSON.stringify(out));
  else printReport(out);
}

main();
