// End-to-end test of `infera serve` with the official openai npm client and raw HTTP, on loopback.
// Usage: node tests/api/openai_api.test.js <infera binary> <model path>
// Starts the server on a free port, runs every check, stops it; exits non-zero on any failure.
'use strict';
const { execFileSync } = require('child_process');
const net = require('net');
const path = require('path');
const OpenAI = require(path.join(__dirname, '..', 'oracles', 'node_modules', 'openai')).default;

const [bin, model] = process.argv.slice(2);
const harness = require('./serve_harness');
const { check, raw } = harness;
const startServer = (extraArgs = []) => harness.startServer(bin, model, extraArgs);

const TUTORIAL = {
  messages: [{ role: 'system', content: 'You are a helpful assistant.' },
             { role: 'user', content: 'Give me a short fun fact about the roman empire' }],
  max_tokens: 40, temperature: 0.7 };

// Waits up to 10 s for the server log to show `re` (a log line follows the event it reports).
async function logShows(srv, re) {
  for (const end = Date.now() + 10_000; Date.now() < end;) {
    if (re.test(srv.log())) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return re.test(srv.log());
}

async function main() {
  const srv = await startServer();
  const port = srv.port;
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused' });
  try {
    // Models.
    const models = await client.models.list();
    check(models.data.length === 1 && models.data[0].id === 'tiny' && models.data[0].max_model_len === 256,
          'models.list', models.data);

    // Chat, non-streaming vs streaming with the same seed.
    const req = { model: 'tiny', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 24, seed: 7,
                  temperature: 0.8 };
    const full = await client.chat.completions.create(req);
    const content = full.choices[0].message.content;
    check(typeof content === 'string' && content.length > 0, 'chat non-streaming content', full);
    check(/^chatcmpl-[0-9a-f]{32}$/.test(full.id), 'chat id format', full.id);
    const tok = await raw(port, 'POST', '/tokenize', JSON.stringify({ messages: req.messages }));
    check(full.usage.prompt_tokens === tok.json.count, 'usage.prompt_tokens = templated prompt length',
          [full.usage, tok.json.count]);
    check(full.usage.total_tokens === full.usage.prompt_tokens + full.usage.completion_tokens, 'usage sums');
    const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
    let streamed = '', finish = null, usage = null, first = true, roleOk = false;
    for await (const chunk of stream) {
      if (first) { roleOk = chunk.choices[0] && chunk.choices[0].delta.role === 'assistant'; first = false; }
      if (chunk.choices.length) {
        streamed += chunk.choices[0].delta.content || '';
        if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    check(roleOk, 'stream starts with the role chunk');
    check(streamed === content, 'streamed deltas == non-streaming content (same seed)', [streamed, content]);
    check(finish === full.choices[0].finish_reason, 'stream finish_reason', finish);
    check(usage && usage.completion_tokens === full.usage.completion_tokens, 'stream usage chunk', usage);

    // Completions.
    const comp = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 5, temperature: 0 });
    check(comp.object === 'text_completion' && comp.choices[0].finish_reason === 'length' &&
          comp.usage.completion_tokens === 5, 'completions', comp);
    const comp2 = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 5, temperature: 0 });
    check(comp2.choices[0].text === comp.choices[0].text, 'greedy completions are deterministic');

    // The tutorial's request body with curl, as written (only the URL changed).
    const out = execFileSync('curl', ['-s', `http://127.0.0.1:${port}/v1/chat/completions`, '-H',
                                      'Content-Type: application/json', '-d', JSON.stringify(TUTORIAL)]).toString();
    const r = JSON.parse(out);
    check(JSON.stringify(Object.keys(r)) === JSON.stringify(['id', 'object', 'created', 'model', 'choices',
      'service_tier', 'system_fingerprint', 'usage', 'prompt_logprobs', 'prompt_token_ids', 'kv_transfer_params']),
      'tutorial response keys in order', Object.keys(r));
    check(JSON.stringify(Object.keys(r.choices[0])) === JSON.stringify(['index', 'message', 'logprobs', 'finish_reason',
      'stop_reason', 'token_ids']), 'choice keys in order', Object.keys(r.choices[0]));
    check(JSON.stringify(Object.keys(r.choices[0].message)) === JSON.stringify(['role', 'content', 'refusal',
      'annotations', 'audio', 'function_call', 'tool_calls', 'reasoning_content']), 'message keys in order');
    check(JSON.stringify(Object.keys(r.usage)) === JSON.stringify(['prompt_tokens', 'total_tokens', 'completion_tokens',
      'prompt_tokens_details']), 'usage keys in order');
    check(typeof r.created === 'number' && r.model === 'tiny' && r.object === 'chat.completion' &&
          Array.isArray(r.choices[0].message.tool_calls) && r.choices[0].message.refusal === null, 'tutorial value types');

    // Stop strings are never emitted, also when split across tokens.
    const base = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 12, temperature: 0 });
    const text = base.choices[0].text;
    const at = text.search(/[A-Za-z]{2}/);  // a stop string of two ASCII letters the model will write
    check(at >= 0, 'greedy text has two ASCII letters to stop on', text);
    if (at >= 0) {
      const stopStr = text.slice(at, at + 2);
      const cut = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 12, temperature: 0,
                                                    stop: [stopStr] });
      check(cut.choices[0].text === text.slice(0, text.indexOf(stopStr)) && cut.choices[0].finish_reason === 'stop' &&
            cut.choices[0].stop_reason === stopStr, 'stop string cut, not emitted', [text, stopStr, cut.choices[0]]);
      const s = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 12, temperature: 0,
                                                  stop: [stopStr], stream: true });
      let st = '';
      for await (const ch of s) st += ch.choices[0] ? ch.choices[0].text : '';
      check(st === cut.choices[0].text, 'stop string in a stream', [st, cut.choices[0].text]);
    }

    // Bad input: each gets its status and error JSON, and the server keeps serving.
    const bad = [
      ['non-JSON body', 'POST', '/v1/chat/completions', '{not json', 400],
      ['missing messages', 'POST', '/v1/chat/completions', '{}', 400],
      ['messages not a list', 'POST', '/v1/chat/completions', '{"messages": "hi"}', 400],
      ['unknown role', 'POST', '/v1/chat/completions', '{"messages":[{"role":"wizard","content":"x"}]}', 400],
      ['temperature -1', 'POST', '/v1/chat/completions', '{"messages":[{"role":"user","content":"x"}],"temperature":-1}', 400,
       'temperature must be non-negative, got -1.0.'],
      ['temperature "hot"', 'POST', '/v1/chat/completions', '{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}', 400],
      ['max_tokens 0', 'POST', '/v1/chat/completions', '{"messages":[{"role":"user","content":"x"}],"max_tokens":0}', 400,
       'max_tokens must be at least 1, got 0.'],
      ['max_tokens -5', 'POST', '/v1/chat/completions', '{"messages":[{"role":"user","content":"x"}],"max_tokens":-5}', 400],
      ['max_tokens 1e9', 'POST', '/v1/chat/completions', '{"messages":[{"role":"user","content":"x"}],"max_tokens":1000000000}', 400,
       "'max_tokens' or 'max_completion_tokens' is too large: 1000000000."],
      ['prompt too long', 'POST', '/v1/chat/completions', JSON.stringify({ messages: [{ role: 'user', content: 'word '.repeat(400) }] }), 400,
       "This model's maximum context length is 256 tokens."],
      ['n 0', 'POST', '/v1/chat/completions', '{"messages":[{"role":"user","content":"x"}],"n":0}', 400, 'n must be at least 1, got 0.'],
      ['top_p 2', 'POST', '/v1/chat/completions', '{"messages":[{"role":"user","content":"x"}],"top_p":2}', 400, 'top_p must be in (0, 1], got 2.0.'],
      ['unknown model', 'POST', '/v1/chat/completions', '{"model":"gpt-4","messages":[{"role":"user","content":"x"}]}', 404,
       'The model `gpt-4` does not exist.'],
      ['empty stop string', 'POST', '/v1/completions', '{"prompt":"x","stop":[""]}', 400, 'stop cannot contain an empty string.'],
      ['add_generation_prompt of the wrong type', 'POST', '/v1/chat/completions', '{"messages":[{"role":"user","content":"x"}],"add_generation_prompt":"yes"}', 400],
      ['content of the wrong type', 'POST', '/v1/chat/completions', '{"messages":[{"role":"user","content":5}]}', 400],
      ['stream_options without stream', 'POST', '/v1/completions', '{"prompt":"x","stream_options":{}}', 400],
      ['unknown route', 'GET', '/v1/nothing', undefined, 404],
    ];
    for (const [what, method, url, body, status, msg] of bad) {
      const res = await raw(port, method, url, body);
      const shaped = res.json && res.json.error && res.json.error.code === status && typeof res.json.error.message === 'string';
      check(res.status === status && shaped && (!msg || res.json.error.message.includes(msg)), `bad input: ${what}`,
            [res.status, res.text]);
    }
    const wrongType = await raw(port, 'POST', '/v1/chat/completions', '{"messages":[]}', { 'content-type': 'text/plain' });
    check(wrongType.status === 400, 'bad input: wrong content type', wrongType.text);
    const invalidUtf8 = await fetch(`http://127.0.0.1:${port}/v1/completions`, { method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.concat([Buffer.from('{"prompt":"ok '), Buffer.from([0xff, 0xfe]), Buffer.from('","max_tokens":2}')]) });
    const invalidBody = await invalidUtf8.json();
    check(invalidUtf8.status === 400 && /UTF-8/.test(invalidBody.error.message), 'bad input: invalid UTF-8 in content',
          invalidBody);
    const stops = Array.from({ length: 100 }, (_, i) => `s${i}`);
    const manyStops = await raw(port, 'POST', '/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: 2, stop: stops }));
    check(manyStops.status === 200, 'a stop list of 100 strings', manyStops.text);
    // A 20 MB body: refused from its Content-Length, before the body is read.
    const bigReply = await new Promise((resolve) => {
      let got = '';
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${20 << 20}\r\n\r\n`);
        sock.write('{"messages": "' + 'a'.repeat(1 << 20));
      });
      sock.on('data', (d) => { got += d.toString(); });
      sock.on('error', () => {});
      sock.on('close', () => resolve(got));
      setTimeout(() => { sock.destroy(); resolve(got); }, 5000);
    });
    check(/^HTTP\/1\.1 413/.test(bigReply) && bigReply.includes('"code":413'), 'bad input: 20 MB body is 413', bigReply.slice(0, 200));

    // Random field values of every JSON type for every parameter: always a JSON answer (2xx or 4xx/501),
    // never a crash.
    const fields = ['model', 'messages', 'prompt', 'temperature', 'top_p', 'top_k', 'min_p', 'n', 'seed', 'stop',
      'stop_token_ids', 'max_tokens', 'max_completion_tokens', 'min_tokens', 'stream', 'stream_options', 'logprobs',
      'top_logprobs', 'logit_bias', 'ignore_eos', 'echo', 'add_generation_prompt', 'continue_final_message',
      'chat_template_kwargs', 'tools', 'tool_choice', 'return_token_ids', 'skip_special_tokens', 'presence_penalty',
      'frequency_penalty', 'repetition_penalty', 'allowed_token_ids', 'truncate_prompt_tokens', 'include_reasoning',
      'add_special_tokens', 'request_id', 'best_of', 'priority', 'suffix'];
    const values = [null, true, false, 0, -1, 1, 2.5, 1e300, -1e300, '', 'x', [], [1, 2], ['a'], [''], {}, { a: 1 },
      [{ role: 'user', content: 'hi' }], [{ role: 'user' }], [{ role: 'user', content: null }], { include_usage: 'y' }];
    let rnd = 12345;
    const pick = (arr) => { rnd = (rnd * 1103515245 + 12345) & 0x7fffffff; return arr[rnd % arr.length]; };
    let fuzzOk = true;
    for (let k = 0; k < 300 && fuzzOk; ++k) {
      const body = { messages: [{ role: 'user', content: 'hi' }], prompt: 'hi', max_tokens: 2 };
      for (let f = 0; f < 3; ++f) body[pick(fields)] = pick(values);
      const url = k % 2 ? '/v1/completions' : '/v1/chat/completions';
      let res;
      try { res = await raw(port, 'POST', url, JSON.stringify(body)); } catch (e) { res = { status: 0, text: String(e) }; }
      // `stream` converts as pydantic's lax mode does (1, "true", "yes" ... stream too): a stream must end with [DONE].
      const sse = (res.headers && (res.headers.get('content-type') || '').startsWith('text/event-stream'));
      const good = (res.status === 200 && (sse ? res.text.endsWith('data: [DONE]\n\n') : res.json)) ||
                   ([400, 404, 501].includes(res.status) && res.json && res.json.error);
      if (!good) { fuzzOk = false; check(false, 'random parameters', [url, body, res.status, res.text.slice(0, 200)]); }
    }
    check(fuzzOk, '300 requests with random parameter types: JSON answers, server alive');

    // A client that disconnects mid-stream is cancelled; the next request is served normally.
    await new Promise((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => {
        const body = JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 200, stream: true, ignore_eos: true });
        sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      });
      sock.once('data', () => { sock.destroy(); setTimeout(resolve, 300); });
    });
    const after = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 3, temperature: 0 });
    check(after.choices[0].finish_reason === 'length', 'served after a client disconnected mid-stream');
    check(await logShows(srv, /status=aborted/), 'the disconnected request was cancelled (logged as aborted)');

    // A slow client holding a half-sent request does not block others, and is dropped after the
    // request timeout (--request-timeout 2 here).
    const slowClosed = new Promise((resolve) => {
      const t0 = Date.now();
      const slow = net.connect(port, '127.0.0.1', () => slow.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\n'));
      const drip = setInterval(() => slow.write('X-Slow: 1\r\n'), 300);
      slow.on('error', () => {});
      slow.on('close', () => { clearInterval(drip); resolve(Date.now() - t0); });
      setTimeout(() => { clearInterval(drip); slow.destroy(); resolve(-1); }, 8000);
    });
    const during = await raw(port, 'GET', '/health');
    check(during.status === 200, 'served while a slow-loris connection is open');
    const closedAfter = await slowClosed;
    check(closedAfter > 1500 && closedAfter < 5000, 'slow-loris connection dropped after the request timeout', closedAfter);

    // Tools: the template gets them; choosing tools needs a tool parser (as vLLM without one).
    const tc = await raw(port, 'POST', '/v1/chat/completions', JSON.stringify({ messages: [{ role: 'user', content: 'x' }], tool_choice: 'required' }));
    check(tc.status === 400 && tc.json.error.message === 'When using `tool_choice`, `tools` must be set.', 'tool_choice without tools', tc.text);
    // "none" needs no tools (vLLM's check_tool_usage returns early for it).
    const tcNone = await raw(port, 'POST', '/v1/chat/completions', JSON.stringify({ messages: [{ role: 'user', content: 'x' }], tool_choice: 'none', max_tokens: 2 }));
    check(tcNone.status === 200, 'tool_choice none without tools', tcNone.text);

    // Reference outputs for the reasoning-parser checks below (parser off: all text in content).
    global.reasoningRefs = [];
    // Seeds and biases on </think> (id 1030 in the tiny vocabulary) that give no tag, one tag
    // mid-text, and runs of tags.
    for (const [seed, bias, pen] of [[11, 0, 0], [2, 8, 2], [3, 10, 2], [11, 12, 0], [11, 20, 0]]) {
      const body = { messages: [{ role: 'user', content: 'Think about it' }], max_tokens: 16, seed, temperature: 1.0,
                     logit_bias: bias ? { 1030: bias } : undefined, presence_penalty: pen, frequency_penalty: pen,
                     repetition_penalty: pen || 1 };
      const rr = await raw(port, 'POST', '/v1/chat/completions', JSON.stringify(body));
      global.reasoningRefs.push([body, rr.json.choices[0].message.content, rr.json.choices[0].finish_reason]);
    }

    // Log-probs (greedy: the sampled token is the top alternative).
    const lpChat = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 3 });
    const ents = lpChat.choices[0].logprobs.content;
    check(ents.length === 4 && ents.every((e) => e.logprob <= 0 && e.top_logprobs.length === 3 &&
          e.top_logprobs[0].token === e.token && e.top_logprobs[0].logprob === e.logprob &&
          e.top_logprobs.reduce((a, t) => a + Math.exp(t.logprob), 0) <= 1.0001 &&
          Buffer.from(e.token).equals(Buffer.from(e.bytes))), 'chat logprobs', ents);
    check(ents.map((e) => e.token).join('') === lpChat.choices[0].message.content, 'logprob tokens spell the content');
    const lpComp = await client.completions.create({ model: 'tiny', prompt: 'Hi', max_tokens: 3, temperature: 0, logprobs: 2 });
    const L = lpComp.choices[0].logprobs;
    check(L.tokens.length === 3 && L.token_logprobs.length === 3 && L.top_logprobs.length === 3 && L.text_offset[0] === 0 &&
          Object.keys(L.top_logprobs[0]).length >= 2, 'completions logprobs', L);
    const badTop = await raw(port, 'POST', '/v1/chat/completions', JSON.stringify({ messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }));
    check(badTop.status === 400 && badTop.json.error.message.includes('`logprobs` must be set to true'), 'top_logprobs without logprobs', badTop.text);

    // allowed_token_ids restricts sampling; truncate_prompt_tokens keeps the prompt's tail; unsupported
    // fields are refused, not ignored.
    const allowed = await raw(port, 'POST', '/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: 6, temperature: 1,
      allowed_token_ids: [40, 41], return_token_ids: true }));
    check(allowed.status === 200 && allowed.json.choices[0].token_ids.every((t) => t === 40 || t === 41), 'allowed_token_ids', allowed.text);
    const trunc = await raw(port, 'POST', '/v1/completions', JSON.stringify({ prompt: 'word '.repeat(100), max_tokens: 2,
      truncate_prompt_tokens: 10 }));
    check(trunc.status === 200 && trunc.json.usage.prompt_tokens === 10, 'truncate_prompt_tokens', trunc.text);
    const unsupported = await raw(port, 'POST', '/v1/completions', JSON.stringify({ prompt: 'x', guided_grammar: 'root ::= "a"' }));
    check(unsupported.status === 501 && unsupported.json.error, 'unsupported field refused (501)', unsupported.text);

    // n > 1: n choices with their own index; usage sums the completions.
    const multi = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 3, temperature: 1.0, n: 3, seed: 5 });
    check(multi.choices.length === 3 && multi.choices.map((c) => c.index).join() === '0,1,2' &&
          multi.usage.completion_tokens === 9, 'n = 3', multi.choices);
    const greedyN = await raw(port, 'POST', '/v1/chat/completions', JSON.stringify({ messages: [{ role: 'user', content: 'x' }], n: 2, temperature: 0 }));
    check(greedyN.status === 400 && greedyN.json.error.message === 'n must be 1 when using greedy sampling, got 2.', 'n > 1 greedy refused');

    // A non-streaming client that goes away is cancelled too.
    await new Promise((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => {
        // n = 16 long completions (~1 s of work even on the fast kernels) so the disconnect lands mid-request.
        const body = JSON.stringify({ prompt: 'x', max_tokens: 230, ignore_eos: true, n: 16, temperature: 1,
                                      request_id: 'gone-nonstream' });
        sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        setTimeout(() => { sock.destroy(); setTimeout(resolve, 500); }, 20);
      });
    });
    check(await logShows(srv, /cmpl-gone-nonstream .*status=aborted/), 'non-streaming request cancelled on disconnect',
          srv.log().split('\n').filter((l) => l.includes('gone-nonstream')));

    // Other endpoints.
    check((await raw(port, 'GET', '/version')).json.version === '0.10.2', '/version');
    const detok = await raw(port, 'POST', '/detokenize', JSON.stringify({ tokens: tok.json.tokens }));
    check(detok.status === 200 && typeof detok.json.prompt === 'string', '/detokenize', detok.text);
    const metrics = await raw(port, 'GET', '/metrics');
    const promOk = metrics.text.split('\n').filter((l) => l && !l.startsWith('#'))
      .every((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+$/.test(l) || /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (nan|inf)$/.test(l));
    check(metrics.status === 200 && promOk && /vllm:generation_tokens_total\{/.test(metrics.text) &&
          /vllm:time_to_first_token_seconds_bucket\{/.test(metrics.text), '/metrics is Prometheus text', metrics.text.slice(0, 300));
    // The reference parser (Debian python3-prometheus-client) must accept it.
    let parsed = null;
    try {
      parsed = execFileSync('/usr/bin/python3', ['-c',
        'import sys\nfrom prometheus_client.parser import text_string_to_metric_families as f\n' +
        'print(len(list(f(sys.stdin.read()))))'], { input: metrics.text }).toString().trim();
    } catch (e) {
      if (process.env.INFERA_REQUIRE_ORACLES) check(false, 'prometheus_client parser available', String(e));
      else console.log('skip prometheus_client parser check (python3-prometheus-client not installed)');
    }
    if (parsed !== null) check(Number(parsed) >= 10, '/metrics parses with prometheus_client', parsed);
  } finally {
    srv.kill('SIGTERM');
  }

  // API key.
  const keyed = await startServer(['--api-key', 'sekret']);
  try {
    const noKey = await raw(keyed.port, 'GET', '/v1/models');
    check(noKey.status === 401 && noKey.text === '{"error":"Unauthorized"}', 'api key: missing key is 401');
    const wrong = await raw(keyed.port, 'GET', '/v1/models', undefined, { authorization: 'Bearer nope' });
    check(wrong.status === 401, 'api key: wrong key is 401');
    const right = await raw(keyed.port, 'GET', '/v1/models', undefined, { authorization: 'Bearer sekret' });
    check(right.status === 200, 'api key: right key works');
    check((await raw(keyed.port, 'GET', '/health')).status === 200, 'api key: /health stays open');
  } finally {
    keyed.kill('SIGTERM');
  }
  // Reasoning parser (deepseek_r1): the same seeded requests, split as the contract says, streaming too.
  const rp = await startServer(['--reasoning-parser', 'deepseek_r1']);
  try {
    const c2 = new OpenAI({ baseURL: `http://127.0.0.1:${rp.port}/v1`, apiKey: 'unused' });
    let sawSplit = false;
    for (const [body, fullText, finish] of global.reasoningRefs) {
      // An opening tag counts only before the reasoning ends.
      const s0 = fullText.indexOf('<think>'), e0 = fullText.indexOf('</think>');
      const t = s0 >= 0 && (e0 < 0 || s0 < e0) ? fullText.slice(s0 + 7) : fullText;
      const e = t.indexOf('</think>');
      const wantReasoning = e < 0 ? t : t.slice(0, e);
      const wantContent = e < 0 ? null : (t.slice(e + 8) || null);
      sawSplit = sawSplit || e >= 0;
      const res = await raw(rp.port, 'POST', '/v1/chat/completions', JSON.stringify(body));
      const m = res.json.choices[0].message;
      check(m.reasoning_content === wantReasoning && m.content === wantContent && res.json.choices[0].finish_reason === finish,
            `reasoning split (logit_bias ${JSON.stringify(body.logit_bias)})`, [fullText, m.reasoning_content, m.content]);
      const st = await c2.chat.completions.create({ ...body, stream: true });
      let sr = null, sc = null;
      for await (const ch of st) {
        const d = ch.choices[0] ? ch.choices[0].delta : {};
        if (typeof d.reasoning_content === 'string') sr = (sr || '') + d.reasoning_content;
        if (typeof d.content === 'string' && !d.role) sc = (sc || '') + d.content;
      }
      // A step whose only token is a tag sends no chunk, so streams and whole texts differ when tags
      // repeat (and by text a skipped step flushed: U+FFFD of a cut character); compare the rest.
      if ((fullText.match(/<\/think>/g) || []).length <= 1) {
        const norm = (x) => (x || '').replace(/\uFFFD/g, '');
        check(norm(sr) === norm(wantReasoning) && norm(sc) === norm(wantContent), 'streamed reasoning/content match',
              [sr, sc, wantReasoning, wantContent]);
      }
      const off = await raw(rp.port, 'POST', '/v1/chat/completions', JSON.stringify({ ...body, include_reasoning: false }));
      check(off.json.choices[0].message.reasoning_content === null && off.json.choices[0].message.content === wantContent,
            'include_reasoning:false drops the reasoning');
    }
    check(sawSplit, 'some reference output contained </think> (the split was exercised)');
  } finally {
    rp.kill('SIGTERM');
  }
  // SIGTERM: no new connections, the in-flight request finishes, exit 0.
  const g = await startServer();
  const inflight = raw(g.port, 'POST', '/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: 150, ignore_eos: true }));
  // SIGTERM once the request is in the engine (or already done): before that the server has
  // nothing in flight and may stop at once, as it should.
  for (let t = 0; t < 400; ++t) {
    const m = await raw(g.port, 'GET', '/metrics');
    if (/^vllm:num_requests_(running|waiting)\{[^}]*\} [1-9]/m.test(m.text) ||
        /^vllm:request_success_total\{[^}]*\} [1-9]/m.test(m.text)) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const exited = new Promise((r) => g.on('exit', (code) => r(code)));
  g.kill('SIGTERM');
  const done = await inflight;
  check(done.status === 200 && done.json.usage.completion_tokens === 150, 'SIGTERM: in-flight request completes', done.status);
  check((await exited) === 0, 'SIGTERM: exit code 0');
  // --drain-timeout 0: requests still running are ended with finish_reason "abort", their stream
  // closed with a final chunk and [DONE], never cut off.
  const d = await startServer(['--drain-timeout', '0']);
  const streaming = raw(d.port, 'POST', '/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: 240, ignore_eos: true, stream: true }));
  for (let t = 0; t < 400; ++t) {
    const m = await raw(d.port, 'GET', '/metrics');
    if (/^vllm:num_requests_(running|waiting)\{[^}]*\} [1-9]/m.test(m.text) || /^vllm:request_success_total\{[^}]*\} [1-9]/m.test(m.text)) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const dExited = new Promise((r) => d.on('exit', (code) => r(code)));
  d.kill('SIGTERM');
  const ended = await streaming;
  const events = ended.text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  const last = events.length > 1 ? JSON.parse(events[events.length - 2]) : null;
  check(events[events.length - 1] === '[DONE]' && last && ['abort', 'length'].includes(last.choices[0].finish_reason),
        'SIGTERM past the drain time: the stream ends with a finish_reason and [DONE]', events.slice(-2));
  check((await dExited) === 0, 'SIGTERM past the drain time: exit code 0');

  const failures = harness.failed();
  console.log(failures ? `${failures} FAILED` : 'all passed');
  process.exit(failures ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
