// Talking to the agent: only its public /v1 HTTP API, with the token from
// local storage in X-Consul-Token. `Watch` runs a blocking query
// (`?index=`) in a loop: it waits on the server instead of polling, backs
// off exponentially on errors, and stops while the tab is hidden, so many
// open tabs do not keep many connections busy.

const TOKEN_KEY = 'consul-rs:token';
const WAIT = '60s';
const MIN_GAP_MS = 250;        // floor between two requests of one watch
const NO_INDEX_REFRESH_MS = 10000;
const MAX_BACKOFF_MS = 30000;

export const token = {
  get() { try { return localStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; } },
  set(v) { try { v ? localStorage.setItem(TOKEN_KEY, v) : localStorage.removeItem(TOKEN_KEY); } catch { /* storage off */ } },
};

export class ApiError extends Error {
  constructor(kind, message, status) { super(message); this.kind = kind; this.status = status; }
}

// `key/with spaces/ü` -> `key/with%20spaces/%C3%BC`: each segment encoded,
// the slashes kept.
export function encodePath(p) {
  return p.split('/').map(encodeURIComponent).join('/');
}

export function url(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === false) continue;
    q.append(k, v === true ? '' : String(v));
  }
  // `?keys` and `?recurse` are flags: Consul reads them without a value.
  const s = q.toString().replace(/=(&|$)/g, '$1');
  return s ? `${path}?${s}` : path;
}

function classify(status, text) {
  if (status === 403 && /^ACL not found/i.test(text)) return new ApiError('denied', 'The token in use is unknown to the cluster (ACL not found): it may have been deleted or have expired. Log in again.', status);
  if (status === 403) {
    const why = /^permission denied/i.test(text) ? text : `Permission denied: ${text || 'the token in use may not do this'}`;
    return new ApiError('denied', `${why}. Log in with a token that allows it.`, status);
  }
  if (status === 401 && /ACL support disabled/i.test(text)) return new ApiError('acloff', 'ACLs are disabled on this agent (ACL support disabled).', status);
  if (status === 401) return new ApiError('denied', `Not authorised: ${text}`, status);
  if (status === 404) return new ApiError('notfound', text || 'Not found', status);
  if (status === 400) return new ApiError('invalid', text || 'The request was refused as invalid.', status);
  if (/no cluster leader/i.test(text)) return new ApiError('noleader', 'No cluster leader: the servers are electing one or have lost quorum. Retrying.', status);
  if (/no path to datacenter/i.test(text)) return new ApiError('nodc', `No path to that datacenter: ${text}`, status);
  return new ApiError('http', `Error ${status}: ${text || 'no details'}`, status);
}

// One request. Throws ApiError (or an AbortError when aborted). With
// `notFoundOk`, a 404 is a normal answer (KV: no such key). `secret`
// replaces the stored token for this one request (checking a login).
export async function request(method, path, { params, body, signal, notFoundOk, secret } = {}) {
  const headers = {};
  const t = secret ?? token.get();
  if (t) headers['X-Consul-Token'] = t;
  let resp;
  try {
    resp = await fetch(url(path, params), { method, headers, body, signal, cache: 'no-store', credentials: 'same-origin' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError('unreachable', 'The Consul agent cannot be reached: it may be down or restarting. Retrying.', 0);
  }
  if (!resp.ok && !(notFoundOk && resp.status === 404)) {
    throw classify(resp.status, (await resp.text()).trim());
  }
  return resp;
}

export async function json(resp) {
  if (resp.status === 404) return null;
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

export async function getJSON(path, opts) {
  return json(await request('GET', path, opts));
}

// A write with a JSON body; answers the decoded reply.
export async function sendJSON(method, path, value, opts) {
  return json(await request(method, path, { ...opts, body: JSON.stringify(value) }));
}

// A live view of one endpoint. `onData(data, headers)` runs on the first
// answer and whenever the index moves; `onError(err)` on each failure (the watch
// keeps retrying with back-off); `onError(null)` once it recovers.
export class Watch {
  constructor(path, params, onData, onError, { notFoundOk = false } = {}) {
    Object.assign(this, { path, params, onData, onError, notFoundOk });
    this.index = 0;
    this.delivered = false;
    this.failures = 0;
    this.stopped = true;
    this.running = false;
    this.visibility = () => {
      if (document.hidden) this.interrupt();
      else this.loop();
    };
  }

  start() {
    this.stopped = false;
    document.addEventListener('visibilitychange', this.visibility);
    this.loop();
    return this;
  }

  stop() {
    this.stopped = true;
    document.removeEventListener('visibilitychange', this.visibility);
    this.interrupt();
  }

  // Ends the request or pause in progress; the loop then sees why.
  interrupt() {
    if (this.ctrl) this.ctrl.abort();
    if (this.wake) this.wake();
  }

  pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() { clearTimeout(timer); resolve(); }
      this.wake = done;
    });
  }

  async loop() {
    if (this.running) return;
    this.running = true;
    try {
      while (!this.stopped && !document.hidden) {
        const started = performance.now();
        this.ctrl = new AbortController();
        const params = { ...this.params };
        if (this.delivered && this.index > 0) { params.index = this.index; params.wait = WAIT; }
        try {
          const resp = await request('GET', this.path, { params, signal: this.ctrl.signal, notFoundOk: this.notFoundOk });
          const data = await json(resp);
          if (this.stopped) break;
          const header = resp.headers.get('X-Consul-Index');
          if (this.failures > 0) this.onError(null);
          this.failures = 0;
          if (header === null) {
            // Not a blocking endpoint: refresh on a timer instead.
            this.onData(data, resp.headers);
            this.delivered = true;
            await this.pause(NO_INDEX_REFRESH_MS);
            continue;
          }
          const next = Number(header) || 0;
          const changed = !this.delivered || next !== this.index;
          // An index that went backwards (a restored snapshot, a new
          // leader's state) starts over, as Consul's docs advise.
          this.index = next < this.index ? 0 : next;
          if (changed) { this.delivered = true; this.onData(data, resp.headers); }
          const elapsed = performance.now() - started;
          if (elapsed < MIN_GAP_MS) await this.pause(MIN_GAP_MS - elapsed);
        } catch (e) {
          if (e.name === 'AbortError') continue;
          this.failures += 1;
          this.onError(e);
          const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.failures - 1));
          await this.pause(backoff * (0.75 + Math.random() / 2));
        }
      }
    } finally {
      this.running = false;
    }
  }
}
