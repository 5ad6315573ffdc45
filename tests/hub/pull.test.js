// `infera pull` against a loopback Hub (fake_hub.js): the cache layout, file choice, gated and missing
// repositories, retries on 429/5xx, a cut connection, kill -9 and resume, a corrupted byte, two pulls
// at once, offline mode, --local-dir, a cache laid out by another tool, and the loader reading what
// landed.
//
// Usage: node tests/hub/pull.test.js <infera binary> <fixtures/models dir>
// Only node built-ins; every case gets a fresh cache under one temp root, removed at exit.
'use strict';
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FakeHub, makeRepo, repoFromDir } = require('./fake_hub.js');

const BIN = process.argv[2];
const MODELS = process.argv[3];
if (!BIN || !MODELS || !fs.existsSync(BIN) || !fs.existsSync(path.join(MODELS, 'tiny-qwen2-hf'))) {
  console.error('usage: node tests/hub/pull.test.js <infera binary> <tests/fixtures/models>');
  process.exit(2);
}

const ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'infera-pull-'));
const live = new Set();
process.on('exit', () => {
  for (const p of live) try { p.kill('SIGKILL'); } catch (_) { /* gone */ }
  fs.rmSync(ROOT, { recursive: true, force: true });
});
setTimeout(() => { console.error('pull.test.js: global timeout'); process.exit(1); }, 170_000).unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, fn, { timeout = 30_000, interval = 20 } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(interval);
  }
}

let n = 0;
const freshCache = () => fs.mkdtempSync(path.join(ROOT, `cache${++n}-`));

// Starts `infera pull ...`; resolves {code, signal, stdout, stderr}. env: extra variables.
function startPull(hub, cache, args, env = {}) {
  const e = { ...process.env, HF_HUB_CACHE: cache, HF_ENDPOINT: hub ? hub.url : 'http://127.0.0.1:9', ...env };
  for (const k of ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_HUB_OFFLINE', 'HF_HOME'])
    if (!(k in env)) delete e[k];
  const proc = spawn(BIN, ['pull', ...args], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let stdout = '', stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  proc.done = new Promise((resolve) => proc.on('close', (code, signal) => {
    live.delete(proc);
    resolve({ code, signal, stdout: stdout.trim(), stderr });
  }));
  return proc;
}
const pull = (hub, cache, args, env) => startPull(hub, cache, args, env).done;

function run(args) {
  return new Promise((resolve) => {
    const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { err += d; });
    proc.on('close', (code) => resolve({ code, stdout: out, stderr: err }));
  });
}

const hfFiles = () => {
  const dir = path.join(MODELS, 'tiny-qwen2-hf');
  const files = {};
  for (const f of fs.readdirSync(dir)) files[f] = fs.readFileSync(path.join(dir, f));
  return files;
};
const repoDir = (cache, id) => path.join(cache, `models--${id.replace('/', '--')}`);
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

// Checks the standard layout for `repo` at `id`; returns the snapshot folder.
function checkLayout(cache, id, repo, names) {
  const root = repoDir(cache, id);
  assert.equal(fs.readFileSync(path.join(root, 'refs', 'main'), 'utf8'), repo.sha, 'refs/main holds the commit');
  const snap = path.join(root, 'snapshots', repo.sha);
  assert.deepEqual(fs.readdirSync(snap).sort(), [...names].sort(), 'snapshot files');
  for (const name of names) {
    const e = repo.entries[name];
    const link = path.join(snap, name);
    const etag = e.lfs ? e.sha256 : e.blobId;
    assert.ok(fs.lstatSync(link).isSymbolicLink(), `${name} is a symlink`);
    assert.equal(fs.readlinkSync(link), '../'.repeat(2 + name.split('/').length - 1) + `blobs/${etag}`, `${name} link`);
    const got = fs.readFileSync(link);
    assert.equal(got.length, e.size);
    if (e.data) assert.ok(got.equals(e.data), `${name} content`);
  }
  const leftovers = fs.readdirSync(path.join(root, 'blobs')).filter((f) => /incomplete|tmp/.test(f));
  assert.deepEqual(leftovers, [], 'no partial files left in blobs/');
  return snap;
}

describe('infera pull', () => {
  const hub = new FakeHub();
  let model;  // the tiny HF model plus files a model-folder pull must skip
  let big;    // 6 MB of random bytes (resume, kill -9, concurrency)
  const bigData = crypto.randomBytes(6 << 20);
  before(async () => {
    await hub.start();
    model = hub.addRepo('acme/tiny-qwen2', makeRepo({ ...hfFiles(), 'README.md': Buffer.from('# tiny\n'),
      'pytorch_model.bin': Buffer.alloc(4096, 1), 'onnx/model.onnx': Buffer.alloc(100, 2) }));
    big = hub.addRepo('acme/big', makeRepo({ 'config.json': Buffer.from('{"a": 1}\n'), 'model.safetensors': bigData }));
  });
  after(() => hub.close());

  it('pulls an HF model folder into the standard cache layout, and the loader runs it', async () => {
    const cache = freshCache();
    const from = hub.log.length;
    const r = await pull(hub, cache, ['acme/tiny-qwen2']);
    assert.equal(r.code, 0, r.stderr);
    const names = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
    const snap = checkLayout(cache, 'acme/tiny-qwen2', model, names);
    assert.equal(r.stdout, snap, 'prints the folder serve --model takes');
    const cdn = hub.log.slice(from).filter((l) => l.url.startsWith('/cdn/'));
    assert.ok(cdn.some((l) => l.file === 'model.safetensors' && l.status === 206), 'LFS bytes came from the CDN redirect');
    assert.ok(!hub.log.slice(from).some((l) => /pytorch_model|onnx|README/.test(l.url)), 'other weight formats skipped');
    const g = await run(['run', '--model', r.stdout, '--token-ids', '1 2 3', '-n', '2', '--seed', '1']);
    assert.equal(g.code, 0, g.stderr);
    // Again: nothing is fetched, only the file list asked.
    const again = hub.log.length;
    const r2 = await pull(hub, cache, ['acme/tiny-qwen2']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(hub.log.slice(again).map((l) => l.url.split('?')[0]), ['/api/models/acme/tiny-qwen2/revision/main']);
  });

  it('reuses a cache written by another Hugging Face tool', async () => {
    const cache = freshCache();
    const root = repoDir(cache, 'acme/big');
    fs.mkdirSync(path.join(root, 'blobs'), { recursive: true });
    fs.mkdirSync(path.join(root, 'snapshots', big.sha), { recursive: true });
    const e = big.entries['model.safetensors'];
    fs.writeFileSync(path.join(root, 'blobs', e.sha256), bigData);
    fs.symlinkSync(`../../blobs/${e.sha256}`, path.join(root, 'snapshots', big.sha, 'model.safetensors'));
    const from = hub.log.length;
    const r = await pull(hub, cache, ['acme/big']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(hub.sentOf('model.safetensors', from), 0, 'the cached blob is not fetched again');
    checkLayout(cache, 'acme/big', big, ['config.json', 'model.safetensors']);
  });

  it('names HF_TOKEN for a gated repository, and pulls it with the token', async () => {
    hub.addRepo('acme/gated', makeRepo({ 'config.json': Buffer.from('{}'), 'model.safetensors': Buffer.alloc(1000, 3) }, { gated: true }));
    const cache = freshCache();
    const r = await pull(hub, cache, ['acme/gated']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /acme\/gated.*gated or private.*HF_TOKEN/);
    const ok = await pull(hub, cache, ['acme/gated'], { HF_TOKEN: hub.token });
    assert.equal(ok.code, 0, ok.stderr);
    const bad = await pull(hub, freshCache(), ['acme/gated'], { HF_TOKEN: 'hf_wrong' });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /refused the token in HF_TOKEN/);
  });

  it('says what is missing: repository, revision, quantization', async () => {
    const cache = freshCache();
    const r = await pull(hub, cache, ['acme/nope'], { HF_TOKEN: hub.token });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /acme\/nope.*not found/);
    const rev = await pull(hub, cache, ['acme/big', '--revision', 'v9']);
    assert.equal(rev.code, 1);
    assert.match(rev.stderr, /revision not found/);
    const bad = await pull(hub, cache, ['not-a-repo']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not a Hub repository id/);
  });

  it('retries 429 (honouring Retry-After) and 5xx answers, then succeeds', async () => {
    const cache = freshCache();
    hub.fault('__api__', { kind: 'status', code: 503 });
    hub.fault('model.safetensors', { kind: 'status', code: 429, retryAfter: 1 });
    hub.fault('model.safetensors', { kind: 'status', code: 502 });
    const t0 = Date.now();
    const r = await pull(hub, cache, ['acme/big']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /HTTP 503 .*retrying/);
    assert.match(r.stderr, /HTTP 429 .*retrying in 1\.0 s/);
    assert.match(r.stderr, /HTTP 502 .*retrying/);
    assert.ok(Date.now() - t0 >= 1000, 'waited the Retry-After second');
    checkLayout(cache, 'acme/big', big, ['config.json', 'model.safetensors']);
  });

  it('resumes with a Range request at the byte where the connection was cut', async () => {
    const cache = freshCache();
    const cut = 1_234_567;
    hub.fault('model.safetensors', { kind: 'cut', at: cut });
    const from = hub.log.length;
    const r = await pull(hub, cache, ['acme/big']);
    assert.equal(r.code, 0, r.stderr);
    const reqs = hub.log.slice(from).filter((l) => l.file === 'model.safetensors');
    assert.equal(reqs.length, 2, JSON.stringify(reqs));
    assert.equal(reqs[0].range, `bytes=0-${bigData.length - 1}`);
    assert.equal(reqs[0].sent, cut);
    assert.equal(reqs[1].range, `bytes=${cut}-${bigData.length - 1}`, 'the second request starts at the cut');
    assert.equal(hub.sentOf('model.safetensors', from), bigData.length, 'no byte fetched twice');
    assert.match(r.stderr, /at byte 1234567; retrying/);
    checkLayout(cache, 'acme/big', big, ['config.json', 'model.safetensors']);
  });

  it('after kill -9 of a pull, the next one fetches only the bytes not yet on disk', async () => {
    const cache = freshCache();
    const e = big.entries['model.safetensors'];
    const partial = path.join(repoDir(cache, 'acme/big'), 'blobs', `${e.sha256}.incomplete`);
    hub.bytesPerSecond = 2 << 20;  // a slow link: 2 MB/s over 3 connections of 1 MB chunks
    const from = hub.log.length;
    const p = startPull(hub, cache, ['acme/big', '--connections', '3', '--chunk-mb', '1']);
    const chunkBytes = () => {  // per chunk, the bytes the pull has recorded as on disk
      try {
        return fs.readFileSync(`${partial}.ranges`, 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(' ')[1]));
      } catch (_) { return []; }
    };
    const recorded = () => chunkBytes().reduce((a, b) => a + b, 0);
    await waitFor('2.5 MB on disk and a chunk half done', () =>
      recorded() >= 2.5 * (1 << 20) && chunkBytes().some((b) => b % (1 << 20) !== 0));
    p.kill('SIGKILL');
    const killed = await p.done;
    assert.equal(killed.signal, 'SIGKILL');
    hub.bytesPerSecond = 0;
    const kept = recorded();
    assert.ok(fs.existsSync(partial), 'the .incomplete file survives');
    const firstRun = hub.sentOf('model.safetensors', from);
    const second = hub.log.length;
    const r = await pull(hub, cache, ['acme/big', '--connections', '3', '--chunk-mb', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /resuming model\.safetensors of acme\/big at \d+ of 6291456 bytes/);
    const again = hub.sentOf('model.safetensors', second);
    assert.equal(again, bigData.length - kept, `second run fetched only the missing bytes (kept ${kept}, first run sent ${firstRun})`);
    assert.ok(hub.log.slice(second).some((l) => l.file === 'model.safetensors' && l.start % (1 << 20) !== 0),
      `a chunk resumed in its middle: ${JSON.stringify(hub.log.slice(second).filter((l) => l.file))}`);
    checkLayout(cache, 'acme/big', big, ['config.json', 'model.safetensors']);
  });

  it('detects a corrupted byte by sha256 and fetches the file again; fails clearly when it stays corrupted', async () => {
    const cache = freshCache();
    hub.fault('model.safetensors', { kind: 'corrupt', at: 4321 });
    const from = hub.log.length;
    const r = await pull(hub, cache, ['acme/big']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /sha256 mismatch .*fetching it again/);
    assert.equal(hub.sentOf('model.safetensors', from), 2 * bigData.length);
    checkLayout(cache, 'acme/big', big, ['config.json', 'model.safetensors']);

    const cache2 = freshCache();
    hub.fault('model.safetensors', { kind: 'corrupt', at: 1 });
    hub.fault('model.safetensors', { kind: 'corrupt', at: 2 });
    const bad = await pull(hub, cache2, ['acme/big']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /model\.safetensors of acme\/big: sha256 mismatch twice/);
    const blobs = fs.readdirSync(path.join(repoDir(cache2, 'acme/big'), 'blobs'));
    assert.ok(!blobs.includes(big.entries['model.safetensors'].sha256), 'no corrupted blob becomes visible');
    // A small (non-LFS) file is checked against its git blob id.
    hub.fault('config.json', { kind: 'corrupt', at: 0 });
    const small = await pull(hub, freshCache(), ['acme/big']);
    assert.equal(small.code, 0, small.stderr);
    assert.match(small.stderr, /config\.json of acme\/big: git sha1 mismatch/);
  });

  it('two pulls of the same repository at once neither corrupt nor duplicate', async () => {
    const cache = freshCache();
    hub.bytesPerSecond = 4 << 20;  // 1.5 s for the big file: the two pulls overlap
    const from = hub.log.length;
    const a = startPull(hub, cache, ['acme/big']);
    const b = startPull(hub, cache, ['acme/big']);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    hub.bytesPerSecond = 0;
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(ra.stdout, rb.stdout);
    assert.equal(hub.sentOf('model.safetensors', from), bigData.length, 'the blob was fetched once');
    assert.match(ra.stderr + rb.stderr, /waiting for another download of model\.safetensors/);
    checkLayout(cache, 'acme/big', big, ['config.json', 'model.safetensors']);
  });

  it('refuses to start when the disk cannot hold the files', async () => {
    hub.addRepo('acme/huge', makeRepo({ 'config.json': Buffer.from('{}'), 'model.safetensors': Buffer.alloc(10) },
      { claimSize: { 'model.safetensors': 2 ** 52 } }));
    const r = await pull(hub, freshCache(), ['acme/huge']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not enough disk space in .*: the pull needs 4504 TB more/);
  });

  it('HF_HUB_OFFLINE=1 uses the cache without the network, and fails clearly when a file is absent', async () => {
    const cache = freshCache();
    const r = await pull(hub, cache, ['acme/tiny-qwen2']);
    assert.equal(r.code, 0, r.stderr);
    const off = await pull(null, cache, ['acme/tiny-qwen2'], { HF_HUB_OFFLINE: '1' });
    assert.equal(off.code, 0, off.stderr);
    assert.equal(off.stdout, r.stdout);
    const missing = await pull(null, cache, ['acme/big'], { HF_HUB_OFFLINE: '1' });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /HF_HUB_OFFLINE is set and acme\/big \(revision main\) is not in the Hugging Face cache/);
    const noQuant = await pull(null, cache, ['acme/tiny-qwen2', '--quant', 'Q4_K_M'], { HF_HUB_OFFLINE: '1' });
    assert.equal(noQuant.code, 1);
    assert.match(noQuant.stderr, /HF_HUB_OFFLINE is set and the cached snapshot of acme\/tiny-qwen2 .* lacks the requested files/);
  });

  it('--quant picks one GGUF quantization, all parts of a split set; the loader runs the pick', async () => {
    const q8 = fs.readFileSync(path.join(MODELS, 'tiny-qwen2-q8_0.gguf'));
    const repo = hub.addRepo('acme/tiny-GGUF', makeRepo({
      'README.md': Buffer.from('# gguf\n'),
      'tiny-Q8_0.gguf': q8,
      'tiny-Q4_K_M.gguf': fs.readFileSync(path.join(MODELS, 'tiny-qwen2-q4_k_m.gguf')),
      'Q2_K/tiny-Q2_K-00001-of-00002.gguf': Buffer.alloc(3000, 7),
      'Q2_K/tiny-Q2_K-00002-of-00002.gguf': Buffer.alloc(2000, 8),
      'BF16/tiny-BF16-00001-of-00002.gguf': Buffer.alloc(10, 9),
    }));
    const cache = freshCache();
    const r = await pull(hub, cache, ['acme/tiny-GGUF', '--quant', 'q8_0']);
    assert.equal(r.code, 0, r.stderr);
    const snap = path.join(repoDir(cache, 'acme/tiny-GGUF'), 'snapshots', repo.sha);
    assert.equal(r.stdout, path.join(snap, 'tiny-Q8_0.gguf'));
    assert.deepEqual(fs.readdirSync(snap), ['tiny-Q8_0.gguf']);
    const g = await run(['run', '--model', r.stdout, '--token-ids', '1 2 3', '-n', '2', '--seed', '1']);
    assert.equal(g.code, 0, g.stderr);

    const split = await pull(hub, cache, ['acme/tiny-GGUF', '--quant', 'Q2_K']);
    assert.equal(split.code, 0, split.stderr);
    assert.equal(split.stdout, path.join(snap, 'Q2_K/tiny-Q2_K-00001-of-00002.gguf'));
    assert.deepEqual(fs.readdirSync(path.join(snap, 'Q2_K')).sort(), ['tiny-Q2_K-00001-of-00002.gguf', 'tiny-Q2_K-00002-of-00002.gguf']);
    assert.equal(fs.readlinkSync(path.join(snap, 'Q2_K/tiny-Q2_K-00002-of-00002.gguf')),
      `../../../blobs/${repo.entries['Q2_K/tiny-Q2_K-00002-of-00002.gguf'].sha256}`);

    const none = await pull(hub, cache, ['acme/tiny-GGUF']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /holds GGUF files: choose one quantization with --quant \(available: BF16, Q2_K, Q4_K_M, Q8_0\)/);
    const absent = await pull(hub, cache, ['acme/tiny-GGUF', '--quant', 'Q5_K_S']);
    assert.equal(absent.code, 1);
    assert.match(absent.stderr, /no GGUF file for quantization Q5_K_S/);
    const incomplete = await pull(hub, cache, ['acme/tiny-GGUF', '--quant', 'bf16']);
    assert.equal(incomplete.code, 1);
    assert.match(incomplete.stderr, /split GGUF set .* is incomplete/);
  });

  it('--include and --local-dir: plain files in a folder, kept current by metadata', async () => {
    const dir = path.join(ROOT, 'local');
    const r = await pull(hub, freshCache(), ['--include', '*.json', 'acme/tiny-qwen2', '--local-dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, dir);
    const files = fs.readdirSync(dir).filter((f) => !f.startsWith('.')).sort();
    assert.deepEqual(files, ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']);
    assert.ok(!fs.lstatSync(path.join(dir, 'config.json')).isSymbolicLink());
    const meta = fs.readFileSync(path.join(dir, '.cache/huggingface/download/config.json.metadata'), 'utf8').split('\n');
    assert.equal(meta[0], model.sha);
    assert.equal(meta[1], model.entries['config.json'].blobId);
    const from = hub.log.length;
    const again = await pull(hub, freshCache(), ['acme/tiny-qwen2', '--include', '*.json', '--local-dir', dir]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(hub.log.slice(from).filter((l) => l.file).length, 0, 'nothing fetched again');
  });
});
