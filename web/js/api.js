// REST client for the platform API (/api, same origin), with the API key kept in sessionStorage,
// and an SSE reader over fetch() (EventSource cannot send an Authorization header).

const KEY_STORAGE = 'infera.apiKey';
const NOAUTH_STORAGE = 'infera.noAuth';

export function getKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || '';
  } catch {
    return '';
  }
}

export function isSignedIn() {
  try {
    return !!sessionStorage.getItem(KEY_STORAGE) || sessionStorage.getItem(NOAUTH_STORAGE) === '1';
  } catch {
    return false;
  }
}

export function setKey(key, noAuth = false) {
  sessionStorage.setItem(KEY_STORAGE, key || '');
  if (noAuth) sessionStorage.setItem(NOAUTH_STORAGE, '1');
  else sessionStorage.removeItem(NOAUTH_STORAGE);
}

export function clearKey() {
  sessionStorage.removeItem(KEY_STORAGE);
  sessionStorage.removeItem(NOAUTH_STORAGE);
}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// Called when an authenticated call answers 401 (the key was revoked or expired).
let unauthorizedHandler = null;
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

function authHeaders(key) {
  const k = key === undefined ? getKey() : key;
  return k ? { Authorization: `Bearer ${k}` } : {};
}

async function errorFrom(res) {
  let text = '';
  try {
    text = await res.text();
  } catch {
    /* body unreadable */
  }
  let msg = '';
  let body = null;
  try {
    body = JSON.parse(text);
    if (body && typeof body.error === 'string') msg = body.error;
    else if (body && body.error && typeof body.error.message === 'string') msg = body.error.message;
  } catch {
    /* not JSON */
  }
  if (!msg) msg = text.trim() || `${res.status} ${res.statusText || 'error'}`;
  return new ApiError(res.status, msg, body);
}

// api('GET', '/deployments', undefined, {signal}) → parsed JSON (null for 204).
// Throws ApiError with the server's {"error": msg} verbatim.
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json', ...authHeaders(opts.key) };
  const init = { method, headers, signal: opts.signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`/api${path}`, init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'Cannot reach the platform. Check your connection and try again.');
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && !opts.noAuthRedirect && unauthorizedHandler) unauthorizedHandler(err);
    throw err;
  }
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body, opts) => api('POST', path, body === undefined ? {} : body, opts);
export const patch = (path, body, opts) => api('PATCH', path, body, opts);

// Fetch a text body with auth (logs download).
export async function getText(path, opts = {}) {
  const res = await fetch(`/api${path}`, { headers: authHeaders(), signal: opts.signal });
  if (!res.ok) throw await errorFrom(res);
  return res.text();
}

export function qs(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

// Parses an SSE byte stream. Calls onMessage({id, event, data}) per dispatched event.
export function createSseParser(onMessage) {
  let buf = '';
  let data = [];
  let event = '';
  let id = null;
  const dispatch = () => {
    if (data.length) onMessage({ id, event: event || 'message', data: data.join('\n') });
    data = [];
    event = '';
  };
  return {
    push(text) {
      buf += text;
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        const sepLen = buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1;
        // A lone '\r' at the very end may be the first half of '\r\n': wait for more.
        if (buf[nl] === '\r' && nl + 1 === buf.length) break;
        buf = buf.slice(nl + sepLen);
        if (line === '') {
          dispatch();
          continue;
        }
        if (line[0] === ':') continue; // comment (keep-alive)
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let value = c < 0 ? '' : line.slice(c + 1);
        if (value[0] === ' ') value = value.slice(1);
        if (field === 'data') data.push(value);
        else if (field === 'event') event = value;
        else if (field === 'id') id = value;
      }
    },
    end() {
      if (buf) this.push('\n');
      dispatch();
    },
  };
}

// Follows an SSE route with fetch() streaming and reconnects (with Last-Event-ID) until `signal`
// aborts or an `event: end` arrives. onEvent(parsedJson, {id, event}); onState('open'|'retry'|'end').
export function followSse(path, { signal, onEvent, onState, lastEventId = null, retryMs = 2000 } = {}) {
  let last = lastEventId;
  let ended = false;
  const run = async () => {
    while (!signal || !signal.aborted) {
      try {
        const headers = { Accept: 'text/event-stream', ...authHeaders() };
        if (last !== null && last !== undefined && last !== '') headers['Last-Event-ID'] = String(last);
        const res = await fetch(`/api${path}`, { headers, signal, cache: 'no-store' });
        if (!res.ok) {
          const err = await errorFrom(res);
          if (res.status === 401 && unauthorizedHandler) unauthorizedHandler(err);
          if (res.status === 401 || res.status === 404) {
            onState && onState('error', err);
            return;
          }
          throw err;
        }
        onState && onState('open');
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        const parser = createSseParser((m) => {
          if (m.id !== null && m.id !== undefined) last = m.id;
          if (m.event === 'end') {
            ended = true;
            return;
          }
          let obj;
          try {
            obj = JSON.parse(m.data);
          } catch {
            return;
          }
          try {
            onEvent && onEvent(obj, m);
          } catch (e) {
            console.error(e);
          }
        });
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.push(dec.decode(value, { stream: true }));
          if (ended) break;
        }
        parser.end();
        if (ended) {
          try {
            reader.cancel();
          } catch {
            /* already closed */
          }
          onState && onState('end');
          return;
        }
      } catch (e) {
        if (e && e.name === 'AbortError') return;
        if (signal && signal.aborted) return;
      }
      if (signal && signal.aborted) return;
      onState && onState('retry');
      await new Promise((r) => setTimeout(r, retryMs));
    }
  };
  return run();
}
