// A loopback Hugging Face Hub for the pull tests: the endpoints and headers huggingface_hub relies on,
// plus fault injection. Only node built-ins.
//
//   GET  /api/models/{org}/{name}/revision/{rev}[?blobs=true]   {id, sha, siblings: [{rfilename, size, blobId, lfs}]}
//   GET|HEAD /{org}/{name}/resolve/{rev}/{path}
//        LFS file:   302 to /cdn/{sha256} with X-Repo-Commit, X-Linked-Etag, X-Linked-Size, ETag
//        small file: 200 (or 206 for a Range) with ETag = git blob sha1, X-Repo-Commit
//   GET  /cdn/{sha256}                                        the bytes; Range -> 206 + Content-Range
//
// A gated repository answers 401 (X-Error-Code: GatedRepo) without `Authorization: Bearer <token>`;
// an unknown one 401 RepoNotFound without a token and 404 with one; an unknown revision 404 RevisionNotFound.
//
// Faults, queued per file path and used one per content request of that file:
//   {kind: 'status', code: 503, retryAfter: 1}   an error status (429, 5xx), optionally with Retry-After
//   {kind: 'cut', at: N}                         sends the answer up to byte N of the file, then drops the connection
//   {kind: 'corrupt', at: N}                     flips one byte at file offset N in this answer
// hub.bytesPerSecond throttles every content answer (a slow link); 0 = unthrottled.
// hub.log lists every request: {method, url, range, status, sent}.
//
// As a program: node fake_hub.js --port P --repo org/name=DIR [--repo ...]  (serves DIR's files, prints the URL)
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

function gitBlobSha1(buf) {
  return crypto.createHash('sha1').update(`blob ${buf.length}\0`).update(buf).digest('hex');
}

function sha256File(file) {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(8 << 20);
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n <= 0) break;
    h.update(buf.subarray(0, n));
  }
  fs.closeSync(fd);
  return h.digest('hex');
}

const LFS_RE = /\.(safetensors|gguf|bin|pt|h5|msgpack|onnx)$/;

// files: {relpath: Buffer | {file: diskPath}}; returns the repo record the server uses.
function makeRepo(files, { gated = false, commit = null, claimSize = {} } = {}) {
  const entries = {};
  for (const [name, v] of Object.entries(files)) {
    const e = { name };
    if (Buffer.isBuffer(v)) {
      e.data = v;
      e.size = v.length;
    } else {
      e.file = v.file;
      e.size = fs.statSync(v.file).size;
    }
    e.lfs = LFS_RE.test(name) || e.size > (1 << 20);
    if (e.lfs) e.sha256 = e.data ? crypto.createHash('sha256').update(e.data).digest('hex') : (v.sha256 || sha256File(e.file));
    e.blobId = e.data ? gitBlobSha1(e.data) : crypto.createHash('sha1').update(name).digest('hex');  // LFS: the pointer's id
    if (claimSize[name] !== undefined) e.claimedSize = claimSize[name];
    entries[name] = e;
  }
  const sha = commit || crypto.createHash('sha1').update(JSON.stringify(Object.keys(entries).sort()) + Math.random()).digest('hex');
  return { gated, sha, entries };
}

function repoFromDir(dir, opts) {
  const files = {};
  const walk = (d, prefix) => {
    for (const n of fs.readdirSync(d).sort()) {
      const p = path.join(d, n);
      if (fs.statSync(p).isDirectory()) walk(p, prefix + n + '/');
      else files[prefix + n] = fs.statSync(p).size > (64 << 20) ? { file: p } : fs.readFileSync(p);
    }
  };
  walk(dir, '');
  return makeRepo(files, opts);
}

class FakeHub {
  constructor() {
    this.repos = new Map();      // "org/name" -> repo
    this.faults = new Map();     // file path -> [fault, ...]
    this.token = 'hf_test_token';
    this.bytesPerSecond = 0;
    this.log = [];
    this.sockets = new Set();
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
  }
  async start(port = 0) {
    await new Promise((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }
  async close() {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
  addRepo(id, repo) { this.repos.set(id, repo); return repo; }
  fault(file, f) {
    if (!this.faults.has(file)) this.faults.set(file, []);
    this.faults.get(file).push(f);
  }
  // Bytes of `file` sent in content answers since log index `from`.
  sentOf(file, from = 0) {
    return this.log.slice(from).filter((l) => l.file === file).reduce((a, l) => a + l.sent, 0);
  }

  record(req, status, extra = {}) {
    const entry = { method: req.method, url: req.url, range: req.headers.range || null, status, sent: 0, ...extra };
    this.log.push(entry);
    return entry;
  }

  authorised(req) { return req.headers.authorization === `Bearer ${this.token}`; }

  deny(req, res, repo) {
    const code = repo ? 'GatedRepo' : 'RepoNotFound';
    const status = repo || !this.authorised(req) ? 401 : 404;
    this.record(req, status);
    res.writeHead(status, { 'X-Error-Code': code, 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: repo ? 'Access to this model is restricted. You must be authenticated.' : 'Repository not found' }));
  }

  handle(req, res) {
    const u = new URL(req.url, 'http://x');
    let m = u.pathname.match(/^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/);
    if (m) return this.info(req, res, m[1], decodeURIComponent(m[2]), u.searchParams.get('blobs') === 'true');
    m = u.pathname.match(/^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/);
    if (m) return this.resolve(req, res, m[1], decodeURIComponent(m[2]), decodeURIComponent(m[3]));
    m = u.pathname.match(/^\/cdn\/([0-9a-f]{64})$/);
    if (m) {
      for (const repo of this.repos.values())
        for (const e of Object.values(repo.entries))
          if (e.sha256 === m[1]) return this.content(req, res, e, { ETag: `"${e.sha256}"` });
    }
    this.record(req, 404);
    res.writeHead(404, { 'X-Error-Code': 'EntryNotFound' });
    res.end('not found');
  }

  info(req, res, id, rev, blobs) {
    const repo = this.repos.get(id);
    if (!repo || (repo.gated && !this.authorised(req))) return this.deny(req, res, repo);
    if (rev !== 'main' && rev !== repo.sha) {
      this.record(req, 404);
      res.writeHead(404, { 'X-Error-Code': 'RevisionNotFound' });
      return res.end(JSON.stringify({ error: `Invalid rev id: ${rev}` }));
    }
    const siblings = Object.values(repo.entries).map((e) => {
      const s = { rfilename: e.name };
      if (blobs) {
        const size = e.claimedSize !== undefined ? e.claimedSize : e.size;
        s.size = size;
        s.blobId = e.blobId;
        if (e.lfs) s.lfs = { sha256: e.sha256, size, pointerSize: 134 };
      }
      return s;
    });
    const fault = this.takeFault('__api__');
    if (fault && fault.kind === 'status') return this.failWith(req, res, fault, null);
    this.record(req, 200);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ id, modelId: id, sha: repo.sha, private: false, gated: repo.gated ? 'manual' : false, siblings }));
  }

  resolve(req, res, id, rev, file) {
    const repo = this.repos.get(id);
    if (!repo || (repo.gated && !this.authorised(req))) return this.deny(req, res, repo);
    if (rev !== 'main' && rev !== repo.sha) {
      this.record(req, 404);
      res.writeHead(404, { 'X-Error-Code': 'RevisionNotFound' });
      return res.end();
    }
    const e = repo.entries[file];
    if (!e) {
      this.record(req, 404);
      res.writeHead(404, { 'X-Error-Code': 'EntryNotFound' });
      return res.end();
    }
    if (e.lfs) {
      this.record(req, 302);
      res.writeHead(302, {
        Location: `/cdn/${e.sha256}?expires=3600`, 'X-Repo-Commit': repo.sha, 'X-Linked-Etag': `"${e.sha256}"`,
        'X-Linked-Size': String(e.size), ETag: `"${e.blobId}"`, 'Content-Length': '0',
      });
      return res.end();
    }
    return this.content(req, res, e, { ETag: `"${e.blobId}"`, 'X-Repo-Commit': repo.sha });
  }

  takeFault(name) {
    const q = this.faults.get(name);
    return q && q.length ? q.shift() : null;
  }

  failWith(req, res, fault, file) {
    this.record(req, fault.code, { file });
    const h = {};
    if (fault.retryAfter !== undefined) h['Retry-After'] = String(fault.retryAfter);
    res.writeHead(fault.code, h);
    res.end('try later');
  }

  content(req, res, e, headers) {
    const fault = this.takeFault(e.name);
    if (fault && fault.kind === 'status') return this.failWith(req, res, fault, e.name);
    let start = 0, end = e.size - 1, status = 200;
    const r = req.headers.range && req.headers.range.match(/^bytes=(\d+)-(\d*)$/);
    if (r) {
      start = Number(r[1]);
      end = r[2] ? Math.min(Number(r[2]), e.size - 1) : e.size - 1;
      if (start >= e.size || start > end) {
        this.record(req, 416, { file: e.name });
        res.writeHead(416, { 'Content-Range': `bytes */${e.size}` });
        return res.end();
      }
      status = 206;
    }
    const entry = this.record(req, status, { file: e.name, start });
    const h = { ...headers, 'Accept-Ranges': 'bytes', 'Content-Length': String(end - start + 1),
      'Content-Type': 'application/octet-stream' };
    if (status === 206) h['Content-Range'] = `bytes ${start}-${end}/${e.size}`;
    res.writeHead(status, h);
    if (req.method === 'HEAD') return res.end();
    const cutAt = fault && fault.kind === 'cut' ? fault.at : Infinity;
    const corruptAt = fault && fault.kind === 'corrupt' ? fault.at : -1;
    this.stream(res, e, start, end + 1, cutAt, corruptAt, entry);
  }

  // Sends [pos, stop) of the entry in pieces, honouring the throttle, a cut and a corrupt byte.
  stream(res, e, pos, stop, cutAt, corruptAt, entry) {
    const fd = e.file ? fs.openSync(e.file, 'r') : null;
    const piece = 1 << 20;
    const t0 = Date.now();
    let sent = 0;
    let open = fd !== null;
    const finish = () => { if (open) { open = false; fs.closeSync(fd); } };
    const next = () => {
      if (res.destroyed) return finish();
      const limit = Math.min(stop, cutAt);
      if (pos >= limit) {
        finish();
        if (limit < stop) res.socket.end();  // FIN before the promised length: a cut
        else res.end();
        return;
      }
      let n = Math.min(piece, limit - pos);
      if (this.bytesPerSecond) n = Math.min(n, Math.max(1024, Math.floor(this.bytesPerSecond / 20)));
      let buf;
      if (fd !== null) {
        buf = Buffer.allocUnsafe(n);
        fs.readSync(fd, buf, 0, n, pos);
      } else {
        buf = Buffer.from(e.data.subarray(pos, pos + n));
      }
      if (corruptAt >= pos && corruptAt < pos + n) buf[corruptAt - pos] ^= 0xff;
      pos += n;
      sent += n;
      entry.sent = sent;
      const go = () => {
        if (!this.bytesPerSecond) return next();
        const due = t0 + (sent / this.bytesPerSecond) * 1000;
        setTimeout(next, Math.max(0, due - Date.now()));
      };
      if (res.write(buf)) go(); else res.once('drain', go);
    };
    res.on('close', finish);
    next();
  }
}

module.exports = { FakeHub, makeRepo, repoFromDir, gitBlobSha1 };

if (require.main === module) {
  const args = process.argv.slice(2);
  const hub = new FakeHub();
  let port = 0;
  for (let i = 0; i < args.length; ++i) {
    if (args[i] === '--port') port = Number(args[++i]);
    else if (args[i] === '--repo') {
      const [id, dir] = args[++i].split('=');
      hub.addRepo(id, repoFromDir(dir));
    } else if (args[i] === '--token') hub.token = args[++i];
  }
  hub.start(port).then(() => console.log(hub.url));
}
