// Shared pieces of the `infera serve` tests: ok/FAIL reporting, a server on a free loopback port,
// raw HTTP requests and SSE parsing.
'use strict';
const { spawn } = require('child_process');

let failures = 0;
function check(cond, what, extra) {
  if (cond) { console.log(`ok   ${what}`); return; }
  failures++;
  console.log(`FAIL ${what}${extra !== undefined ? ': ' + JSON.stringify(extra).slice(0, 600) : ''}`);
}
const failed = () => failures;

// `infera serve` on port 0; resolves once it prints the port it listens on.
function startServer(bin, model, extraArgs = []) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, ['serve', '--model', model, '--served-model-name', 'tiny', '--port', '0',
                          '--host', '127.0.0.1', '--max-model-len', '256', '--request-timeout', '2', ...extraArgs]);
    let log = '';
    p.stderr.on('data', (d) => {
      log += d.toString();
      const m = log.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && !p.port) { p.port = Number(m[1]); p.log = () => log; resolve(p); }
    });
    p.on('exit', (code) => { if (!p.port) reject(new Error(`server exited ${code}: ${log}`)); });
  });
}

async function raw(port, method, urlPath, body, headers = {}) {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, {
    method, body, headers: { 'content-type': 'application/json', ...headers } });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) {}
  return { status: res.status, text, json, headers: res.headers };
}

// POST a streaming request; resolves with the parsed `data:` events (the final "[DONE]" as a string).
async function sse(port, urlPath, body) {
  const r = await raw(port, 'POST', urlPath, JSON.stringify({ ...body, stream: true }));
  return r.text.split('\n\n').filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6)).map((d) => (d === '[DONE]' ? d : JSON.parse(d)));
}

module.exports = { check, failed, startServer, raw, sse };
