/*
 * hubbub JavaScript SDK - the room client for the hubbub PubSub server.
 *
 * One file, no dependencies. It speaks the wire protocol of docs/protocol.md
 * over the platform WebSocket (browsers, Node >= 22) or one passed in
 * (Node 20: the `ws` package). sdk/js/build.mjs turns this ES module into the
 * three shipped files (dist/hubbub.js, dist/hubbub.mjs, dist/hubbub.d.ts):
 * keep everything the classic build must expose in the export block at the end.
 *
 * Delivery semantics, in short (docs/sdk.md has the long version):
 *  - subscriptions are remembered and re-sent after every reconnect;
 *  - publishes made while not connected are queued (bounded, in order) and
 *    sent once, after the subscriptions, as soon as the server welcomes us;
 *  - a publish already sent when the link drops is NOT re-sent (it may or may
 *    not have been delivered): its promise rejects with `connection_lost`.
 */

const VERSION = '0.1.0';

/* Defaults. Every one can be overridden in the connect()/createClient() options. */
const DEFAULTS = Object.freeze({
  reconnect: true,
  backoffBaseMs: 250, /* first retry waits up to this long (full jitter) */
  backoffCapMs: 10000, /* no retry ever waits longer than this */
  maxQueue: 1000, /* publishes kept while offline; more are refused */
  connectTimeoutMs: 10000, /* socket open + welcome must take at most this */
  ackTimeoutMs: 15000, /* a request without ack/error by then fails with `timeout` */
  pingIntervalMs: 0, /* 0 = use the server's ping_interval_ms from the welcome */
  pongTimeoutMs: 10000, /* no message at all this long after a ping = dead link */
  maxReconnectAttempts: Infinity,
});

/* docs/protocol.md section 3: what the server accepts, checked here so that a
 * mistake fails at the call site instead of as an asynchronous server error. */
const EVENT_NAME_RE = /^[A-Za-z0-9\-_.:/@]{1,128}$/;
const SCOPES = ['session', 'event', 'organization'];
const FALLBACK_PING_INTERVAL_MS = 25000;
const FALLBACK_MAX_DATA_BYTES = 32768;

/* docs/protocol.md section 4: close codes after which reconnecting cannot help. */
const CLOSE_NORMAL = 1000;
const CLOSE_TOKEN_EXPIRED = 4401;
const CLOSE_RATE_LIMITED = 4008;
const FATAL_CLOSE_CODES = [1002, 1003, 1007, 1009];

const STATES = ['idle', 'connecting', 'open', 'reconnecting', 'closed'];

/** An error from the server (its stable `code`) or from the SDK itself. */
class HubbubError extends Error {
  constructor(code, message, extra) {
    super(message || code);
    this.name = 'HubbubError';
    this.code = code;
    if (extra) {
      for (const k of Object.keys(extra)) {
        if (extra[k] !== undefined) this[k] = extra[k];
      }
    }
  }
}

/**
 * Exponential backoff with "full jitter" (AWS architecture blog, 2015): a
 * uniformly random delay in [0, min(cap, base * 2^attempt)). Spreading retries
 * over the whole window keeps a restarted server from being hit by every
 * client at the same instant.
 */
function backoffDelay(attempt, opts, random) {
  const base = opts && opts.backoffBaseMs != null ? opts.backoffBaseMs : DEFAULTS.backoffBaseMs;
  const cap = opts && opts.backoffCapMs != null ? opts.backoffCapMs : DEFAULTS.backoffCapMs;
  const rnd = random || Math.random;
  const a = Math.max(0, Math.min(attempt | 0, 30)); /* 2^30 * base overflows any sane cap */
  const ceiling = Math.min(cap, base * Math.pow(2, a));
  return Math.floor(rnd() * ceiling);
}

/** Whether a close with this code should be followed by a reconnect. */
function shouldReconnect(code, hasGetToken) {
  if (code === CLOSE_NORMAL) return false;
  if (code === CLOSE_TOKEN_EXPIRED) return !!hasGetToken;
  if (FATAL_CLOSE_CODES.indexOf(code) >= 0) return false;
  if (code >= 4400 && code <= 4499) return false;
  return true;
}

/* The server takes at most this many bytes of event names on the URL
 * (HB_WS_SUBSCRIBE_PARAM_BYTES); beyond it the SDK subscribes by message. */
const SUBSCRIBE_PARAM_MAX = 2048;

/**
 * ws://host:port, http(s)://..., or a full .../api/v1/ws URL → the socket URL.
 * `subscribe` (optional): event names to subscribe to at the upgrade
 * (`&subscribe=a,b`, docs/protocol.md), saving a round trip per name.
 */
function buildSocketUrl(url, token, subscribe) {
  let u = String(url || '');
  if (!u && typeof location !== 'undefined' && location.origin) u = location.origin;
  if (!u) throw new HubbubError('invalid_argument', 'connect: `url` is required outside a browser page');
  u = u.replace(/^http:/i, 'ws:').replace(/^https:/i, 'wss:');
  if (!/^wss?:\/\//i.test(u)) throw new HubbubError('invalid_argument', 'connect: `url` must start with ws://, wss://, http:// or https://');
  let query = '';
  const q = u.indexOf('?');
  if (q >= 0) {
    query = u.slice(q + 1);
    u = u.slice(0, q);
  }
  u = u.replace(/\/+$/, '');
  if (!/\/api\/v1\/ws$/.test(u)) u += '/api/v1/ws';
  const params = query ? query.split('&').filter((p) => p && !/^(token|subscribe)=/.test(p)) : [];
  params.push('token=' + encodeURIComponent(token == null ? '' : String(token)));
  if (subscribe && subscribe.length) params.push('subscribe=' + subscribe.map(encodeURIComponent).join(','));
  return u + '?' + params.join('&');
}

function byteLength(s) {
  if (typeof TextEncoder !== 'undefined') return new TextEncoder().encode(s).length;
  return unescape(encodeURIComponent(s)).length;
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/* A promise whose rejection is never reported as "unhandled": callers that
 * ignore what publish() returns (the original plugin API) must not crash Node
 * or litter the console. Callers that await it still see the rejection. */
function quietPromise(executor) {
  const p = new Promise(executor);
  p.catch(() => {});
  return p;
}

function noop() {}

/**
 * One connection to one room. PubSub (the default export) is one of these;
 * createClient() makes more.
 */
class Client {
  constructor(opts) {
    this._opts = Object.assign({}, DEFAULTS);
    this._state = 'idle';
    this._ws = null;
    this._subs = new Map(); /* eventName -> { callbacks: Set, live, ready, resolve, reject } */
    this._queue = []; /* publishes waiting for a connection: { frame, resolve, reject } */
    this._pending = new Map(); /* request id -> { kind, resolve, reject, timer, eventName } */
    this._listeners = { error: new Set(), state: new Set(), welcome: new Set() };
    this._nextId = 1;
    this._attempt = 0;
    this._reconnectTimer = null;
    this._connectTimer = null;
    this._pingTimer = null;
    this._pongTimer = null;
    this._everOpen = false;
    this._seq = 0; /* bumped by connect()/close(): an _open() awaiting getToken from before is stale */
    this._connectWaiters = [];
    this._tokenRefresh = false; /* the next attempt must call getToken first */
    this.welcome = null;
    this.room = null;
    this.connectionId = null;
    if (opts && (opts.url || opts.token || opts.getToken)) this.connect(opts);
  }

  /** Current state: idle, connecting, open, reconnecting or closed. */
  get state() {
    return this._state;
  }

  /**
   * Connect (or reconnect with new options). Resolves with the welcome
   * message once the room is joined; rejects only if the client gives up
   * (fatal close code, close(), maxReconnectAttempts).
   */
  connect(opts) {
    opts = opts || {};
    for (const k of Object.keys(opts)) {
      if (opts[k] !== undefined) this._opts[k] = opts[k];
    }
    const o = this._opts;
    if (!o.token && typeof o.getToken !== 'function') {
      throw new HubbubError('invalid_argument', 'connect: `token` or `getToken` is required');
    }
    this._wsImpl = o.WebSocket || (typeof WebSocket !== 'undefined' ? WebSocket : null);
    if (!this._wsImpl) {
      throw new HubbubError('invalid_argument',
        'connect: no WebSocket in this runtime; pass one, e.g. connect({ WebSocket: require("ws") })');
    }
    buildSocketUrl(o.url, ''); /* validate the URL now, synchronously */
    const p = quietPromise((resolve, reject) => this._connectWaiters.push({ resolve, reject }));
    const old = this._ws;
    this._teardownSocket();
    if (old) {
      try {
        old.close(CLOSE_NORMAL, 'reconnecting with new options');
      } catch (e) { /* not open yet */ }
      this._rejectPending('connection_lost', 'the connection was replaced by connect()');
    }
    this._clearTimer('_reconnectTimer');
    this._seq++;
    this._attempt = 0;
    /* A token passed to this call is used as is; otherwise ask getToken first. */
    this._tokenRefresh = !opts.token;
    this._setState(this._everOpen ? 'reconnecting' : 'connecting');
    this._open();
    return p;
  }

  /**
   * Publish `data` under `eventName` to `scope` (default 'session').
   * Returns a promise of { message_id } resolved on the server's ack.
   * Ignoring it is fine: failures are also emitted as 'error' events.
   */
  publish(eventName, options) {
    options = options || {};
    return quietPromise((resolve, reject) => {
      const fail = (code, message) => {
        const err = new HubbubError(code, message, { eventName });
        reject(err);
        this._emit('error', err);
      };
      if (this._state === 'closed') return fail('closed', 'publish: the client is closed');
      if (typeof eventName !== 'string' || !EVENT_NAME_RE.test(eventName)) {
        return fail('invalid_event_name', 'publish: eventName must be 1-128 characters of A-Z a-z 0-9 - _ . : / @');
      }
      const scope = options.scope == null ? 'session' : options.scope;
      if (SCOPES.indexOf(scope) < 0) return fail('invalid_scope', 'publish: scope must be session, event or organization');
      const data = options.data === undefined ? {} : options.data;
      if (!isPlainObject(data)) return fail('invalid_type', 'publish: data must be a JSON object');
      let frame;
      const id = 'c' + this._nextId++;
      try {
        /* Serialised now: later changes to `data` do not alter a queued publish. */
        frame = JSON.stringify({ type: 'publish', eventName, data, scope, id });
      } catch (e) {
        return fail('invalid_json', 'publish: data cannot be serialised to JSON: ' + e.message);
      }
      const max = this.welcome && this.welcome.limits && this.welcome.limits.max_data_bytes
        ? this.welcome.limits.max_data_bytes : FALLBACK_MAX_DATA_BYTES;
      /* A UTF-16 unit is at most 3 UTF-8 bytes: only measure precisely when it could be over. */
      if (frame.length * 3 > max && byteLength(JSON.stringify(data)) > max) {
        return fail('data_too_large', 'publish: data is over ' + max + ' bytes');
      }
      const item = { id, frame, eventName, resolve, reject };
      if (this._state === 'open') return this._sendRequest(item, 'publish');
      if (this._queue.length >= this._opts.maxQueue) {
        return fail('queue_full', 'publish: ' + this._opts.maxQueue + ' publishes are already waiting for a connection');
      }
      this._queue.push(item);
    });
  }

  /**
   * Call `callback(data, meta)` for every `eventName` event in this room and
   * the scopes above it. Returns a function that unsubscribes this callback;
   * its `ready` property is a promise resolved when the server has acked the
   * subscription (events published after that are delivered).
   */
  subscribe(eventName, callback) {
    if (typeof eventName !== 'string' || !EVENT_NAME_RE.test(eventName)) {
      throw new HubbubError('invalid_event_name', 'subscribe: eventName must be 1-128 characters of A-Z a-z 0-9 - _ . : / @');
    }
    if (typeof callback !== 'function') throw new TypeError('subscribe: callback must be a function');
    let sub = this._subs.get(eventName);
    if (!sub) {
      sub = { callbacks: new Set(), live: false };
      this._resetReady(sub);
      this._subs.set(eventName, sub);
      if (this._state === 'open') this._sendSubscribe(eventName, sub);
    }
    sub.callbacks.add(callback);
    const off = () => this.unsubscribe(eventName, callback);
    off.ready = sub.ready;
    return off;
  }

  /**
   * A promise resolved when `eventName` is subscribed on the current
   * connection (at once if it already is). After a reconnect this waits for
   * the re-subscription. Rejects if there is no such subscription.
   */
  subscribed(eventName) {
    const sub = this._subs.get(eventName);
    if (!sub) return quietPromise((resolve, reject) => reject(new HubbubError('not_subscribed', 'no subscription for "' + eventName + '"', { eventName })));
    return sub.ready;
  }

  /** Remove `callback` (or every callback when omitted) for `eventName`. */
  unsubscribe(eventName, callback) {
    const sub = this._subs.get(eventName);
    if (!sub) return;
    if (callback) sub.callbacks.delete(callback);
    else sub.callbacks.clear();
    if (sub.callbacks.size > 0) return;
    this._subs.delete(eventName);
    sub.reject(new HubbubError('unsubscribed', 'unsubscribed before the server confirmed', { eventName }));
    if (this._state === 'open') this._sendUnsubscribe(eventName);
  }

  /** Listen to connection states; returns a function that stops listening. */
  onStateChange(callback) {
    return this.on('state', callback);
  }

  /**
   * Events: 'error' (a HubbubError), 'state' (state, previous) and
   * 'welcome' (the server's welcome message, after every (re)connect).
   */
  on(event, callback) {
    const set = this._listeners[event];
    if (!set) throw new TypeError('on: unknown event "' + event + '" (error, state, welcome)');
    set.add(callback);
    return () => set.delete(callback);
  }

  off(event, callback) {
    const set = this._listeners[event];
    if (set) set.delete(callback);
  }

  /** Close for good (until connect() is called again). Queued publishes fail with `closed`. */
  close() {
    this._seq++;
    this._clearTimer('_reconnectTimer');
    const ws = this._ws;
    this._teardownSocket();
    if (ws) {
      try {
        ws.close(CLOSE_NORMAL, 'client closed');
      } catch (e) { /* already closing */ }
    }
    this._failAll('closed', 'the client was closed');
    this._setState('closed');
  }

  /* ---- internals ---------------------------------------------------- */

  _resetReady(sub) {
    sub.ready = quietPromise((resolve, reject) => {
      sub.resolve = resolve;
      sub.reject = reject;
    });
  }

  async _open() {
    const o = this._opts;
    const attempt = this._attempt;
    const seq = this._seq;
    let token = o.token;
    /* Before every retry too: a browser cannot tell an expired token (401)
     * from a network error, so a fresh token is the only safe bet. */
    if (typeof o.getToken === 'function' && (this._tokenRefresh || attempt > 0)) {
      try {
        token = await o.getToken();
        if (token) o.token = token;
      } catch (e) {
        this._emit('error', new HubbubError('token_refresh_failed', 'getToken failed: ' + (e && e.message), { cause: e }));
        token = o.token;
      }
      /* close() or connect() while we waited: this attempt is stale. */
      if (this._seq !== seq || this._state === 'closed' || this._ws) return;
      if (!token) return this._scheduleReconnect();
    }
    this._tokenRefresh = false;
    let ws;
    try {
      ws = new this._wsImpl(buildSocketUrl(o.url, token, this._upgradeNames()));
    } catch (e) {
      this._emit('error', new HubbubError('connect_failed', 'cannot open WebSocket: ' + (e && e.message), { cause: e }));
      return this._scheduleReconnect();
    }
    this._ws = ws;
    this._gotWelcome = false;
    this._handshakeStatus = 0;
    this._connectTimer = setTimeout(() => {
      this._connectTimer = null;
      this._lost(ws, 4000, 'connect timeout');
    }, o.connectTimeoutMs);
    ws.onopen = noop;
    ws.onmessage = (ev) => this._onMessage(ws, ev);
    ws.onerror = (ev) => {
      /* Node's `ws` says why a handshake failed ("Unexpected server response: 401");
       * browsers hide it, which is why getToken is also called before every retry. */
      const m = ev && /Unexpected server response: (\d+)/.exec(String(ev.message || (ev.error && ev.error.message) || ''));
      if (m) this._handshakeStatus = Number(m[1]);
    };
    ws.onclose = (ev) => this._lost(ws, ev && ev.code ? ev.code : 1006, ev && ev.reason ? String(ev.reason) : '');
  }

  _onMessage(ws, ev) {
    if (ws !== this._ws) return;
    this._clearTimer('_pongTimer'); /* anything received proves the link is alive */
    let data = ev.data;
    if (typeof data !== 'string') {
      if (typeof TextDecoder === 'undefined' || data == null) return;
      try {
        data = new TextDecoder().decode(data);
      } catch (e) {
        return;
      }
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (e) {
      return;
    }
    if (!isPlainObject(msg)) return;
    switch (msg.type) {
      case 'welcome':
        return this._onWelcome(msg);
      case 'event':
        return this._dispatch(msg);
      case 'ack':
        return this._settle(msg.id, null, msg);
      case 'error':
        return this._onError(msg);
      default:
        return; /* pong, and anything a newer server adds */
    }
  }

  /* The names to subscribe to at the upgrade: all current subscriptions when
   * they fit the server's limits (the last welcome's, or the defaults), else
   * none (then every one goes by message, as with an older server). */
  _upgradeNames() {
    const names = Array.from(this._subs.keys());
    const limits = this.welcome && this.welcome.limits;
    const max = limits && limits.max_subscriptions > 0 ? limits.max_subscriptions : 256;
    const bytes = names.reduce((n, name) => n + byteLength(name) + 1, 0);
    return names.length <= max && bytes <= SUBSCRIBE_PARAM_MAX ? names : [];
  }

  _onWelcome(msg) {
    this._clearTimer('_connectTimer');
    this._gotWelcome = true;
    this._attempt = 0;
    this._everOpen = true;
    this.welcome = msg;
    this.room = msg.room || null;
    this.connectionId = msg.connection_id || null;
    /* Subscriptions first, then the queue: the server handles one connection's
     * messages in order, so our own queued publishes reach our own subscriptions.
     * Names the server lists as subscribed at the upgrade need no message; one
     * dropped while we connected is unsubscribed; a server that sends no list
     * (an older one) gets a subscribe message for every name. */
    const upgraded = new Set(Array.isArray(msg.subscribed) ? msg.subscribed : []);
    for (const [name, sub] of this._subs) {
      if (upgraded.has(name)) {
        sub.live = true;
        sub.resolve();
      } else {
        this._sendSubscribe(name, sub);
      }
    }
    for (const name of upgraded) {
      if (!this._subs.has(name)) this._sendUnsubscribe(name);
    }
    const queue = this._queue;
    this._queue = [];
    for (const item of queue) this._sendRequest(item, 'publish');
    this._startPing(msg);
    this._setState('open');
    this._emit('welcome', msg);
    const waiters = this._connectWaiters;
    this._connectWaiters = [];
    for (const w of waiters) w.resolve(msg);
  }

  _dispatch(msg) {
    const sub = this._subs.get(msg.eventName);
    if (!sub) return;
    const meta = {
      eventName: msg.eventName,
      scope: msg.scope,
      messageId: msg.message_id,
      sentAt: msg.sent_at,
    };
    for (const cb of Array.from(sub.callbacks)) {
      if (!sub.callbacks.has(cb)) continue; /* removed by an earlier callback */
      try {
        cb(msg.data, meta);
      } catch (e) {
        this._emit('error', new HubbubError('callback_error',
          'a subscriber of "' + msg.eventName + '" threw: ' + (e && e.message), { cause: e, eventName: msg.eventName }));
      }
    }
  }

  _onError(msg) {
    const err = new HubbubError(String(msg.code || 'unknown_error'), msg.message || String(msg.code), { requestId: msg.id });
    if (msg.id && this._pending.has(msg.id)) {
      err.eventName = this._pending.get(msg.id).eventName;
      this._settle(msg.id, err, null);
    }
    this._emit('error', err);
  }

  _sendSubscribe(name, sub) {
    sub.live = false;
    const id = 'c' + this._nextId++;
    this._sendRequest({
      id,
      frame: JSON.stringify({ type: 'subscribe', eventName: name, id }),
      eventName: name,
      resolve: () => {
        sub.live = true;
        sub.resolve();
      },
      reject: (e) => sub.reject(e),
    }, 'subscribe');
  }

  _sendUnsubscribe(eventName) {
    const id = 'c' + this._nextId++;
    this._sendRequest({ id, frame: JSON.stringify({ type: 'unsubscribe', eventName, id }), eventName,
      resolve: noop, reject: noop }, 'unsubscribe');
  }

  _sendRequest(item, kind) {
    const ws = this._ws;
    try {
      ws.send(item.frame);
    } catch (e) {
      item.reject(new HubbubError('connection_lost', 'send failed: ' + (e && e.message), { eventName: item.eventName }));
      return;
    }
    const timer = setTimeout(() => {
      this._settle(item.id, new HubbubError('timeout', kind + ' was not acknowledged in time', { requestId: item.id, eventName: item.eventName }), null);
    }, this._opts.ackTimeoutMs);
    this._pending.set(item.id, { kind, resolve: item.resolve, reject: item.reject, timer, eventName: item.eventName });
  }

  _settle(id, err, ack) {
    const p = id != null ? this._pending.get(id) : null;
    if (!p) return;
    this._pending.delete(id);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(p.kind === 'publish' ? { message_id: ack.message_id } : undefined);
  }

  _startPing(welcome) {
    this._clearTimer('_pingTimer');
    const every = this._opts.pingIntervalMs || welcome.ping_interval_ms || FALLBACK_PING_INTERVAL_MS;
    const ws = this._ws;
    this._pingTimer = setInterval(() => {
      if (ws !== this._ws) return;
      try {
        ws.send(JSON.stringify({ type: 'ping', id: 'p' + this._nextId++ }));
      } catch (e) {
        return this._lost(ws, 1006, 'ping failed');
      }
      if (!this._pongTimer) {
        this._pongTimer = setTimeout(() => {
          this._pongTimer = null;
          this._lost(ws, 4000, 'no answer to ping');
        }, this._opts.pongTimeoutMs);
      }
    }, every);
  }

  /* The socket `ws` is gone (closed, timed out or dead). Decide what next. */
  _lost(ws, code, reason) {
    if (ws !== this._ws) return;
    const opened = this._gotWelcome;
    const status = this._handshakeStatus;
    this._teardownSocket();
    try {
      ws.close();
    } catch (e) { /* not open yet or already closing */ }
    /* Sent but not acknowledged: it may or may not have arrived. Not re-sent, so
     * that nothing is ever delivered twice; the caller decides. */
    this._rejectPending('connection_lost', 'the connection closed before the server answered');
    for (const sub of this._subs.values()) {
      if (sub.live) this._resetReady(sub);
      sub.live = false;
    }
    const hasGetToken = typeof this._opts.getToken === 'function';
    let again = this._opts.reconnect && shouldReconnect(code, hasGetToken);
    if (!opened && (status === 401 || status === 403)) {
      again = this._opts.reconnect && status === 401 && hasGetToken;
      code = status;
      reason = 'handshake refused with HTTP ' + status;
    }
    if (code === CLOSE_TOKEN_EXPIRED || status === 401) this._tokenRefresh = true;
    if (!again) {
      const err = new HubbubError(code === CLOSE_NORMAL ? 'connection_closed' : 'connection_refused',
        'connection closed (' + code + (reason ? ': ' + reason : '') + '); not reconnecting', { closeCode: code, reason });
      this._failAll(err.code, err.message, code);
      this._emit('error', err);
      this._setState('closed');
      return;
    }
    if (code === CLOSE_RATE_LIMITED) this._attempt = Math.max(this._attempt, 4); /* "after backoff" */
    this._scheduleReconnect();
  }

  _rejectPending(code, message) {
    const pending = this._pending;
    this._pending = new Map();
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      p.reject(new HubbubError(code, message, { requestId: id, eventName: p.eventName }));
    }
  }

  _scheduleReconnect() {
    if (this._attempt >= this._opts.maxReconnectAttempts) {
      this._failAll('reconnect_failed', 'gave up after ' + this._attempt + ' attempts');
      this._emit('error', new HubbubError('reconnect_failed', 'gave up after ' + this._attempt + ' attempts'));
      this._setState('closed');
      return;
    }
    this._setState('reconnecting');
    const delay = backoffDelay(this._attempt, this._opts);
    this._attempt++;
    this._clearTimer('_reconnectTimer');
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      this._open();
    }, delay);
  }

  _teardownSocket() {
    const ws = this._ws;
    this._ws = null;
    this._clearTimer('_connectTimer');
    this._clearTimer('_pingTimer');
    this._clearTimer('_pongTimer');
    if (ws) {
      /* noop, not null: Node's `ws` throws on an 'error' nobody listens to. */
      ws.onopen = noop;
      ws.onmessage = noop;
      ws.onerror = noop;
      ws.onclose = noop;
    }
  }

  _failAll(code, message, closeCode) {
    for (const [id, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(new HubbubError(code, message, { requestId: id, eventName: p.eventName, closeCode }));
    }
    this._pending.clear();
    const queue = this._queue;
    this._queue = [];
    for (const item of queue) item.reject(new HubbubError(code, message, { eventName: item.eventName, closeCode }));
    for (const sub of this._subs.values()) {
      sub.reject(new HubbubError(code, message, { closeCode }));
      this._resetReady(sub);
    }
    const waiters = this._connectWaiters;
    this._connectWaiters = [];
    for (const w of waiters) w.reject(new HubbubError(code, message, { closeCode }));
  }

  _clearTimer(name) {
    if (this[name]) {
      clearTimeout(this[name]);
      clearInterval(this[name]);
      this[name] = null;
    }
  }

  _setState(state) {
    const prev = this._state;
    if (prev === state) return;
    this._state = state;
    this._emit('state', state, prev);
  }

  _emit(event, a, b) {
    const set = this._listeners[event];
    if (event === 'error' && set.size === 0) {
      if (typeof console !== 'undefined') console.warn('[hubbub]', a && a.code, a && a.message);
      return;
    }
    for (const cb of Array.from(set)) {
      try {
        cb(a, b);
      } catch (e) {
        if (typeof console !== 'undefined') console.error('[hubbub] listener threw', e);
      }
    }
  }
}

/** A new, independent connection. Connects at once when `url`/`token` are given. */
function createClient(opts) {
  return new Client(opts);
}

/* The default client: plugin code calls PubSub.publish/subscribe directly. Calls
 * made before PubSub.connect() are kept and happen once connected. */
const PubSub = new Client();
PubSub.createClient = createClient;
PubSub.HubbubError = HubbubError;
PubSub.VERSION = VERSION;

// @@exports-begin (build.mjs: the classic build replaces this block)
export { PubSub, createClient, HubbubError, Client, backoffDelay, shouldReconnect, buildSocketUrl, VERSION, STATES };
export default PubSub;
// @@exports-end
