// Forced tool calls over HTTP, through the official `openai` client: tool_choice "required" and a
// named function, whole and streamed; arguments validated by ajv against each tool's parameters;
// streamed deltas (accumulated by the client's own stream helper) equal the whole answer; vLLM's
// 400s; a reasoning server whose tool call follows the reasoning.
// Usage: node tests/api/tool_calls.test.js <infera binary> <model path>
'use strict';
const path = require('path');
const harness = require('./serve_harness');
const { check, raw } = harness;
const OpenAI = require(path.join(__dirname, '..', 'oracles', 'node_modules', 'openai')).default;
const Ajv = require(path.join(__dirname, '..', 'oracles', 'node_modules', 'ajv'));

const [bin, model] = process.argv.slice(2);
const post = (port, body) => raw(port, 'POST', '/v1/chat/completions', JSON.stringify(body));

const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: {
    type: 'object', additionalProperties: false, required: ['city', 'unit'],
    properties: { city: { type: 'string', maxLength: 8 }, days: { type: 'integer', minimum: 1, maximum: 7 },
                  unit: { $ref: '#/$defs/unit' } },
    $defs: { unit: { enum: ['celsius', 'fahrenheit'] } } } } },
  { type: 'function', function: { name: 'search', parameters: {
    type: 'object', required: ['q'], properties: { q: { type: 'string', maxLength: 10 },
                                                   tags: { type: 'array', items: { type: 'string', maxLength: 4 }, maxItems: 2 } } } } },
  { type: 'function', function: { name: 'noop', description: 'No parameters' } },
];
const ajv = new Ajv({ strict: false });
const validators = Object.fromEntries(tools.map((t) => [t.function.name, ajv.compile(t.function.parameters || { type: 'object', maxProperties: 0 })]));
const messages = [{ role: 'user', content: 'What is the weather in Oslo?' }];

// A client-side accumulation of streamed tool-call deltas, by index.
function accumulate(chunks) {
  const calls = [];
  let finish = null, content = '', reasoning = '';
  for (const ch of chunks) {
    for (const c of ch.choices) {
      if (c.finish_reason) finish = c.finish_reason;
      if (c.delta.content) content += c.delta.content;
      if (c.delta.reasoning_content) reasoning += c.delta.reasoning_content;
      for (const d of c.delta.tool_calls || []) {
        if (d.id) calls[d.index] = { id: d.id, type: d.type, name: d.function.name, arguments: '' };
        calls[d.index].arguments += d.function.arguments || '';
      }
    }
  }
  return { calls, finish, content, reasoning };
}

function argumentsValid(call) {
  let args;
  try { args = JSON.parse(call.function.arguments); } catch (e) { return false; }
  return validators[call.function.name] !== undefined && validators[call.function.name](args);
}

async function main() {
  const srv = await harness.startServer(bin, model);
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${srv.port}/v1`, apiKey: 'unused' });
  try {
    // "required": a non-empty list of calls to the given tools, each with valid arguments.
    let finished = 0, parallel = 0;
    const names = new Set();
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) {
      const body = { model: 'tiny', messages, tools, tool_choice: 'required', temperature: 1, seed, max_tokens: 200 };
      const r = await post(srv.port, body);
      if (r.status === 400 && /reached max_tokens/.test(r.json.error.message)) {  // cut short: a clear 400, as vLLM's
        check(r.json.error.type === 'BadRequestError', `required (seed ${seed}): cut short by max_tokens is a 400`, r.json);
        continue;
      }
      const c = r.json.choices[0];
      check(r.status === 200 && c.finish_reason === 'tool_calls' && c.message.content === '' &&
            c.message.tool_calls.length >= 1 && c.message.tool_calls.every((t) => /^chatcmpl-tool-[0-9a-f]{32}$/.test(t.id) && t.type === 'function'),
            `required (seed ${seed}): tool calls`, r.json);
      check(c.message.tool_calls.every(argumentsValid), `required (seed ${seed}): every call's arguments validate`, c.message.tool_calls);
      finished += 1;
      parallel += c.message.tool_calls.length > 1;
      for (const t of c.message.tool_calls) names.add(t.function.name);
      // The same request streamed: the client's chunks add up to the same calls.
      const chunks = [];
      for await (const ch of await client.chat.completions.create({ ...body, stream: true })) chunks.push(ch);
      const acc = accumulate(chunks);
      check(acc.finish === 'tool_calls' && acc.content === '' && acc.calls.length === c.message.tool_calls.length &&
            acc.calls.every((t, i) => t.name === c.message.tool_calls[i].function.name &&
                            JSON.stringify(JSON.parse(t.arguments)) === JSON.stringify(JSON.parse(c.message.tool_calls[i].function.arguments))),
            `required (seed ${seed}): streamed = whole`, [acc, c.message.tool_calls]);
    }
    check(finished >= 5 && names.size >= 2 && parallel >= 1, 'required: most outputs finished, more than one tool chosen (the checks are not vacuous)',
          [finished, [...names], parallel]);

    // A named function: its arguments, as the text generated; streamed through the client's helper.
    for (const [name, seed] of [['get_weather', 1], ['get_weather', 2], ['search', 3], ['noop', 4]]) {
      const body = { model: 'tiny', messages, tools, tool_choice: { type: 'function', function: { name } }, temperature: 1, seed, max_tokens: 120 };
      const whole = await client.chat.completions.create(body);
      const c = whole.choices[0];
      if (c.finish_reason === 'length') continue;
      check(c.finish_reason === 'stop' && c.message.content === '' && c.message.tool_calls.length === 1 &&
            c.message.tool_calls[0].function.name === name && argumentsValid(c.message.tool_calls[0]),
            `named ${name} (seed ${seed}): one call with valid arguments`, c.message);
      const stream = client.chat.completions.stream({ ...body, stream: true });
      const final = await stream.finalChatCompletion();
      const sc = final.choices[0];
      check(sc.message.tool_calls.length === 1 && sc.message.tool_calls[0].function.name === name &&
            sc.message.tool_calls[0].function.arguments === c.message.tool_calls[0].function.arguments,
            `named ${name} (seed ${seed}): the stream helper's final message = whole`, [sc.message, c.message]);
    }
    // The tool's schema wins over a schema beside it; other kinds of structured output conflict.
    const both = await post(srv.port, { model: 'tiny', messages, tools, tool_choice: 'required', temperature: 0, max_tokens: 120,
                                        guided_json: { type: 'integer' } });
    check(both.status === 200 && Array.isArray(both.json.choices[0].message.tool_calls), 'required + guided_json: the tools win', both.json);
    const conflict = await post(srv.port, { model: 'tiny', messages, tools, tool_choice: 'required', response_format: { type: 'json_object' } });
    check(conflict.status === 400 && /only use one kind of guided decoding/.test(conflict.json.error.message), 'required + json_object: 400', conflict.json);
    // vLLM's checks.
    const cases = [
      [{ tools }, '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'],
      [{ tools, tool_choice: 'auto' }, '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'],
      [{ tools, tool_choice: { type: 'function', function: { name: 'nope' } } },
       'The tool specified in `tool_choice` does not match any of the specified `tools`'],
      [{ tools, tool_choice: 'sometimes' }, 'Invalid value for `tool_choice`: sometimes! Only named tools, "none", "auto" or "required" are supported.'],
      [{ tool_choice: 'required' }, 'When using `tool_choice`, `tools` must be set.'],
      [{ tools: [{ type: 'function', function: { name: 'x', parameters: { type: 'object', properties: { a: { type: 'integer', multipleOf: 3 } } } } }],
         tool_choice: 'required' }, /^'tool_choice': .*multipleOf/],
    ];
    for (const [extra, want] of cases) {
      const r = await post(srv.port, { model: 'tiny', messages, max_tokens: 5, ...extra });
      const ok = r.status === 400 && (want instanceof RegExp ? want.test(r.json.error.message) : r.json.error.message === want);
      check(ok, `400: ${String(want).slice(0, 60)}`, r.json);
    }
    // A stop string inside the forced call: a 400 that names it (the arguments would be cut).
    const stopped = await post(srv.port, { model: 'tiny', messages, tools, tool_choice: { type: 'function', function: { name: 'get_weather' } },
                                           stop: ['"'], max_tokens: 60 });
    check(stopped.status === 400 && /stop string "\\"" ended the output inside the tool call/.test(stopped.json.error.message),
          'a stop string inside the call: 400 naming it', stopped.json);
    // An assistant turn of tool_calls alone may leave out `content` (OpenAI's clients do).
    const noContent = await post(srv.port, { model: 'tiny', max_tokens: 3, tools, tool_choice: 'none', messages: [...messages,
      { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'noop', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'done' }] });
    check(noContent.status === 200, 'assistant tool_calls without content', noContent.json);
    // Bodies nested past 512 levels: a 400 before anything recurses over them; the server lives on.
    const deep = await raw(srv.port, 'POST', '/v1/chat/completions',
                           `{"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "a", "parameters": {"type": "object", "x": ${'['.repeat(20000)}${']'.repeat(20000)}}}}], "tool_choice": "none"}`);
    check(deep.status === 400 && /nest deeper than 512 levels/.test(deep.json.error.message), 'a body nested 20,000 deep: 400', deep.text.slice(0, 300));
    const none = await post(srv.port, { model: 'tiny', messages, tools, tool_choice: 'none', max_tokens: 5 });
    check(none.status === 200 && none.json.choices[0].message.tool_calls.length === 0, 'tool_choice none: plain text', none.json);
    const emptyRequired = await post(srv.port, { model: 'tiny', messages, tools: [], tool_choice: 'required', max_tokens: 5 });
    check(emptyRequired.status === 200 && emptyRequired.json.choices[0].message.tool_calls.length === 0, 'required with tools []: plain text', emptyRequired.json);
    // Cut short: a 400 naming max_tokens; streamed, the calls so far and finish_reason "length".
    const cut = { model: 'tiny', messages, tools, tool_choice: 'required', max_tokens: 8, temperature: 0 };
    const cutWhole = await post(srv.port, cut);
    check(cutWhole.status === 400 && /reached max_tokens/.test(cutWhole.json.error.message), 'required cut short: 400 naming max_tokens', cutWhole.json);
    const cutChunks = [];
    for await (const ch of await client.chat.completions.create({ ...cut, stream: true })) cutChunks.push(ch);
    check(accumulate(cutChunks).finish === 'length', 'required cut short, streamed: finish_reason length', cutChunks.slice(-2));
  } finally {
    srv.kill('SIGTERM');
  }

  // A reasoning server: the reasoning first (free text), then the call; </think> (id 1030 in the
  // tiny vocabulary) is pushed by logit_bias so the reasoning ends within max_tokens.
  const rp = await harness.startServer(bin, model, ['--reasoning-parser', 'deepseek_r1']);
  const rc = new OpenAI({ baseURL: `http://127.0.0.1:${rp.port}/v1`, apiKey: 'unused' });
  try {
    const body = { model: 'tiny', messages, tools, tool_choice: { type: 'function', function: { name: 'get_weather' } },
                   temperature: 1, seed: 5, max_tokens: 150, logit_bias: { 1030: 6 } };
    const whole = await post(rp.port, body);
    const m = whole.json.choices && whole.json.choices[0].message;
    check(whole.status === 200 && typeof m.reasoning_content === 'string' && m.content === '' && m.tool_calls.length === 1 &&
          argumentsValid(m.tool_calls[0]), 'reasoning, then the named call', whole.json);
    const chunks = [];
    for await (const ch of await rc.chat.completions.create({ ...body, stream: true })) chunks.push(ch);
    const acc = accumulate(chunks);
    check(m && acc.reasoning === m.reasoning_content && acc.calls.length === 1 && acc.calls[0].arguments === m.tool_calls[0].function.arguments,
          'reasoning, then the named call: streamed = whole', [acc, m]);
    const noEnd = await post(rp.port, { ...body, logit_bias: { 1030: -100 }, max_tokens: 6 });
    check(noEnd.status === 400 && /reasoning did not end/.test(noEnd.json.error.message), 'the reasoning never ended: a 400 that says so', noEnd.json);
  } finally {
    rp.kill('SIGTERM');
  }
}

async function autoTools() {
  // --enable-auto-tool-choice --tool-call-parser hermes: the model's own <tool_call> text read out
  // of the answer. guided_regex makes the random model write such an answer (vLLM allows
  // structured outputs beside "auto").
  const srv = await harness.startServer(bin, model, ['--enable-auto-tool-choice', '--tool-call-parser', 'hermes']);
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${srv.port}/v1`, apiKey: 'unused' });
  try {
    const call = '<tool_call>\\n\\{"name": "get_weather", "arguments": \\{"city": "[a-z]{1,5}", "unit": "(?:celsius|fahrenheit)"\\}\\}\\n</tool_call>';
    for (const seed of [1, 2, 3]) {
      const body = { model: 'tiny', messages, tools, temperature: 1, seed, max_tokens: 230, guided_regex: `[a-z]{1,8} ${call}(?:\\n${call})?` };
      const r = await post(srv.port, body);
      const c = r.json.choices && r.json.choices[0];
      check(r.status === 200 && c.finish_reason === 'tool_calls' && /^[a-z]{1,8} $/.test(c.message.content) &&
            c.message.tool_calls.length >= 1 && c.message.tool_calls.every((t) => t.function.name === 'get_weather' && argumentsValid(t) &&
                                                                           /^chatcmpl-tool-[0-9a-f]{32}$/.test(t.id)),
            `auto (hermes, seed ${seed}): content, then the calls read out`, r.json);
      const chunks = [];
      for await (const ch of await client.chat.completions.create({ ...body, stream: true })) chunks.push(ch);
      const acc = accumulate(chunks);
      check(c && acc.finish === 'tool_calls' && acc.content === c.message.content && acc.calls.length === c.message.tool_calls.length &&
            acc.calls.every((t, i) => t.name === c.message.tool_calls[i].function.name && t.arguments === c.message.tool_calls[i].function.arguments),
            `auto (hermes, seed ${seed}): streamed = whole`, [acc, c && c.message]);
    }
    // No call in the answer: plain content, finish_reason as usual; "auto" given explicitly too.
    const plain = await post(srv.port, { model: 'tiny', messages, tools, tool_choice: 'auto', temperature: 0, max_tokens: 20, guided_regex: '[a-z ]{5,12}' });
    const pc = plain.json.choices[0];
    check(plain.status === 200 && pc.finish_reason === 'stop' && /^[a-z ]{5,12}$/.test(pc.message.content) && pc.message.tool_calls.length === 0,
          'auto (hermes): an answer without calls is content', plain.json);
    // The conversation goes on with the call and its result in the history.
    const history = [...messages, { role: 'assistant', content: null, tool_calls: [{ id: 'chatcmpl-tool-1', type: 'function',
                                    function: { name: 'get_weather', arguments: '{"city": "Oslo", "unit": "celsius"}' } }] },
                     { role: 'tool', tool_call_id: 'chatcmpl-tool-1', content: '{"temperature": 3}' }];
    const next = await client.chat.completions.create({ model: 'tiny', messages: history, tools, max_tokens: 5, temperature: 0 });
    check(next.choices.length === 1 && typeof next.choices[0].finish_reason === 'string', 'auto (hermes): a history with the call and its result', next);
  } finally {
    srv.kill('SIGTERM');
  }
  // Start-up checks, with vLLM's messages.
  const { spawnSync } = require('child_process');
  const noParser = spawnSync(bin, ['serve', '--model', model, '--port', '0', '--enable-auto-tool-choice'], { encoding: 'utf8', timeout: 60000 });
  check(noParser.status !== 0 && /--enable-auto-tool-choice requires --tool-call-parser/.test(noParser.stderr), 'auto without a parser: refused at start', noParser.stderr);
  const badParser = spawnSync(bin, ['serve', '--model', model, '--port', '0', '--tool-call-parser', 'nope'], { encoding: 'utf8', timeout: 60000 });
  check(badParser.status !== 0 && /invalid tool call parser: nope \(chose from \{ deepseek_v3, hermes, llama3_json \}\)/.test(badParser.stderr),
        'an unknown parser: refused at start', badParser.stderr);
}

main().then(autoTools).then(() => process.exit(harness.failed() ? 1 : 0), (e) => { console.error(e); process.exit(1); });
