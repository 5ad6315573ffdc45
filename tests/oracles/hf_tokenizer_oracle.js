// Oracle: the real Hugging Face `tokenizers` (Rust, via @anush008/tokenizers) on JSON lines.
// stdin:  {"tokenizer": "/path/tokenizer.json", "text": "...", "add_special_tokens": false}
// stdout: {"ids": [...], "decoded": "..."}  (decoded = decode(ids, skip_special_tokens=true))
'use strict';
const { Tokenizer } = require('@anush008/tokenizers');
const readline = require('readline');

const cache = new Map();
function load(path) {
  if (!cache.has(path)) cache.set(path, Tokenizer.fromFile(path));
  return cache.get(path);
}

async function main() {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  const out = [];
  for await (const line of rl) {
    if (!line.trim()) continue;
    const req = JSON.parse(line);
    const tok = load(req.tokenizer);
    const enc = await tok.encode(req.text, null, { addSpecialTokens: !!req.add_special_tokens });
    const ids = enc.getIds();
    const decoded = await tok.decode(ids, true);
    out.push(JSON.stringify({ ids, decoded }));
  }
  process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
