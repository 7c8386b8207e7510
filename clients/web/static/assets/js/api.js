// api.js — the panel's only way to the gateway: JSON calls and newline-delimited JSON
// streams (fetch + ReadableStream), with the bearer token from sessionStorage.

const TOKEN_KEY = 'genailab.token';

/** ApiError is a failed call: HTTP status (0 for network errors) and the server's message. */
export class ApiError extends Error {
  constructor(status, message, what) {
    super(what ? `${what}: ${message}` : message);
    this.name = 'ApiError';
    this.status = status;
    this.serverMessage = message;
  }
}

let unauthorizedHandler = () => {};

/** onUnauthorized registers what to do on a 401 (ask for the token). */
export function onUnauthorized(fn) { unauthorizedHandler = fn; }

export function getToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

export function setToken(t) {
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token lives only for this call */ }
}

function headers(hasBody) {
  const h = { Accept: 'application/json' };
  if (hasBody) h['Content-Type'] = 'application/json';
  const t = getToken();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

// errorMessage extracts the message of {"error": "..."} or {"error": {"message": ...}}.
function errorMessage(obj, fallback) {
  if (obj && typeof obj === 'object') {
    const e = obj.error;
    if (typeof e === 'string' && e) return e;
    if (e && typeof e === 'object' && typeof e.message === 'string' && e.message) return e.message;
    if (typeof obj.message === 'string' && obj.message) return obj.message;
  }
  return fallback;
}

async function send(method, path, body, signal) {
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
    });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, `cannot reach the gateway (${err && err.message ? err.message : err})`, `${method} ${path}`);
  }
  if (!resp.ok) {
    let msg = `${resp.status} ${resp.statusText}`;
    try {
      const text = await resp.text();
      try { msg = errorMessage(JSON.parse(text), msg); } catch { if (text.trim()) msg = text.trim().slice(0, 300); }
    } catch { /* body unreadable: keep the status line */ }
    if (resp.status === 401) unauthorizedHandler(msg);
    throw new ApiError(resp.status, msg, `${method} ${path} (${resp.status})`);
  }
  return resp;
}

/** call makes one JSON request and returns the decoded answer. */
export async function call(method, path, body, { signal } = {}) {
  const resp = await send(method, path, body, signal);
  const text = await resp.text();
  if (!text) return {};
  try { return JSON.parse(text); } catch {
    throw new ApiError(resp.status, 'the gateway answered something that is not JSON', `${method} ${path}`);
  }
}

export const get = (path, opts) => call('GET', path, undefined, opts);
export const post = (path, body = {}, opts) => call('POST', path, body, opts);
export const del = (path, opts) => call('DELETE', path, undefined, opts);

/**
 * stream sends a request whose answer is newline-delimited JSON ({"result": ...} per line,
 * or {"error": ...}) and calls onMessage for each result as it arrives. It resolves when the
 * server ends the stream and rejects with ApiError on an error line; an abort (signal)
 * rejects with an AbortError.
 */
export async function stream(method, path, body, onMessage, { signal } = {}) {
  const resp = await send(method, path, body, signal);
  if (!resp.body) throw new ApiError(resp.status, 'the browser gave no response body to read', `${method} ${path}`);
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  const handle = (line) => {
    if (!line.trim()) return;
    let obj;
    try { obj = JSON.parse(line); } catch {
      throw new ApiError(resp.status, `bad stream line: ${line.slice(0, 200)}`, `${method} ${path}`);
    }
    if (obj.error !== undefined) throw new ApiError(resp.status, errorMessage(obj, 'stream failed'), `${method} ${path}`);
    onMessage(obj.result !== undefined ? obj.result : obj);
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        handle(line);
      }
    }
    buf += decoder.decode();
    handle(buf);
  } catch (err) {
    try { await reader.cancel(); } catch { /* already closed */ }
    if (err && err.name === 'AbortError') throw err;
    if (err instanceof ApiError) throw err;
    if (signal && signal.aborted) { const e = new Error('aborted'); e.name = 'AbortError'; throw e; }
    throw new ApiError(0, `stream broken (${err && err.message ? err.message : err})`, `${method} ${path}`);
  }
}

/** isAbort tells whether err is the result of aborting a request on purpose. */
export function isAbort(err) { return !!err && err.name === 'AbortError'; }

/**
 * follow keeps a long-lived stream open: it (re)connects with backoff while the signal is not
 * aborted, calls onOpen before each connection (to reset state), onMessage per message, and
 * onState('live' | 'reconnecting', err) when the connection state changes.
 */
export function follow(path, onMessage, { signal, onState = () => {}, onOpen = () => {} } = {}) {
  let delay = 500;
  (async () => {
    while (!signal.aborted) {
      let got = false;
      try {
        onOpen();
        await stream('GET', path, undefined, (m) => {
          if (!got) { got = true; delay = 500; onState('live'); }
          onMessage(m);
        }, { signal });
        if (signal.aborted) break;
        onState('reconnecting', new ApiError(0, 'the server closed the stream', `GET ${path}`));
      } catch (err) {
        if (isAbort(err) || signal.aborted) break;
        onState('reconnecting', err);
      }
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 10000);
    }
    // Aborted on purpose (tab hidden): no state change is reported, a newer stream may be live.
  })();
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

/** q builds a query string from an object, skipping undefined and empty values. */
export function q(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, String(x))); else u.append(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}
