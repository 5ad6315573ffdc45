// HTTP-level test of the continuous-batching engine behind `infera serve` (paged KV cache, prefix caching,
// preemption), on loopback with raw fetch and SSE parsing.
// Usage: node tests/api/batching.test.js <infera binary> <model path>
// Each case runs on its own and reports ok/FAIL lines; exits non-zero on any failure. Random choices
// (prompt lengths, abort points) come from a seeded generator: the seed is printed, and
// INFERA_TEST_SEED=N replays a run.
'use strict';
const { spawn, execFileSync } = require('child_process');

const [bin, model] = process.argv.slice(2);
if (!bin || !model) {
  console.error('usage: node tests/api/batching.test.js <infera binary> <model path>');
  process.exit(2);
}

let failures = 0;
function check(cond, what, extra) {
  if (cond) { console.log(`ok   ${what}`); return; }
  failures++;
  console.log(`FAIL ${what}${extra !== undefined ? ': ' + JSON.stringify(extra).slice(0, 600) : ''}`);
}

const SEED = process.env.INFERA_TEST_SEED ? Number(process.env.INFERA_TEST_SEED) : (Date.now() % 1000000);
let rngState = SEED >>> 0;
function rand() {  // mulberry32
  rngState = (rngState + 0x6D2B79F5) >>> 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const randInt = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));  // inclusive
function shuffle(a) {
  for (let i = a.length - 1; i > 0; --i) { const j = randInt(0, i); [a[i], a[j]] = [a[j], a[i]]; }
  return a;
}
const WORDS = ('the of and to in is was for on that with as by at from his her they this which be or are an '
  + 'river mountain engine cache block token stream batch server request market garden window silver '
  + 'orange purple yellow violet quick brown lazy fox dog jumps over under after before while during '
  + 'north south east west spring summer autumn winter castle harbour forest desert island valley').split(' ');
function words(n, tag) {  // n seeded words, after a tag that keeps prompts of different cases apart
  const out = [tag];
  for (let i = 1; i < n; ++i) out.push(WORDS[randInt(0, WORDS.length - 1)]);
  return out.join(' ');
}

// Servers: port 0 (any free port), read from the startup log; then /health must answer.
const servers = [];
process.on('exit', () => { for (const s of servers) if (s.exitCode === null) s.kill('SIGKILL'); });
function startServer(extraArgs = []) {
  return new Promise((resolve, reject) => {
    const args = ['serve', '--model', model, '--served-model-name', 'tiny', '--port', '0', '--host', '127.0.0.1',
                  '--max-num-seqs', '4', '--max-num-batched-tokens', '64', ...extraArgs];
    const p = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    servers.push(p);
    let log = '';
    p.log = () => log;
    p.stderr.on('data', (d) => {
      log += d.toString();
      const m = log.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && !p.port) {
        p.port = Number(m[1]);
        (async () => {
          for (let i = 0; i < 100; ++i) {
            try { if ((await fetch(`http://127.0.0.1:${p.port}/health`)).status === 200) return resolve(p); } catch (_) {}
            await sleep(50);
          }
          reject(new Error(`/health never answered 200: ${log}`));
        })();
      }
    });
    p.on('exit', (code) => { if (!p.port) reject(new Error(`server exited ${code}: ${log}`)); });
  });
}
async function stopServer(p) {
  if (p.exitCode !== null) return;
  const exited = new Promise((r) => p.on('exit', r));
  p.kill('SIGTERM');
  await Promise.race([exited, sleep(10000)]);
  if (p.exitCode === null) p.kill('SIGKILL');
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const REQUEST_TIMEOUT_MS = 60000;  // a hung request fails its case instead of blocking the run
async function raw(port, method, urlPath, body, timeoutMs = REQUEST_TIMEOUT_MS) {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, {
    method, body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
    headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) {}
  return { status: res.status, text, json };
}
async function tokenCount(port, prompt) {
  const r = await raw(port, 'POST', '/tokenize', { prompt });
  if (r.status !== 200) throw new Error(`/tokenize ${r.status}: ${r.text}`);
  return r.json.tokens;
}
// Words after `tag` until the prompt is at least `n` tokens long (BOS included).
async function promptOfTokens(port, n, tag) {
  let text = tag;
  while ((await tokenCount(port, text)).length < n) text += ' ' + WORDS[randInt(0, WORDS.length - 1)];
  return text;
}

// Prometheus text -> { name: value } (labels dropped; this server has one label set per series).
async function metrics(port) {
  const r = await raw(port, 'GET', '/metrics', undefined, 10000);
  const m = {};
  for (const line of r.text.split('\n')) {
    const mm = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/);
    if (mm && !line.startsWith('#') && !mm[2]?.includes('le=')) m[mm[1]] = Number(mm[3]);
  }
  return m;
}
const IDLE_KEYS = ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc'];
async function waitIdle(port, ms = 5000) {
  const t0 = Date.now();
  let m;
  for (;;) {
    m = await metrics(port);
    if (IDLE_KEYS.every((k) => m[k] === 0)) return { idle: true, ms: Date.now() - t0, m };
    if (Date.now() - t0 > ms) return { idle: false, ms: Date.now() - t0, m };
    await sleep(50);
  }
}
const idleView = (m) => Object.fromEntries(IDLE_KEYS.map((k) => [k, m[k]]));

async function complete(port, body) {  // non-streaming /v1/completions, with token ids
  const r = await raw(port, 'POST', '/v1/completions', { model: 'tiny', return_token_ids: true, ...body });
  if (r.status !== 200 || !r.json) throw new Error(`/v1/completions ${r.status}: ${r.text.slice(0, 300)}`);
  const c = r.json.choices[0];
  return { text: c.text, ids: c.token_ids, finish: c.finish_reason, usage: r.json.usage };
}

// A streaming /v1/completions request, read chunk by chunk. opts.abortAfterMs / opts.abortAfterChunks /
// opts.abortOnHeaders drop the connection at that point (AbortController); opts.timeoutMs fails a hang.
async function streamCompletion(port, body, opts = {}) {
  const ctl = new AbortController();
  const r = { status: 0, text: '', ids: [], finish: null, usage: null, chunks: 0, done: false,
              aborted: false, chunksAtAbort: null, timedOut: false, error: null, body };
  let finished = false;
  const abort = () => {
    if (finished || r.aborted) return;
    r.aborted = true; r.chunksAtAbort = r.chunks; ctl.abort();
  };
  const timer = setTimeout(() => { if (!finished) { r.timedOut = true; ctl.abort(); } }, opts.timeoutMs || REQUEST_TIMEOUT_MS);
  const abortTimer = opts.abortAfterMs !== undefined ? setTimeout(abort, opts.abortAfterMs) : null;
  try {
    const res = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: ctl.signal,
      body: JSON.stringify({ model: 'tiny', stream: true, stream_options: { include_usage: true }, return_token_ids: true,
                             ...body }) });
    r.status = res.status;
    if (res.status !== 200) { r.error = await res.text(); return r; }
    if (opts.abortOnHeaders) { abort(); try { await res.body.cancel(); } catch (_) {} return r; }
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        for (const line of ev.split('\n')) {
          if (!line.startsWith('data: ')) continue;
          const payload = line.slice(6);
          if (payload === '[DONE]') { r.done = true; continue; }
          const j = JSON.parse(payload);
          if (j.usage) r.usage = j.usage;
          if (j.choices && j.choices.length) {
            const c = j.choices[0];
            r.text += c.text || '';
            if (c.token_ids) r.ids.push(...c.token_ids);
            if (c.finish_reason) r.finish = c.finish_reason;
            r.chunks++;
            if (opts.abortAfterChunks && r.chunks >= opts.abortAfterChunks && !c.finish_reason) {
              abort();
              try { await reader.cancel(); } catch (_) {}
              return r;
            }
          }
        }
      }
    }
  } catch (e) {
    if (!r.aborted || r.timedOut) r.error = String(e && e.cause ? e.cause : e);
  } finally {
    finished = true;
    clearTimeout(timer);
    if (abortTimer) clearTimeout(abortTimer);
  }
  return r;
}

async function runCase(name, fn) {
  console.log(`\n== ${name}`);
  const before = failures;
  const t0 = Date.now();
  try { await fn(); } catch (e) { check(false, `${name}: threw`, String(e && e.stack ? e.stack : e)); }
  console.log(`   (${((Date.now() - t0) / 1000).toFixed(1)} s${failures > before ? `, ${failures - before} failed` : ''})`);
}

// 1. 16 concurrent streams, half dropped at random points; the rest finish whole and nothing leaks.
async function disconnectsUnderLoad(srv) {
  const port = srv.port;
  const modes = shuffle(['delay', 'delay', 'headers', 'headers', 'mid', 'mid', 'mid', 'mid',
                         'none', 'none', 'none', 'none', 'none', 'none', 'none', 'none']);
  const reqs = modes.map((mode, i) => {
    const maxTokens = randInt(20, 200);
    const body = { prompt: words(randInt(2, 100), `case1-${i}`), max_tokens: maxTokens, temperature: 0,
                   ignore_eos: true, request_id: `case1-${SEED}-${i}` };
    const opts = mode === 'delay' ? { abortAfterMs: randInt(0, 15) }
      : mode === 'headers' ? { abortOnHeaders: true }
      : mode === 'mid' ? { abortAfterChunks: randInt(1, Math.floor(maxTokens * 0.8)) } : {};
    return { mode, body, opts };
  });
  for (const q of reqs) {  // prompt + max_tokens must fit the 512-token context
    const n = (await tokenCount(port, q.body.prompt)).length;
    if (n + q.body.max_tokens > 512) q.body.max_tokens = 512 - n;
  }
  console.log(`   requests: ${reqs.map((q) => `${q.mode}:${q.body.prompt.split(' ').length}w/${q.body.max_tokens}t` +
    (q.opts.abortAfterMs !== undefined ? `@${q.opts.abortAfterMs}ms` : q.opts.abortAfterChunks ? `@${q.opts.abortAfterChunks}ch` : '')).join(' ')}`);
  const results = await Promise.all(reqs.map((q) => streamCompletion(port, q.body, q.opts)));

  let early = 0, mid = 0, completed = 0;
  const bad = [];
  for (const [i, r] of results.entries()) {
    if (r.timedOut) { bad.push([i, reqs[i].mode, 'timed out', r.chunks]); continue; }
    if (r.error) { bad.push([i, reqs[i].mode, 'error', r.status, r.error]); continue; }
    if (r.aborted) { if (r.chunksAtAbort === 0) early++; else mid++; continue; }
    completed++;
    const mt = r.body.max_tokens;
    if (!(r.status === 200 && r.done && r.finish === 'length' && r.usage && r.usage.completion_tokens === mt &&
          r.ids.length === mt)) {
      bad.push([i, reqs[i].mode, { max_tokens: mt, status: r.status, done: r.done, finish: r.finish, usage: r.usage,
                                   ids: r.ids.length }]);
    }
  }
  console.log(`   aborted before the first chunk: ${early}, mid-stream: ${mid}, completed: ${completed}`);
  check(bad.length === 0, 'every non-aborted stream ends with finish_reason "length", [DONE] and max_tokens tokens ' +
        '(usage and token_ids); no timeouts or errors', bad);
  check(early >= 1 && mid >= 1 && completed >= 8, 'the run exercised aborts before the first chunk and mid-stream',
        { early, mid, completed });

  const idle = await waitIdle(port, 5000);
  check(idle.idle, `metrics back to idle after the disconnects (running, waiting, kv_cache_usage_perc = 0; ${idle.ms} ms)`,
        idleView(idle.m));
  check(srv.exitCode === null, 'server still running');

  // The server logs each request it started answering when it ends: the dropped ones as aborted, the
  // others as ok. A request dropped before its response headers may never have started (no line).
  const logged = (i) => srv.log().match(new RegExp(`cmpl-case1-${SEED}-${i} prompt_tokens=\\d+ completion_tokens=(\\d+) .*status=(\\w+)`));
  const mustLog = (r) => r.status === 200;
  for (let k = 0; k < 100 && !results.every((r, i) => !mustLog(r) || logged(i)); ++k) await sleep(50);
  const statusBad = [];
  const cut = [];
  let loggedAborted = 0;
  for (const [i, r] of results.entries()) {
    const l = logged(i);
    const want = r.aborted ? 'aborted' : 'ok';
    if (!l && !mustLog(r)) { cut.push(`-/${r.body.max_tokens}`); continue; }
    // A drop that reaches the server after it wrote the last token (the tiny model streams a whole
    // answer in milliseconds) ends the request as ok with every token: a race, not a leak.
    const finishedFirst = l && r.aborted && l[2] === 'ok' && Number(l[1]) === r.body.max_tokens;
    if (!l || (l[2] !== want && !finishedFirst)) statusBad.push([i, reqs[i].mode, want, l ? l[0] : 'no log line']);
    else if (r.aborted) cut.push(`${l[1]}/${r.body.max_tokens}${finishedFirst ? ' (finished before the drop)' : ''}`);
    if (l && r.aborted && l[2] === 'aborted') ++loggedAborted;
  }
  console.log(`   tokens the aborted requests generated (of max_tokens; - never started): ${cut.join(' ')}`);
  check(statusBad.length === 0, 'server log: every dropped request that got its headers ended as status=aborted ' +
        '(or ok with every token, where the drop came after the last one), every other as ok', statusBad);
  check(loggedAborted >= 1, 'server log: at least one dropped request ended as status=aborted', { loggedAborted });

  // The completed streams are the ones each request gives alone (greedy): aborts next to them changed nothing.
  const diffs = [];
  for (const [i, r] of results.entries()) {
    if (r.aborted || r.error || r.timedOut) continue;
    const alone = await streamCompletion(port, r.body);
    if (alone.text !== r.text || alone.ids.join() !== r.ids.join()) diffs.push([i, { concurrent: r.text, alone: alone.text }]);
  }
  check(diffs.length === 0, 'completed streams equal the same requests sent alone', diffs);
}

// 2. Greedy outputs do not depend on what else is in the batch.
async function batchInvariance(srv) {
  const port = srv.port;
  const prompts = [3, 12, 30, 55, 90, 130].map((n, i) => words(n, `case2-${i}`));
  const req = (prompt, extra = {}) => ({ prompt, max_tokens: 24, temperature: 0, ignore_eos: true, ...extra });
  const alone = [];
  for (const p of prompts) alone.push(await complete(port, req(p)));
  check(alone.every((a) => a.ids.length === 24 && a.finish === 'length'), 'sequential: 24 tokens each');
  const same = (got) => got.map((g, i) => (g.text === alone[i].text && g.ids.join() === alone[i].ids.join() ? null
    : { i, alone: alone[i].text, concurrent: g.text })).filter(Boolean);
  const conc = await Promise.all(prompts.map((p) => complete(port, req(p))));
  check(same(conc).length === 0, '6 concurrent requests give the sequential texts (prompt prefixes cached)', same(conc));
  // A fresh salt: no cached prefixes, so the prompts are prefilled in shared, chunked steps too.
  const salted = await Promise.all(prompts.map((p) => complete(port, req(p, { cache_salt: `case2-${SEED}` }))));
  check(same(salted).length === 0, '6 concurrent requests with a fresh cache_salt (batched prefill) give the sequential texts',
        same(salted));
}

// 3. Prefix caching: a shared ~280-token prefix is reused (metrics), without changing the output.
async function prefixCaching(srv) {
  const port = srv.port;
  const prefix = await promptOfTokens(port, 280, `case3-${SEED}`);
  const p1 = prefix + '. ' + words(12, 'alpha');
  const p2 = prefix + '. ' + words(12, 'zulu');
  const [t1, t2] = [await tokenCount(port, p1), await tokenCount(port, p2)];
  let common = 0;
  while (common < t1.length && common < t2.length && t1[common] === t2[common]) ++common;
  const expectHits = Math.floor(Math.min(common, t2.length - 1) / 16) * 16;
  console.log(`   p1 ${t1.length} tokens, p2 ${t2.length} tokens, ${common} in common -> ${expectHits} cached tokens expected`);
  check(t1.length >= 290 && common >= 272, 'prompts of ~300 tokens sharing >= 272 tokens', { p1: t1.length, common });

  const req = (prompt, extra = {}) => ({ prompt, max_tokens: 16, temperature: 0, ignore_eos: true, ...extra });
  const m0 = await metrics(port);
  await complete(port, req(p1));
  const m1 = await metrics(port);
  const out2 = await complete(port, req(p2));
  const m2 = await metrics(port);
  const hits = m2['vllm:prefix_cache_hits_total'] - m1['vllm:prefix_cache_hits_total'];
  const queries = m2['vllm:prefix_cache_queries_total'] - m1['vllm:prefix_cache_queries_total'];
  console.log(`   first request: +${m1['vllm:prefix_cache_hits_total'] - m0['vllm:prefix_cache_hits_total']} hits, ` +
              `second: +${hits} hits / +${queries} queried`);
  check(hits >= 256, 'second request: prefix_cache_hits_total grows by >= 256 tokens', hits);
  check(hits === expectHits, 'second request: hits = the full 16-token blocks in common', { hits, expectHits });
  check(queries >= hits && queries <= t2.length, 'second request: prefix_cache_queries_total grows by its prompt', { queries, hits });

  // Another tenant's salt: no hit on the unsalted blocks, same output; its own blocks are then reused.
  const salt = `tenant-${SEED}`;
  const s1 = await complete(port, req(p2, { cache_salt: salt }));
  const m3 = await metrics(port);
  check(m3['vllm:prefix_cache_hits_total'] === m2['vllm:prefix_cache_hits_total'],
        'a different cache_salt does not hit the cached prefix', m3['vllm:prefix_cache_hits_total'] - m2['vllm:prefix_cache_hits_total']);
  check(s1.text === out2.text && s1.ids.join() === out2.ids.join(), 'salted (uncached) output = cached output',
        { cached: out2.text, salted: s1.text });
  const s2 = await complete(port, req(p2, { cache_salt: salt }));
  const m4 = await metrics(port);
  const saltHits = m4['vllm:prefix_cache_hits_total'] - m3['vllm:prefix_cache_hits_total'];
  check(saltHits === Math.floor((t2.length - 1) / 16) * 16, 'the same cache_salt again reuses its own blocks',
        { saltHits, expect: Math.floor((t2.length - 1) / 16) * 16 });
  check(s2.text === out2.text, 'salted cached output = cached output');

  // A fresh server without prefix caching gives the same output and no hits.
  const plain = await startServer(['--no-enable-prefix-caching']);
  try {
    await complete(plain.port, req(p1));
    const ref = await complete(plain.port, req(p2));
    const pm = await metrics(plain.port);
    check(ref.text === out2.text && ref.ids.join() === out2.ids.join(),
          'second prompt: output with prefix caching = output of a --no-enable-prefix-caching server',
          { cached: out2.text, uncached: ref.text, cachedIds: out2.ids, uncachedIds: ref.ids });
    check(pm['vllm:prefix_cache_hits_total'] === 0, '--no-enable-prefix-caching: no hits', pm['vllm:prefix_cache_hits_total']);
  } finally {
    await stopServer(plain);
  }
}

// 4. cache_salt must be a non-empty string.
async function cacheSaltValidation(srv) {
  const port = srv.port;
  const bodies = {
    '/v1/completions': { model: 'tiny', prompt: 'hello', max_tokens: 2, ignore_eos: true },
    '/v1/chat/completions': { model: 'tiny', messages: [{ role: 'user', content: 'hello' }], max_tokens: 2, ignore_eos: true },
  };
  for (const [url, body] of Object.entries(bodies)) {
    const num = await raw(port, 'POST', url, { ...body, cache_salt: 5 });
    check(num.status === 400 && num.json && num.json.error && num.json.error.code === 400,
          `${url}: cache_salt 5 -> 400`, [num.status, num.text]);
    const arr = await raw(port, 'POST', url, { ...body, cache_salt: ['a'] });
    check(arr.status === 400, `${url}: cache_salt ["a"] -> 400`, [arr.status, arr.text]);
    const empty = await raw(port, 'POST', url, { ...body, cache_salt: '' });
    check(empty.status === 400 && empty.json && empty.json.error && /cache_salt/.test(empty.json.error.message) &&
          /non-empty/.test(empty.json.error.message), `${url}: cache_salt "" -> 400 with a message`, [empty.status, empty.text]);
    const str = await raw(port, 'POST', url, { ...body, cache_salt: 'tenant-a' });
    check(str.status === 200 && str.json && str.json.usage.completion_tokens === 2, `${url}: cache_salt "tenant-a" -> 200`,
          [str.status, str.text]);
    const nul = await raw(port, 'POST', url, { ...body, cache_salt: null });
    check(nul.status === 200, `${url}: cache_salt null -> 200 (absent)`, [nul.status, nul.text]);
  }
}

// 5. A KV cache of just over one 256-token sequence: 4 concurrent 220-token requests must preempt each
// other, and still give the outputs they give alone.
async function preemption() {
  const info = execFileSync(bin, ['inspect', model]).toString();
  const meta = (k) => Number((info.match(new RegExp(`\\.${k.replace(/\./g, '\\.')}\\s+(\\d+)`)) || [])[1]);
  const nLayer = meta('block_count'), nEmbd = meta('embedding_length');
  const nHead = meta('attention.head_count'), nHeadKv = meta('attention.head_count_kv');
  const bytesPerToken = 2 * nLayer * (nEmbd / nHead) * nHeadKv * 4;  // K and V, f32
  const blocks = 18;  // 16 hold one max-model-len (256) sequence
  const gib = ((blocks + 1) * 16 * bytesPerToken) / 2 ** 30;
  console.log(`   ${nLayer} layers, kv dim ${(nEmbd / nHead) * nHeadKv}: ${bytesPerToken} B/token -> --kv-cache-gb ${gib.toPrecision(6)}`);
  const srv = await startServer(['--max-model-len', '256', '--block-size', '16', '--kv-cache-gb', gib.toPrecision(6)]);
  try {
    const kv = srv.log().match(/KV cache: (\d+) blocks, (\d+) tokens/);
    console.log(`   ${kv ? kv[0] : 'no "KV cache:" line in the log'}`);
    check(kv && Number(kv[1]) >= 16 && Number(kv[1]) <= 20, 'KV cache of 16..20 blocks (just over one 256-token sequence)',
          srv.log());
    const port = srv.port;
    const prompts = [];
    for (let i = 0; i < 4; ++i) prompts.push(await promptOfTokens(port, 100, `case5-${i}`));
    const req = (prompt, extra = {}) => ({ prompt, max_tokens: 120, temperature: 0, ignore_eos: true, ...extra });
    const conc = await Promise.all(prompts.map((p) => complete(port, req(p))));
    const m = await metrics(port);
    console.log(`   preemptions: ${m['vllm:num_preemptions_total']}`);
    check(m['vllm:num_preemptions_total'] > 0, 'vllm:num_preemptions_total > 0', m['vllm:num_preemptions_total']);
    check(conc.every((c) => c.ids.length === 120 && c.finish === 'length'), 'concurrent: 120 tokens each',
          conc.map((c) => [c.ids.length, c.finish]));
    // References one at a time, salted so that none of the concurrent run's cached blocks is reused.
    const diffs = [];
    for (const [i, p] of prompts.entries()) {
      const alone = await complete(port, req(p, { cache_salt: `alone-${i}` }));
      if (alone.text !== conc[i].text || alone.ids.join() !== conc[i].ids.join()) {
        let at = 0;
        while (alone.ids[at] === conc[i].ids[at]) ++at;
        diffs.push({ i, firstDifferentToken: at, alone: alone.text, concurrent: conc[i].text });
      }
    }
    check(diffs.length === 0, 'preempted outputs = outputs alone', diffs);
    const idle = await waitIdle(port, 5000);
    check(idle.idle, 'metrics back to idle', idleView(idle.m));
  } finally {
    await stopServer(srv);
  }
}

async function main() {
  console.log(`seed ${SEED} (INFERA_TEST_SEED=${SEED} replays it)`);
  const srv = await startServer();
  try {
    await runCase('1. disconnects under load', () => disconnectsUnderLoad(srv));
    await runCase('2. batch invariance through HTTP', () => batchInvariance(srv));
    await runCase('3. prefix caching visible in metrics', () => prefixCaching(srv));
    await runCase('4. cache_salt validation', () => cacheSaltValidation(srv));
  } finally {
    await stopServer(srv);
  }
  check(srv.exitCode === 0, 'main server exited 0 on SIGTERM', srv.exitCode);
  await runCase('5. preemption under a tiny KV cache', () => preemption());

  console.log(failures ? `\n${failures} FAILED (seed ${SEED})` : '\nall passed');
  process.exit(failures ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
