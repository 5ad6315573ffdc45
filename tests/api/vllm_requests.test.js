// `infera serve` against vLLM's request semantics that clients and evaluation harnesses rely on:
// batched prompts, concurrent choices, echo with log-probs (the prompt's own log-probs, checked
// against the log-probs of the same tokens when generated), prompt_logprobs, text offsets in
// characters, return_tokens_as_token_ids, stop strings on the last token, vocabulary checks,
// held-back incomplete UTF-8, continuous usage stats, error shapes.
// Usage: node tests/api/vllm_requests.test.js <infera binary> <model path>
'use strict';
const harness = require('./serve_harness');
const { check, raw, sse } = harness;
const path = require('path');
const Ajv = require(path.join(__dirname, '..', 'oracles', 'node_modules', 'ajv'));
const addFormats = require(path.join(__dirname, '..', 'oracles', 'node_modules', 'ajv-formats'));

const [bin, model] = process.argv.slice(2);
const post = (port, p, body) => raw(port, 'POST', p, JSON.stringify(body));
const close = (a, b, tol = 2e-3) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(a));

async function main() {
  const srv = await harness.startServer(bin, model);
  const port = srv.port;
  try {
    const greedy = { model: 'tiny', temperature: 0 };

    // Batched prompts: each prompt answers as it would alone; indices prompt * n + j; usage sums.
    const alone = [];
    for (const prompt of ['Hello', 'The river', 'A']) {
      alone.push((await post(port, '/v1/completions', { ...greedy, prompt, max_tokens: 6 })).json);
    }
    const batch = (await post(port, '/v1/completions', { ...greedy, prompt: ['Hello', 'The river', 'A'], max_tokens: 6 })).json;
    check(batch.choices.length === 3 && batch.choices.every((c, i) => c.index === i && c.text === alone[i].choices[0].text),
          'batched string prompts = each prompt alone', [batch.choices, alone.map((a) => a.choices[0].text)]);
    check(batch.usage.prompt_tokens === alone.reduce((s, a) => s + a.usage.prompt_tokens, 0) &&
          batch.usage.completion_tokens === 18, 'batched usage sums the prompts', batch.usage);
    const ids = (await post(port, '/tokenize', { prompt: 'The river' })).json.tokens;
    const idBatch = (await post(port, '/v1/completions', { ...greedy, prompt: [ids, ids.slice(0, 2)], max_tokens: 6,
                                                           return_token_ids: true })).json;
    check(idBatch.choices[0].text === alone[1].choices[0].text &&
          JSON.stringify(idBatch.choices[1].prompt_token_ids) === JSON.stringify(ids.slice(0, 2)),
          'batched token-id prompts', idBatch.choices);
    const sampled = (await post(port, '/v1/completions', { model: 'tiny', prompt: ['Hello', 'A'], n: 2, seed: 5,
                                                           temperature: 0.9, max_tokens: 5 })).json;
    const single = (await post(port, '/v1/completions', { model: 'tiny', prompt: 'A', n: 2, seed: 5, temperature: 0.9,
                                                          max_tokens: 5 })).json;
    check(sampled.choices.map((c) => c.index).join() === '0,1,2,3' &&
          sampled.choices[2].text === single.choices[0].text && sampled.choices[3].text === single.choices[1].text,
          'n x batched prompts: index = prompt * n + j, each choice as seeded alone', [sampled.choices, single.choices]);
    const ev = await sse(port, '/v1/completions', { model: 'tiny', prompt: ['Hello', 'A'], n: 2, seed: 5,
                                                    temperature: 0.9, max_tokens: 5 });
    const texts = ['', '', '', ''];
    for (const e of ev) if (e !== '[DONE]') for (const c of e.choices) texts[c.index] += c.text;
    check(texts.join('|') === sampled.choices.map((c) => c.text).join('|'), 'batched stream = batched JSON', texts);

    // Echo with log-probs: the prompt's tokens come first (the first without a log-prob), and each
    // prompt token's log-prob equals the log-prob the model gives the same token when it generates it.
    const gen = (await post(port, '/v1/completions', { ...greedy, prompt: 'Hello', max_tokens: 3, logprobs: 2,
                                                       return_token_ids: true })).json.choices[0];
    const prompt = (await post(port, '/tokenize', { prompt: 'Hello' })).json.tokens;
    const full = [...prompt, ...gen.token_ids];
    const echo = (await post(port, '/v1/completions', { ...greedy, prompt: full, max_tokens: 1, logprobs: 2,
                                                        echo: true })).json.choices[0];
    const lp = echo.logprobs;
    check(lp.tokens.length === full.length + 1 && lp.token_logprobs[0] === null && lp.top_logprobs[0] === null,
          'echo + logprobs: prompt tokens first, the first with null', lp);
    let same = true;
    for (let k = 0; k < gen.token_ids.length; ++k) {
      const at = prompt.length + k;
      same = same && close(lp.token_logprobs[at], gen.logprobs.token_logprobs[k]) && lp.tokens[at] === gen.logprobs.tokens[k];
    }
    check(same, 'prompt log-probs = log-probs of the same tokens generated', [lp.token_logprobs, gen.logprobs.token_logprobs]);
    const promptText = (await post(port, '/detokenize', { tokens: full })).json.prompt;  // special tokens kept, as vLLM
    check(echo.text.startsWith(promptText), 'echo text starts with the decoded prompt', [echo.text, promptText]);
    let offOk = lp.text_offset[0] === 0;
    for (let k = 1; k < lp.tokens.length; ++k) offOk = offOk && lp.text_offset[k] === lp.text_offset[k - 1] + [...lp.tokens[k - 1]].length;
    check(offOk, 'text_offset advances by each token\'s characters', lp.text_offset);
    const pl = echo.prompt_logprobs;
    check(Array.isArray(pl) && pl.length === full.length && pl[0] === null &&
          pl.slice(1).every((m, k) => m[String(full[k + 1])] !== undefined) &&
          pl[prompt.length][String(gen.token_ids[0])].rank === 1,
          'prompt_logprobs: one entry per prompt position, the greedy token ranked 1', pl);
    const only = (await post(port, '/v1/completions', { ...greedy, prompt: 'Hello', max_tokens: 0, echo: true, logprobs: 0 })).json;
    check(only.choices[0].text === 'Hello' && only.choices[0].logprobs.tokens.length === prompt.length,
          'echo with max_tokens 0 returns the prompt alone', only.choices[0]);
    const zero = await post(port, '/v1/completions', { ...greedy, prompt: 'Hello', max_tokens: 0 });
    check(zero.status === 400 && zero.json.error.message === 'max_tokens must be at least 1, got 0.', 'max_tokens 0 without echo', zero.json);
    const streamed = await sse(port, '/v1/completions', { ...greedy, prompt: full, max_tokens: 1, logprobs: 2, echo: true });
    check(JSON.stringify(streamed[0].choices[0].logprobs.token_logprobs) === JSON.stringify(lp.token_logprobs),
          'streamed echo chunk carries the prompt log-probs', streamed[0].choices[0].logprobs);
    const chatPl = (await post(port, '/v1/chat/completions', { ...greedy, messages: [{ role: 'user', content: 'Hi' }],
                                                               max_tokens: 1, prompt_logprobs: 1 })).json;
    check(Array.isArray(chatPl.prompt_logprobs) && chatPl.prompt_logprobs[0] === null &&
          chatPl.prompt_logprobs.length === chatPl.usage.prompt_tokens, 'chat prompt_logprobs', chatPl.prompt_logprobs);
    const plStream = await post(port, '/v1/completions', { prompt: 'x', prompt_logprobs: 1, stream: true });
    check(plStream.status === 400 && plStream.json.error.message === '`prompt_logprobs` are not available when `stream=True`.',
          'prompt_logprobs with stream', plStream.json);
    const plAll = await post(port, '/v1/completions', { prompt: 'x', logprobs: -1 });
    check(plAll.status === 400 && /^Requested sample logprobs of \d+, which is greater than max allowed: 20$/.test(plAll.json.error.message),
          'logprobs -1 against max_logprobs 20', plAll.json);

    // Text offsets count characters: a token of one two-byte character advances by 1.
    const e = (await post(port, '/tokenize', { prompt: 'é', add_special_tokens: false })).json.tokens;
    if (e.length === 1) {
      const r = (await post(port, '/v1/completions', { prompt: 'Hello', max_tokens: 3, allowed_token_ids: e, logprobs: 0 })).json;
      check(JSON.stringify(r.choices[0].logprobs.text_offset) === '[0,1,2]', 'text_offset in characters', r.choices[0].logprobs);
    }
    const asIds = (await post(port, '/v1/completions', { ...greedy, prompt: 'Hello', max_tokens: 2, logprobs: 1,
                                                         return_tokens_as_token_ids: true, return_token_ids: true })).json.choices[0];
    check(asIds.logprobs.tokens.join() === asIds.token_ids.map((t) => `token_id:${t}`).join() &&
          Object.keys(asIds.logprobs.top_logprobs[0])[0] === `token_id:${asIds.token_ids[0]}`,
          'return_tokens_as_token_ids', asIds.logprobs);
    const chatIds = (await post(port, '/v1/chat/completions', { ...greedy, messages: [{ role: 'user', content: 'Hi' }],
                                                                max_tokens: 1, logprobs: true, top_logprobs: 1,
                                                                return_tokens_as_token_ids: true })).json;
    check(/^token_id:\d+$/.test(chatIds.choices[0].logprobs.content[0].token), 'chat return_tokens_as_token_ids',
          chatIds.choices[0].logprobs);

    // A stop string matched by the last allowed token still finishes with "stop".
    const base = (await post(port, '/v1/completions', { ...greedy, prompt: 'Hello', max_tokens: 3 })).json.choices[0].text;
    const tail = base.slice(-2);
    const last = (await post(port, '/v1/completions', { ...greedy, prompt: 'Hello', max_tokens: 3, stop: [tail] })).json.choices[0];
    check(last.finish_reason === 'stop' && last.stop_reason === tail && last.text === base.slice(0, -2),
          'stop string on the last token: finish_reason stop', [base, last]);

    // bad_words (chat): a banned word's tokens never complete.
    const free = (await post(port, '/v1/chat/completions', { ...greedy, messages: [{ role: 'user', content: 'Hi' }],
                                                             max_tokens: 4, return_token_ids: true })).json.choices[0];
    const word = (await post(port, '/detokenize', { tokens: [free.token_ids[0]] })).json.prompt;
    const banned = (await post(port, '/v1/chat/completions', { ...greedy, messages: [{ role: 'user', content: 'Hi' }],
                                                               max_tokens: 4, return_token_ids: true, bad_words: [word] })).json;
    check(banned.choices && banned.choices[0].token_ids[0] !== free.token_ids[0] && !banned.choices[0].token_ids.includes(free.token_ids[0]),
          'bad_words bans the word', [word, free.token_ids, banned.choices && banned.choices[0].token_ids]);
    const badType = await post(port, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], bad_words: 'x' });
    check(badType.status === 400, 'bad_words must be a list', badType.json);

    // Structured outputs: response_format json_object gives a JSON object; guided_choice one of the choices.
    let parsed = 0;
    for (const seed of [1, 2, 3]) {
      const j = (await post(port, '/v1/chat/completions', { model: 'tiny', messages: [{ role: 'user', content: 'Hi' }],
                                                            max_tokens: 200, seed, response_format: { type: 'json_object' } })).json;
      const text = j.choices[0].message.content;
      let obj = null;
      try { obj = JSON.parse(text); } catch (_) { /* checked below */ }
      const isObj = obj !== null && typeof obj === 'object' && !Array.isArray(obj);
      parsed += isObj ? 1 : 0;
      check(j.choices[0].finish_reason === 'length' || isObj, `json_object output is a JSON object (seed ${seed})`, text);
    }
    check(parsed >= 1, 'json_object: at least one output finished as a whole object (the check above is not vacuous)', parsed);
    const picks = new Set();
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const r = (await post(port, '/v1/completions', { model: 'tiny', prompt: 'Is it', max_tokens: 20, seed, temperature: 3,
                                                       guided_choice: ['yes', 'no', 'maybe later'] })).json.choices[0];
      check(['yes', 'no', 'maybe later'].includes(r.text) && r.finish_reason === 'stop', `guided_choice (seed ${seed})`, r);
      picks.add(r.text);
    }
    check(picks.size >= 2, 'guided_choice samples among the choices', [...picks]);
    const so = (await post(port, '/v1/chat/completions', { ...greedy, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 10,
                                                           structured_outputs: { choice: ['alpha', 'beta'] } })).json.choices[0];
    check(['alpha', 'beta'].includes(so.message.content), 'structured_outputs.choice', so.message);

    // JSON schemas (response_format json_schema, guided_json, structured_outputs.json as an object or
    // as JSON text): every output that finished validates against its schema with ajv, the
    // reference validator; guided_regex / structured_outputs.regex outputs match the pattern
    // (JavaScript's RegExp, anchored). Random weights and temperature 1: the constraint alone
    // makes these hold.
    const ajv = new Ajv({ strict: false });
    addFormats(ajv);
    const person = { type: 'object', additionalProperties: false, required: ['name', 'age', 'ok'],
                     properties: { name: { type: 'string', maxLength: 6 }, age: { type: 'integer', minimum: 0, maximum: 120 },
                                   tags: { type: 'array', items: { enum: ['a', 'b', 'c'] }, maxItems: 2 }, ok: { type: 'boolean' } } };
    const shapes = { $defs: { pt: { type: 'object', properties: { x: { type: 'integer', minimum: -9, maximum: 9 },
                                                                  y: { type: 'integer', minimum: -9, maximum: 9 } }, required: ['x', 'y'] } },
                     anyOf: [{ type: 'object', properties: { kind: { const: 'point' }, at: { $ref: '#/$defs/pt' } }, required: ['kind', 'at'] },
                             { type: 'object', properties: { kind: { const: 'none' } }, required: ['kind'] }] };
    const schemaCases = [
      ['/v1/chat/completions', person, (sc) => ({ messages: [{ role: 'user', content: 'Who?' }],
                                                 response_format: { type: 'json_schema', json_schema: { name: 'person', schema: sc, strict: true } } })],
      ['/v1/completions', shapes, (sc) => ({ prompt: 'Shape:', guided_json: sc })],
      ['/v1/completions', person, (sc) => ({ prompt: 'Person:', structured_outputs: { json: JSON.stringify(sc) } })],
    ];
    // A pattern with characters JSON escapes ('"', '\\', a tab): matched through their escapes.
    schemaCases.push(['/v1/completions', { type: 'string', pattern: '^a"[b\\\\\t]{1,3}$' },
                      (sc) => ({ prompt: 'Value:', guided_json: sc, max_tokens: 40 })]);
    // String formats, validated by ajv-formats.
    for (const format of ['email', 'ipv4', 'hostname', 'uri', 'date-time', 'date', 'time', 'uuid']) {
      schemaCases.push(['/v1/completions', { type: 'string', format }, (sc) => ({ prompt: 'Value:', guided_json: sc, max_tokens: 200 })]);
    }
    let finished = 0;
    const finishedFormats = new Set();
    for (const [url, schema, body] of schemaCases) {
      const validate = ajv.compile(schema);
      for (const seed of schema.format || schema.pattern ? [1, 2] : [1, 2, 3, 4]) {
        const r = await post(port, url, { model: 'tiny', max_tokens: 150, temperature: 1, seed, ...body(schema) });  // body may raise max_tokens
        const c = r.json && r.json.choices && r.json.choices[0];
        const text = c && (c.message ? c.message.content : c.text);
        if (!c || c.finish_reason !== 'stop') {
          check(c && c.finish_reason === 'length', `${url} schema output ends (seed ${seed})`, [r.status, r.text]);
          continue;
        }
        let doc;
        try { doc = JSON.parse(text); } catch (e) { doc = e; }
        check(!(doc instanceof Error) && validate(doc), `${url} schema output validates (seed ${seed})`, [text, validate.errors]);
        finished += 1;
        if (schema.format || schema.pattern) finishedFormats.add(schema.format || 'pattern');
      }
    }
    check(finished >= 20 && finishedFormats.size === 9, 'json_schema: most outputs finished, every format (the validation above is not vacuous)',
          [finished, [...finishedFormats]]);
    const pattern = '[A-Z]{2}-\\d{3}(?:x|yz)?';
    for (const seed of [1, 2, 3]) {
      const r = (await post(port, '/v1/completions', { model: 'tiny', prompt: 'Code:', max_tokens: 20, seed, temperature: 1,
                                                       guided_regex: pattern })).json.choices[0];
      check(new RegExp(`^(?:${pattern})$`, 'u').test(r.text) && r.finish_reason === 'stop', `guided_regex (seed ${seed})`, r);
    }
    // An extreme repetition penalty turns prompt tokens' logits to +inf: still an answer, on the
    // top-k path and the top-p one, and the server lives on.
    for (const extra of [{ top_k: 20 }, { top_p: 0.9 }, {}]) {
      const r = await post(port, '/v1/completions', { model: 'tiny', prompt: 'A B C', max_tokens: 4, temperature: 1,
                                                      repetition_penalty: 1e-38, ...extra });
      check(r.status === 200 && r.json.choices[0].text !== undefined, `repetition_penalty 1e-38 ${JSON.stringify(extra)}: an answer`, r.text.slice(0, 300));
    }
    // A schema sent as JSON text is held to the body's nesting bound too.
    const deepText = await post(port, '/v1/completions', { model: 'tiny', prompt: 'A', max_tokens: 2,
                                                           guided_json: `{"const": ${'['.repeat(200000)}${']'.repeat(200000)}}` });
    check(deepText.status === 400 && /nests deeper than 512 levels/.test(deepText.json.error.message), 'guided_json text nested 200,000 deep: 400', deepText.text.slice(0, 300));
    // One request may not flood the queue: n up to 128 (OpenAI's bound), prompts x n up to 2048.
    const bigN = await post(port, '/v1/completions', { model: 'tiny', prompt: 'A', n: 1000000, max_tokens: 1 });
    check(bigN.status === 400 && bigN.json.error.message === 'n must be at most 128, got 1000000.', 'n above 128: 400', bigN.json);
    const many = await post(port, '/v1/completions', { model: 'tiny', prompt: Array(100).fill('A'), n: 30, max_tokens: 1, temperature: 1 });
    check(many.status === 400 && /at most 2048 sequences \(prompts x n\), got 100 x 30/.test(many.json.error.message), 'prompts x n above 2048: 400', many.json);
    const soRegex = (await post(port, '/v1/chat/completions', { ...greedy, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 20,
                                                                structured_outputs: { regex: '(?:yes|no), \\d' } })).json.choices[0];
    check(/^(?:yes|no), \d$/.test(soRegex.message.content), 'structured_outputs.regex', soRegex.message);
    // Streamed, the same text as whole (same seed).
    const streamBody = { model: 'tiny', prompt: 'Person:', max_tokens: 150, seed: 2, temperature: 1, guided_json: person };
    const wholeJson = (await post(port, '/v1/completions', streamBody)).json.choices[0].text;
    const streamedJson = (await sse(port, '/v1/completions', { ...streamBody, stream: true }))
      .filter((x) => x !== '[DONE]' && x.choices.length).map((x) => x.choices[0].text).join('');
    check(streamedJson === wholeJson, 'guided_json streams the same text', [streamedJson, wholeJson]);
    // Bad schemas and patterns: 400 with what is wrong; grammars are still not supported.
    const badRegex = await post(port, '/v1/completions', { prompt: 'x', guided_regex: '(a' });
    check(badRegex.status === 400 && /guided_regex.*missing '\)'/.test(badRegex.json.error.message), 'guided_regex syntax error: 400', badRegex.json);
    const backref = await post(port, '/v1/completions', { prompt: 'x', structured_outputs: { regex: '(a)\\1' } });
    check(backref.status === 400 && /backreferences/.test(backref.json.error.message), 'backreference: 400', backref.json);
    const multipleOf = await post(port, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }],
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'integer', multipleOf: 3 } } } });
    check(multipleOf.status === 400 && /'multipleOf' is not supported/.test(multipleOf.json.error.message), 'unsupported keyword: 400', multipleOf.json);
    // A pattern whose automaton would be too big: compiled off the HTTP thread, refused, and the
    // refusal kept (the second answer is the same).
    for (let k = 0; k < 2; ++k) {
      const huge = await post(port, '/v1/completions', { prompt: 'x', guided_regex: '(a|b)*a(a|b){20}' });
      check(huge.status === 400 && /guided_regex.*automaton states/.test(huge.json.error.message), 'a pattern too big to compile: 400', huge.json);
    }
    // When nothing may follow: min_tokens or allowed_token_ids forbid the EOS a whole output needs,
    // so the request ends there ('stop'); with ignore_eos only EOS (no text) follows a whole output.
    const minTok = (await post(port, '/v1/completions', { prompt: 'x', max_tokens: 10, min_tokens: 5, guided_regex: 'ab' })).json.choices[0];
    check(minTok.text === 'ab' && minTok.finish_reason === 'stop', 'min_tokens past a whole regex output: ends there', minTok);
    const noneFits = (await post(port, '/v1/completions', { prompt: 'x', max_tokens: 10, allowed_token_ids: [5, 6, 7], guided_regex: 'abc' })).json;
    check(noneFits.choices[0].text === '' && noneFits.choices[0].finish_reason === 'stop' && noneFits.usage.completion_tokens === 0,
          'allowed_token_ids that cannot make the pattern: an empty stop', noneFits);
    const ign = (await post(port, '/v1/completions', { prompt: 'x', max_tokens: 12, ignore_eos: true, seed: 1,
                                                      guided_json: { type: 'string', maxLength: 3 } })).json.choices[0];
    check(typeof JSON.parse(ign.text) === 'string' && ign.finish_reason === 'length', 'ignore_eos after a whole JSON output adds no text', ign);
    const badWs = await post(port, '/v1/completions', { prompt: 'x', guided_json: { type: 'object' }, guided_whitespace_pattern: '(' });
    check(badWs.status === 400 && /^'guided_whitespace_pattern': invalid regex: missing '\)'.* position 0$/.test(badWs.json.error.message),
          'a bad whitespace pattern: 400 naming it', badWs.json);
    const noName = await post(port, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }],
      response_format: { type: 'json_schema', json_schema: { schema: { type: 'integer' } } } });
    check(noName.status === 400 && /json_schema\.name/.test(noName.json.error.message), 'json_schema without a name: 400', noName.json);
    const textSchema = await post(port, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }],
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: '{"type": "integer"}' } } });
    check(textSchema.status === 400 && /must be an object/.test(textSchema.json.error.message), 'json_schema.schema as text: 400', textSchema.json);
    const notWs = await post(port, '/v1/completions', { prompt: 'x', guided_json: { type: 'object' }, guided_whitespace_pattern: 'x?' });
    check(notWs.status === 400 && /only spaces, tabs and line breaks/.test(notWs.json.error.message), 'a whitespace pattern that is not whitespace: 400', notWs.json);
    const notJson = await post(port, '/v1/completions', { prompt: 'x', guided_json: '{"type": ' });
    check(notJson.status === 400 && /not valid JSON/.test(notJson.json.error.message), 'guided_json text that is not JSON: 400', notJson.json);
    const grammar = await post(port, '/v1/completions', { prompt: 'x', structured_outputs: { grammar: 'root ::= "a"' } });
    check(grammar.status === 501, 'structured_outputs.grammar: 501, not ignored', grammar.json);
    const two = await post(port, '/v1/completions', { prompt: 'x', guided_regex: 'a', guided_choice: ['a'] });
    check(two.status === 400, 'two kinds of guided decoding: 400', two.json);

    // Stream options: continuous usage only with include_usage; with include_stop_str_in_output no hold-back.
    const noUsage = await sse(port, '/v1/chat/completions', { model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2,
                                                              stream_options: { include_usage: false, continuous_usage_stats: true } });
    check(noUsage.every((x) => x === '[DONE]' || !('usage' in x)), 'continuous_usage_stats needs include_usage', noUsage.slice(0, 2));
    const plain = (await post(port, '/v1/completions', { ...greedy, prompt: 'Hello', max_tokens: 6 })).json.choices[0].text;
    const st2 = plain.slice(-2);
    const kept = await sse(port, '/v1/completions', { ...greedy, prompt: 'Hello', max_tokens: 6, stop: [st2], include_stop_str_in_output: true });
    const pieces = kept.filter((x) => x !== '[DONE]' && x.choices.length).map((x) => x.choices[0].text);
    const noStop = await sse(port, '/v1/completions', { ...greedy, prompt: 'Hello', max_tokens: 6 });
    const free2 = noStop.filter((x) => x !== '[DONE]' && x.choices.length).map((x) => x.choices[0].text);
    check(pieces.join('') === plain && JSON.stringify(pieces) === JSON.stringify(free2.slice(0, pieces.length)),
          'include_stop_str_in_output streams without holding text back', [pieces, free2]);

    // Vocabulary checks (vLLM's messages).
    const allowed = await post(port, '/v1/completions', { prompt: 'x', allowed_token_ids: [99999] });
    check(allowed.status === 400 && allowed.json.error.message === 'allowed_token_ids contains out-of-vocab token id!',
          'allowed_token_ids out of vocabulary', allowed.json);
    const badKey = await post(port, '/v1/completions', { prompt: 'x', logit_bias: { '5abc': 1 } });
    check(badKey.status === 400 && badKey.json.error.message === "invalid literal for int() with base 10: '5abc'",
          'logit_bias keys as int()', badKey.json);
    const bias = await post(port, '/v1/completions', { prompt: 'x', logit_bias: { 99999: 1 } });
    check(bias.status === 400 && /^token_id\(s\) \[99999\] in logit_bias contain out-of-vocab token ids\. Vocabulary size: \d+$/.test(bias.json.error.message),
          'logit_bias out of vocabulary', bias.json);

    // Text ending in an incomplete UTF-8 sequence is held back, and not emitted at the end.
    let cut = -1;
    for (let id = 0; id < 400 && cut < 0; ++id) {
      const d = (await post(port, '/detokenize', { tokens: [id] })).json;
      if (d && d.prompt === '\uFFFD') cut = id;
    }
    check(cut >= 0, 'the vocabulary has a lone-byte token', cut);
    if (cut >= 0) {
      const h = (await post(port, '/v1/completions', { prompt: 'Hello', max_tokens: 2, allowed_token_ids: [cut] })).json;
      check(h.choices[0].text === '' && h.usage.completion_tokens === 2, 'incomplete UTF-8 tail is not emitted', h.choices[0]);
    }

    // Completions: max_tokens null means the rest of the context (256 here).
    const rest = (await post(port, '/v1/completions', { prompt: 'Hello', max_tokens: null, ignore_eos: true })).json;
    check(rest.usage.total_tokens === 256, 'max_tokens null fills the context', rest.usage);

    // continuous_usage_stats: the role chunk carries usage too; n choices stream concurrently.
    const cu = await sse(port, '/v1/chat/completions', { model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], n: 2,
                                                         max_tokens: 3, stream_options: { continuous_usage_stats: true } });
    const roles = cu.filter((x) => x !== '[DONE]' && x.choices.length && x.choices[0].delta.role);
    check(roles.length === 2 && roles.every((x) => x.usage && x.usage.completion_tokens === 0 &&
                                                  x.usage.total_tokens === x.usage.prompt_tokens),
          'role chunks carry continuous usage', roles);

    // /tokenize renders messages with content parts as chat does.
    const parts = [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }];
    const tk = await post(port, '/tokenize', { messages: parts });
    const ch = (await post(port, '/v1/chat/completions', { model: 'tiny', messages: parts, max_tokens: 1 })).json;
    check(tk.status === 200 && tk.json.count === ch.usage.prompt_tokens, '/tokenize with content parts', tk.json);

    // The HTTP layer's own errors in the API's error shape.
    const big = await raw(port, 'POST', '/v1/completions', JSON.stringify({ prompt: 'a'.repeat(17 * 1024 * 1024) }));
    check(big.status === 413 && big.json && big.json.error && big.json.error.code === 413, '413 in the error shape', big.text);

    // Unknown fields are logged, not refused.
    const unk = await post(port, '/v1/completions', { prompt: 'x', max_tokens: 1, frobnicate: 1 });
    await new Promise((r) => setTimeout(r, 50));
    check(unk.status === 200 && /present in the request but ignored: \{'frobnicate'\}/.test(srv.log()), 'unknown fields logged');

    // /metrics: every family of vLLM's table, the request-phase histograms counting finished requests.
    const m = (await raw(port, 'GET', '/metrics')).text;
    for (const name of ['num_requests_running', 'num_requests_waiting', 'kv_cache_usage_perc', 'prefix_cache_queries_total',
      'prefix_cache_hits_total', 'num_preemptions_total', 'prompt_tokens_total', 'generation_tokens_total',
      'request_success_total', 'request_prompt_tokens_bucket', 'request_generation_tokens_bucket',
      'iteration_tokens_total_bucket', 'request_max_num_generation_tokens_bucket', 'request_params_n_bucket',
      'request_params_max_tokens_bucket', 'time_to_first_token_seconds_bucket', 'inter_token_latency_seconds_bucket',
      'time_per_output_token_seconds_bucket', 'request_time_per_output_token_seconds_bucket',
      'e2e_request_latency_seconds_bucket', 'request_queue_time_seconds_bucket', 'request_inference_time_seconds_bucket',
      'request_prefill_time_seconds_bucket', 'request_decode_time_seconds_bucket', 'cache_config_info', 'lora_requests_info']) {
      check(new RegExp(`^vllm:${name}\\{`, 'm').test(m), `/metrics has vllm:${name}`);
    }
    const count = (name) => Number((m.match(new RegExp(`^vllm:${name}_count\\{[^}]*\\} (\\S+)`, 'm')) || [])[1]);
    const e2e = count('e2e_request_latency_seconds');
    check(count('request_queue_time_seconds') > 0 && count('request_queue_time_seconds') <= count('request_generation_tokens') &&
          count('request_prefill_time_seconds') === count('request_queue_time_seconds') && e2e > 0,
          'request phase histograms count finished requests', [count('request_queue_time_seconds'), e2e]);
    check(count('iteration_tokens_total') > 0 && /^vllm:iteration_tokens_total_bucket\{[^}]*le="16384\.0"\}/m.test(m),
          'iteration_tokens_total counts engine steps with vLLM\'s buckets');
  } finally {
    srv.kill('SIGTERM');
  }
  const failures = harness.failed();
  console.log(failures ? `${failures} FAILED` : 'all passed');
  process.exit(failures ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
