/*
 * hubbub JavaScript SDK - the room client for the hubbub PubSub server.
 *
 * One file, no dependencies. It speaks the wire protocol of docs/protocol.md
 * over the platform WebSocket (browsers, Node >= 22) or one passed in
 * (Node 20: the `ws` package). sdk/js/build.mjs turns this ES module into the
 * shipped files (dist/hubbub.mjs, dist/hubbub.js, and their types):
 * keep everything the classic build must expose in the export block at the end.
 *
 * Failures, in short: every one is a HubbubError with a stable `code`, emitted
 * once as an 'error' event; a connection attempt or link ends exactly once
 * (_lost), whatever mix of 'error' and 'close' the WebSocket implementation
 * fires, and lossOutcome decides from what it saw whether to retry, refresh
 * the token, or stop.
 *
 * Delivery semantics, in short (docs/sdk.md has the long version):
 *  - subscriptions are remembered and re-sent after every reconnect;
 *  - publishes made while not connected are queued (bounded, in order) and
 *    sent once, after the subscriptions, as soon as the server welcomes us;
 *  - every publish carries an idempotency key, so a publish already sent when
 *    the link drops is sent again after the reconnect with the same key: the
 *    server answers the first result and delivers it once (within its
 *    idempotency_ttl_s); it rejects with `connection_lost` only if the client
 *    gives up;
 *  - nothing is lost silently: the client keeps its position in each scope's
 *    channel (the welcome's, then each event's offset), reconnects with
 *    `since=` so the server replays what it missed ('recovered'), drops an
 *    event it already had, and when the server says messages are gone — a
 *    reconnect answered recovered:false, or a gap notice while connected —
 *    moves its position past them and emits 'resync' (and 'gap' for a
 *    notice): the application reloads what it shows.
 */

const VERSION = '0.1.0';

/* Defaults. Every one can be overridden in the connect()/createClient() options. */
const DEFAULTS = Object.freeze({
  reconnect: true,
  backoffBaseMs: 250, /* first retry waits up to this long (full jitter) */
  backoffCapMs: 10000, /* no retry ever waits longer than this */
  maxQueue: 1000, /* publishes kept while offline; more are refused */
  queueTimeoutMs: 30000, /* a queued publish not sent by then fails with `timeout` */
  connectTimeoutMs: 10000, /* socket open + welcome must take at most this */
  ackTimeoutMs: 15000, /* a request without ack/error by then fails with `timeout` */
  pingIntervalMs: 0, /* 0 = use the server's ping_interval_ms from the welcome */
  pongTimeoutMs: 10000, /* no message at all this long after a ping = dead link */
  maxReconnectAttempts: Infinity,
  tokenTransport: 'protocol', /* 'protocol': token in Sec-WebSocket-Protocol; 'query': ?token= (older servers) */
});
/* Every option connect() knows; anything else is a typo and is refused. */
const CONNECT_OPTIONS = Object.keys(DEFAULTS).concat(['url', 'token', 'getToken', 'WebSocket']);
const TOKEN_TRANSPORTS = ['protocol', 'query'];
const PUBLISH_OPTIONS = ['data', 'scope'];
const PRESENCE_SCOPES = ['session', 'event'];
const PRESENCE_GET_OPTIONS = ['scope', 'cursor', 'limit'];
const PRESENCE_PAGE_MAX = 1000; /* HB_MAX_PRESENCE_PAGE */

/* docs/protocol.md section 3: what the server accepts, checked here so that a
 * mistake fails at the call site instead of as an asynchronous server error. */
const EVENT_NAME_RE = /^[A-Za-z0-9\-_.:/@]{1,128}$/;
const SCOPES = ['session', 'event', 'organization'];
const FALLBACK_PING_INTERVAL_MS = 25000;
/* docs/protocol.md section 6: a position is (epoch: 16 lowercase hex digits,
 * offset); the resume string is "h1" and the three scopes' positions. */
const EPOCH_RE = /^[0-9a-f]{16}$/;
const RESUME_VERSION = 'h1';
const FALLBACK_MAX_DATA_BYTES = 32768;

/* docs/protocol.md section 2. The SDK offers two subprotocols: the protocol
 * version, which also asks the server to refuse in band (a 101, one error
 * message, a 44xx close) instead of with an HTTP status that browsers hide,
 * and the token, so that it is in no URL (server logs, browser consoles). */
const SUBPROTOCOL = 'hubbub.v1';
const TOKEN_SUBPROTOCOL_PREFIX = 'hubbub.token.';
/* A subprotocol is an RFC 7230 token (RFC 6455 section 4.1); a JWT always is one. */
const SUBPROTOCOL_TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/* Node's built-in WebSocket (undici) fires 'error' and never 'close' when the
 * upgrade fails; browsers and `ws` fire 'close' right after. An 'error' before
 * the open ends the attempt at once (its close could only say 1006); after
 * the open, or after a refusal message, the 'close' that carries the code is
 * waited for this long, then given up on. */
const ERROR_CLOSE_GRACE_MS = 1000;

/* docs/protocol.md section 4: close codes and what the SDK does after them. */
const CLOSE_NORMAL = 1000;
const CLOSE_ABNORMAL = 1006; /* no close frame: the link broke or the upgrade failed */
const CLOSE_TRY_AGAIN_LATER = 1013; /* shutting_down: reconnect with backoff */
const CLOSE_RATE_LIMITED = 4008;
const CLOSE_TOKEN_INVALID = 4401; /* expired, invalid or missing token */
const CLOSE_TOKEN_REVOKED = 4410; /* revoked or disconnected by an operator: a new token, or stop */
/* An operator ended it for good: like every 4400-4499 code, no reconnect. */
const CLOSE_PLUGIN_DELETED = 4404; /* its plugin (or organization) was deleted */
const CLOSE_ROOM_CLOSED = 4409; /* an operator closed the room */
const FATAL_CLOSE_CODES = [1002, 1003, 1007, 1008, 1009];
/* The code a close without a code-like reason stands for, when it has one meaning. */
const CLOSE_CODE_NAMES = {
  [CLOSE_TOKEN_INVALID]: 'token_expired',
  [CLOSE_TOKEN_REVOKED]: 'token_revoked',
  [CLOSE_PLUGIN_DELETED]: 'plugin_deleted',
  [CLOSE_ROOM_CLOSED]: 'room_closed',
};
/* A refusal (error message before the welcome) whose close never came: the
 * close code the server pairs with its code (4000 + the HTTP status it stands for). */
const REFUSAL_CLOSE_CODES = {
  bad_request: 4400,
  missing_token: CLOSE_TOKEN_INVALID,
  invalid_token: CLOSE_TOKEN_INVALID,
  token_expired: CLOSE_TOKEN_INVALID,
  origin_forbidden: 4403,
  token_revoked: CLOSE_TOKEN_REVOKED,
  invalid_event_name: 4422,
  too_many_subscriptions: 4422,
  shutting_down: CLOSE_TRY_AGAIN_LATER,
};
/* A close reason that is an error code (the server's refusals use the code as reason). */
const CODE_LIKE_RE = /^[a-z][a-z0-9_]{0,63}$/;

/* A publish's idempotency key (protocol.md: 1-128 printable ASCII): 122
 * random bits where the platform has randomUUID, else Math.random's. */
function idempotencyKey() {
  const c = typeof globalThis !== 'undefined' ? globalThis.crypto : undefined;
  if (c && typeof c.randomUUID === 'function') return 'sdk-' + c.randomUUID();
  let k = 'sdk-';
  for (let i = 0; i < 4; i++) k += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  return k;
}

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

/**
 * What to do after a close with this code (docs/protocol.md section 4):
 * 'retry' with backoff, 'refresh' (call getToken, then retry) or 'stop'.
 * 4410 (token_revoked: the user's tokens were revoked, or the user
 * disconnected) never reuses the token it was given: a new one from
 * getToken, or stop. 4404 (plugin_deleted) and 4409 (room_closed) stop.
 */
function closePolicy(code, hasGetToken) {
  if (code === CLOSE_NORMAL) return 'stop';
  if (code === CLOSE_TOKEN_INVALID || code === CLOSE_TOKEN_REVOKED) return hasGetToken ? 'refresh' : 'stop';
  if (FATAL_CLOSE_CODES.indexOf(code) >= 0) return 'stop';
  if (code >= 4400 && code <= 4499) return 'stop';
  return 'retry'; /* 1001, 1006, 1011, 1012, 1013, 4000-4399, and anything unknown */
}

/* An HTTP status of a refused upgrade (only Node's `ws` reports it), as the
 * close code a hubbub.v1 server would have sent: 4000 + a 4xx status; a
 * timeout (408), a rate limit (429) and 5xx are worth retrying. */
function statusCloseCode(status) {
  return status >= 400 && status <= 499 && status !== 408 && status !== 429 ? 4000 + status : CLOSE_ABNORMAL;
}

/**
 * How an attempt ended, as the one error to report and what to do next.
 * `attempt`: { opened, welcomed, status, detail, refusal }; `closeCode`/`reason`: the
 * socket's close (closeCode undefined when none came); `timeout`: set when the
 * SDK itself abandoned the socket (no welcome in time, no answer to a ping).
 * Returns { code, message, closeCode, reason, status, policy }.
 */
function lossOutcome(attempt, closeCode, reason, timeout, hasGetToken) {
  const out = { closeCode, reason: reason || undefined, status: attempt.status || undefined };
  let policyCode = closeCode;
  if (attempt.refusal) {
    /* The server said why in band (docs/protocol.md section 2). */
    out.code = attempt.refusal.code;
    out.message = attempt.refusal.message || out.code;
    if (closeCode === undefined) out.closeCode = policyCode = REFUSAL_CLOSE_CODES[out.code] || 4400;
  } else if (timeout) {
    out.code = attempt.welcomed ? 'connection_lost' : 'connect_timeout';
    out.message = timeout;
    policyCode = CLOSE_ABNORMAL;
  } else if (!attempt.opened && attempt.status) {
    out.code = 'connection_refused';
    out.message = 'the server refused the WebSocket upgrade with HTTP ' + attempt.status;
    policyCode = statusCloseCode(attempt.status);
  } else {
    if (closeCode === undefined) out.closeCode = policyCode = CLOSE_ABNORMAL;
    const named = closeCode >= 4000 || closeCode === CLOSE_TRY_AGAIN_LATER;
    if (named && reason && CODE_LIKE_RE.test(reason)) out.code = reason;
    else if (CLOSE_CODE_NAMES[policyCode] && attempt.welcomed) out.code = CLOSE_CODE_NAMES[policyCode];
    else if (!attempt.welcomed) out.code = 'connection_refused';
    else if (policyCode === CLOSE_NORMAL) out.code = 'connection_closed';
    else out.code = closePolicy(policyCode, hasGetToken) === 'stop' ? 'connection_refused' : 'connection_lost';
    out.message = (attempt.welcomed ? 'the connection closed' : 'the connection attempt failed') +
      ' (' + out.closeCode + (reason ? ': ' + reason : '') + ')' + (attempt.detail ? ': ' + attempt.detail : '');
  }
  out.policy = closePolicy(policyCode, hasGetToken);
  return out;
}

/* The server takes at most this many bytes of event names on the URL
 * (HB_WS_SUBSCRIBE_PARAM_BYTES); beyond it the SDK subscribes by message. */
const SUBSCRIBE_PARAM_MAX = 2048;

/**
 * ws://host:port, http(s)://..., or a full .../api/v1/ws URL → the socket URL.
 * `subscribe` (optional): event names to subscribe to at the upgrade
 * (`?subscribe=a,b`, docs/protocol.md), saving a round trip per name.
 * `token` only for tokenTransport 'query'; otherwise any token= in `url` is
 * dropped too: the token never travels in a URL the SDK builds. `since`
 * (optional): a resume string (`?since=`, docs/protocol.md section 6).
 */
function buildSocketUrl(url, subscribe, token, since) {
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
  const params = query ? query.split('&').filter((p) => p && !/^(token|subscribe|since)=/.test(p)) : [];
  if (token != null) params.push('token=' + encodeURIComponent(String(token)));
  if (subscribe && subscribe.length) params.push('subscribe=' + subscribe.map(encodeURIComponent).join(','));
  if (since) params.push('since=' + since);
  return params.length ? u + '?' + params.join('&') : u;
}

/** The subprotocols offered for `token` (tokenTransport 'protocol'). */
function socketProtocols(token) {
  return [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token];
}

/* A position as the server gives it ({ epoch, offset }), copied, or null. */
function positionOf(p) {
  if (!isPlainObject(p) || typeof p.epoch !== 'string' || !EPOCH_RE.test(p.epoch)) return null;
  if (!Number.isSafeInteger(p.offset) || p.offset < 0) return null;
  return { epoch: p.epoch, offset: p.offset };
}

/* The welcome's `positions` of the three scopes, or null (a server without
 * history, or a malformed one: then the client cannot ask to recover). */
function positionsOf(positions) {
  if (!isPlainObject(positions)) return null;
  const out = {};
  for (const scope of SCOPES) {
    out[scope] = positionOf(positions[scope]);
    if (!out[scope]) return null;
  }
  return out;
}

/* h1.<epoch>.<offset> for session, event and organization. */
function resumeString(pos) {
  return pos ? RESUME_VERSION + '.' + SCOPES.map((s) => pos[s].epoch + '.' + pos[s].offset).join('.') : null;
}

/* The room of a welcome as one string: positions are only ever resumed in it. */
function roomKey(room) {
  return isPlainObject(room) ? [room.organization_id, room.plugin_id, room.event_id, room.session_id].join('/') : '';
}

/* Why `token` cannot be sent with `transport`, or '' when it can. */
function tokenProblem(token, transport) {
  if (typeof token !== 'string' || !token) return 'the token must be a non-empty string';
  if (transport === 'protocol' && !SUBPROTOCOL_TOKEN_RE.test(token)) {
    return 'the token has characters a WebSocket subprotocol cannot carry (a JWT never has): ' +
      "use tokenTransport: 'query' for other tokens";
  }
  return '';
}

function byteLength(s) {
  if (typeof TextEncoder !== 'undefined') return new TextEncoder().encode(s).length;
  return unescape(encodeURIComponent(s)).length;
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/* A plain object ({...}, JSON.parse's, Object.create(null)), from any realm
 * (an iframe's Object.prototype is another object): not an array, a Date, a
 * Map or a class instance, which JSON would turn into something else. */
function isPlainData(v) {
  if (!isPlainObject(v) || Object.prototype.toString.call(v) !== '[object Object]') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === null || Object.getPrototypeOf(proto) === null;
}

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'a ' + ((v.constructor && v.constructor.name) || 'non-plain object');
  return 'a ' + typeof v;
}

/* Why publish(eventName, options) cannot be sent, or '' (docs/sdk.md, "publish"). */
function publishProblem(eventName, options) {
  if (typeof eventName !== 'string' || !EVENT_NAME_RE.test(eventName)) {
    return 'publish: eventName must be 1-128 characters of A-Z a-z 0-9 - _ . : / @';
  }
  if (!isPlainObject(options)) return 'publish: the second argument must be { data, scope? }, e.g. publish(\'' + eventName + '\', { data: { … } })';
  for (const k of Object.keys(options)) {
    if (PUBLISH_OPTIONS.indexOf(k) >= 0) continue;
    return "publish: unknown option '" + k + "'" +
      (options.data === undefined ? ' (did you mean { data: … }?)' : ' (the options are data and scope)');
  }
  if (options.data === undefined) return "publish: `data` is required, e.g. publish('" + eventName + "', { data: { … } })";
  if (!isPlainData(options.data)) return 'publish: data must be a plain JSON object ({ … }), not ' + describe(options.data);
  if (options.scope != null && SCOPES.indexOf(options.scope) < 0) return "publish: scope must be 'session', 'event' or 'organization'";
  return '';
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
    this._queue = []; /* publishes waiting for a connection: { frame, resolve, reject, queueTimer } */
    this._pending = new Map(); /* request id -> { kind, resolve, reject, timer, eventName } */
    this._listeners = { error: new Set(), state: new Set(), welcome: new Set(), recovered: new Set(), resync: new Set(), gap: new Set() };
    this._presence = new Map(); /* scope -> the presence a subscriber keeps (Presence section below) */
    this._presenceWaiters = []; /* presence.get() calls waiting for a connection */
    this._nextId = 1;
    this._attempt = 0; /* consecutive failed attempts; a welcome resets it */
    /* The socket being tried or used: what it has shown so far (see lossOutcome). */
    this._sock = { opened: false, welcomed: false, status: 0, detail: '', refusal: null, since: null, replayed: 0 };
    /* Per scope, where this client is in the channel: the welcome's position,
     * then the offset of each event received (null: unknown). _posRoom is the
     * room they belong to; _resumeProblem why a reconnect could not ask. */
    this._pos = null;
    this._posRoom = '';
    this._resumeProblem = '';
    this._reconnectTimer = null;
    this._connectTimer = null;
    this._errorTimer = null;
    this._pingTimer = null;
    this._pongTimer = null;
    this._everOpen = false;
    this._seq = 0; /* bumped by connect()/close(): an _open() awaiting getToken from before is stale */
    this._connectWaiters = [];
    this._tokenRefresh = false; /* the next attempt must call getToken first */
    this.welcome = null;
    this.room = null;
    this.connectionId = null;
    /** Who is in this session or event: get() and subscribe() (docs/sdk.md, "Presence"). */
    this.presence = Object.freeze({
      get: (options) => this._presenceGet(options),
      subscribe: (callback, options) => this._presenceSubscribe(callback, options),
    });
    if (opts && (opts.url || opts.token || opts.getToken)) this.connect(opts);
  }

  /** Current state: idle, connecting, open, reconnecting or closed. */
  get state() {
    return this._state;
  }

  /**
   * Where this client is in the room's three channels, as the resume string
   * a reconnect sends (`h1.…`, docs/protocol.md section 6), or null before
   * the first welcome (or with a server that keeps no history).
   */
  get resumePosition() {
    return resumeString(this._pos);
  }

  /**
   * Connect (or reconnect with new options). Resolves with the welcome
   * message once the room is joined; rejects with the error that made the
   * client give up (a refusal, a close code that forbids reconnecting,
   * close(), maxReconnectAttempts). Bad options throw `invalid_argument`.
   */
  connect(opts) {
    opts = opts || {};
    if (!isPlainObject(opts)) throw new HubbubError('invalid_argument', 'connect: options must be an object');
    for (const k of Object.keys(opts)) {
      if (CONNECT_OPTIONS.indexOf(k) < 0) {
        throw new HubbubError('invalid_argument', "connect: unknown option '" + k + "' (known: " + CONNECT_OPTIONS.join(', ') + ')');
      }
    }
    const o = Object.assign({}, this._opts);
    for (const k of Object.keys(opts)) {
      if (opts[k] !== undefined) o[k] = opts[k];
    }
    if (TOKEN_TRANSPORTS.indexOf(o.tokenTransport) < 0) {
      throw new HubbubError('invalid_argument', "connect: tokenTransport must be 'protocol' or 'query'");
    }
    if (o.getToken !== undefined && typeof o.getToken !== 'function') {
      throw new HubbubError('invalid_argument', 'connect: `getToken` must be a function');
    }
    if (!o.token && typeof o.getToken !== 'function') {
      throw new HubbubError('invalid_argument', 'connect: `token` or `getToken` is required');
    }
    const problem = o.token ? tokenProblem(o.token, o.tokenTransport) : '';
    if (problem) throw new HubbubError('invalid_argument', 'connect: ' + problem);
    const wsImpl = o.WebSocket || (typeof WebSocket !== 'undefined' ? WebSocket : null);
    if (!wsImpl) {
      throw new HubbubError('invalid_argument',
        'connect: no WebSocket in this runtime; pass one, e.g. connect({ WebSocket: require("ws") })');
    }
    buildSocketUrl(o.url); /* validate the URL now, synchronously */
    this._opts = o;
    this._wsImpl = wsImpl;
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
   * Returns a promise of { message_id } resolved on the server's ack. It never
   * throws: every failure rejects the promise and is emitted as an 'error'.
   */
  publish(eventName, options) {
    return quietPromise((resolve, reject) => {
      const fail = (code, message) => {
        const err = new HubbubError(code, message, { eventName: typeof eventName === 'string' ? eventName : undefined });
        reject(err);
        this._emit('error', err);
      };
      const problem = publishProblem(eventName, options);
      if (problem) return fail('invalid_argument', problem);
      if (this._state === 'closed') return fail('closed', 'publish: the client is closed');
      const data = options.data;
      const scope = options.scope == null ? 'session' : options.scope;
      let frame;
      const id = 'c' + this._nextId++;
      try {
        /* Serialised now: later changes to `data` do not alter a queued publish. */
        frame = JSON.stringify({ type: 'publish', eventName, data, scope, id, idempotency_key: idempotencyKey() });
      } catch (e) {
        return fail('invalid_argument', 'publish: data cannot be serialised to JSON: ' + e.message);
      }
      const max = this.welcome && this.welcome.limits && this.welcome.limits.max_data_bytes
        ? this.welcome.limits.max_data_bytes : FALLBACK_MAX_DATA_BYTES;
      /* A UTF-16 unit is at most 3 UTF-8 bytes: only measure precisely when it could be over. */
      if (frame.length * 3 > max && byteLength(JSON.stringify(data)) > max) {
        return fail('data_too_large', 'publish: data is over ' + max + ' bytes');
      }
      const item = { id, frame, eventName, resolve, reject, fail, queueTimer: null };
      if (this._state === 'open') return this._sendRequest(item, 'publish');
      if (this._queue.length >= this._opts.maxQueue) {
        return fail('queue_full', 'publish: ' + this._opts.maxQueue + ' publishes are already waiting for a connection');
      }
      this._queue.push(item);
      this._armQueueTimer(item);
    });
  }

  /**
   * Call `callback(data, meta)` for every `eventName` event in this room and
   * the scopes above it. Returns a function that unsubscribes this callback;
   * its `ready` property is a promise resolved when the server has acked the
   * subscription (events published after that are delivered). Bad arguments
   * throw `invalid_argument`.
   */
  subscribe(eventName, callback) {
    if (typeof eventName !== 'string' || !EVENT_NAME_RE.test(eventName)) {
      throw new HubbubError('invalid_argument', 'subscribe: eventName must be 1-128 characters of A-Z a-z 0-9 - _ . : / @');
    }
    if (typeof callback !== 'function') {
      throw new HubbubError('invalid_argument', "subscribe: the callback must be a function, e.g. subscribe('" + eventName + "', (data) => …)",
        { eventName });
    }
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
   * Events: 'error' (a HubbubError), 'state' (state, previous), 'welcome'
   * (the server's welcome message, after every (re)connect), 'recovered'
   * ({ replayed }: a reconnect got everything it missed), 'resync'
   * ({ cause, scopes }: messages were lost; reload what you show) and 'gap'
   * (the server's gap notice, before its 'resync').
   */
  on(event, callback) {
    const set = this._listeners[event];
    if (!set) throw new HubbubError('invalid_argument', 'on: unknown event "' + event + '" (' + Object.keys(this._listeners).join(', ') + ')');
    if (typeof callback !== 'function') throw new HubbubError('invalid_argument', 'on: the callback must be a function');
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
    this._failAll(new HubbubError('closed', 'the client was closed'));
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
    /* Before every retry too: a browser cannot tell an expired token (an HTTP
     * 401 from a server that does not refuse in band) from a network error,
     * so a fresh token is the only safe bet. */
    if (typeof o.getToken === 'function' && (this._tokenRefresh || attempt > 0)) {
      let problem = '';
      let cause;
      try {
        token = await o.getToken();
        problem = tokenProblem(token, o.tokenTransport);
        if (problem) problem = 'getToken returned no usable token: ' + problem;
      } catch (e) {
        problem = 'getToken failed: ' + (e && e.message);
        cause = e;
      }
      /* close() or connect() while we waited: this attempt is stale. */
      if (this._seq !== seq || this._state === 'closed' || this._ws) return;
      if (problem) {
        /* The previous token, if any, may still be good: try it. */
        const err = new HubbubError('token_refresh_failed', problem + (o.token ? '; trying the previous token' : ''), { cause });
        if (!o.token) return this._scheduleReconnect(err);
        this._emit('error', err);
        token = o.token;
      }
      o.token = token;
    }
    this._tokenRefresh = false;
    const query = o.tokenTransport === 'query';
    const names = this._upgradeNames();
    /* Recover only what the server can replay: the names on the URL. A
     * subscription that does not fit there would miss its messages unseen. */
    const since = this._pos && names.length === this._subs.size ? resumeString(this._pos) : null;
    this._resumeProblem = this._pos && !since ? 'too_many_subscriptions' : '';
    const url = buildSocketUrl(o.url, names, query ? token : null, since);
    let ws;
    try {
      ws = query ? new this._wsImpl(url) : new this._wsImpl(url, socketProtocols(token));
    } catch (e) {
      return this._scheduleReconnect(new HubbubError('connect_failed', 'cannot open WebSocket: ' + (e && e.message), { cause: e }));
    }
    this._ws = ws;
    this._sock = { opened: false, welcomed: false, status: 0, detail: '', refusal: null, since, replayed: 0 };
    this._connectTimer = setTimeout(() => {
      this._connectTimer = null;
      this._lost(ws, undefined, '', 'no welcome within connectTimeoutMs (' + o.connectTimeoutMs + ' ms)');
    }, o.connectTimeoutMs);
    ws.onopen = () => {
      if (ws === this._ws) this._sock.opened = true;
    };
    ws.onmessage = (ev) => this._onMessage(ws, ev);
    ws.onerror = (ev) => {
      if (ws !== this._ws) return;
      /* Node's `ws` says why a handshake failed ("Unexpected server response: 401",
       * "Server sent no subprotocol"), undici a little; browsers say nothing. */
      const detail = String((ev && (ev.message || (ev.error && ev.error.message))) || '');
      const m = /Unexpected server response: (\d+)/.exec(detail);
      if (m) this._sock.status = Number(m[1]);
      if (detail && !this._sock.detail) this._sock.detail = detail;
      /* Before the open, a 'close' could only say 1006: the attempt is over now. */
      if (!this._sock.opened) return this._lost(ws, CLOSE_ABNORMAL, '');
      this._graceClose(ws);
    };
    ws.onclose = (ev) => this._lost(ws, ev && ev.code ? ev.code : CLOSE_ABNORMAL, ev && ev.reason ? String(ev.reason) : '');
  }

  /* An 'error', or a refusal message, that the 'close' should follow: if it
   * does not within ERROR_CLOSE_GRACE_MS, the socket is given up for lost. */
  _graceClose(ws) {
    if (this._errorTimer) return;
    this._errorTimer = setTimeout(() => {
      this._errorTimer = null;
      this._lost(ws, undefined, '');
    }, ERROR_CLOSE_GRACE_MS);
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
      case 'gap':
        return this._onGap(msg);
      case 'presence.snapshot':
        return this._settle(msg.id, null, msg);
      case 'presence.delta':
        return this._onPresenceDelta(msg);
      case 'error':
        if (!this._sock.welcomed) {
          /* A refusal (docs/protocol.md section 2): the close follows; it
           * decides what happens next, and reports this as the one error. */
          this._sock.refusal = { code: String(msg.code || 'unknown_error'), message: msg.message ? String(msg.message) : '' };
          return this._graceClose(ws);
        }
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
    this._sock.opened = true;
    this._sock.welcomed = true;
    this._attempt = 0;
    this._everOpen = true;
    this.welcome = msg;
    this.room = msg.room || null;
    this.connectionId = msg.connection_id || null;
    const loss = this._takePositions(msg);
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
    for (const item of queue) {
      clearTimeout(item.queueTimer);
      this._sendRequest(item, 'publish');
    }
    /* Every presence subscription gets a fresh snapshot: what was held
     * before the reconnect may be stale, and is replaced, never patched. */
    for (const [scope, pr] of this._presence) this._presenceSend(scope, pr);
    const gets = this._presenceWaiters;
    this._presenceWaiters = [];
    for (const w of gets) w.run();
    this._startPing(msg);
    this._setState('open');
    this._emit('welcome', msg);
    if (loss) this._emit(loss.event, loss.info);
    const waiters = this._connectWaiters;
    this._connectWaiters = [];
    for (const w of waiters) w.resolve(msg);
  }

  _dispatch(msg) {
    /* Its place in its scope's channel: one at or before where this client
     * is was delivered already (a replay overlapping what arrived live). */
    const pos = this._pos && SCOPES.indexOf(msg.scope) >= 0 ? this._pos[msg.scope] : null;
    if (pos && Number.isSafeInteger(msg.offset)) {
      if (msg.offset <= pos.offset) return;
      pos.offset = msg.offset;
    }
    if (!this._sock.welcomed) this._sock.replayed++;
    const sub = this._subs.get(msg.eventName);
    if (!sub) return;
    const meta = {
      eventName: msg.eventName,
      scope: msg.scope,
      messageId: msg.message_id,
      sentAt: msg.sent_at,
    };
    if (Number.isSafeInteger(msg.offset)) meta.offset = msg.offset; /* servers with history */
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

  /*
   * The welcome's positions become this client's, and what the welcome says
   * of a recovery this attempt asked for becomes the event to emit once the
   * client is open: { event: 'recovered' | 'resync', info } or null.
   */
  _takePositions(msg) {
    const room = roomKey(msg.room);
    const sameRoom = this._pos !== null && room === this._posRoom;
    const asked = this._sock.since !== null;
    const problem = this._resumeProblem;
    this._resumeProblem = '';
    this._pos = positionsOf(msg.positions);
    this._posRoom = room;
    if (!sameRoom) return null; /* a first connection, or another room: nothing to recover */
    if (asked && msg.recovered === true) return { event: 'recovered', info: { replayed: this._sock.replayed } };
    const scopes = {};
    if (asked && msg.recovered === false) {
      const failed = isPlainObject(msg.recovery) && isPlainObject(msg.recovery.failed) ? msg.recovery.failed : {};
      for (const scope of SCOPES) {
        if (failed[scope] !== undefined) scopes[scope] = String(failed[scope]);
      }
      if (Object.keys(scopes).length === 0) for (const scope of SCOPES) scopes[scope] = 'unknown';
    } else {
      /* Not asked (its names did not fit the URL), or a server that did not
       * answer the question: what was published meanwhile is unknown. */
      for (const scope of SCOPES) scopes[scope] = asked ? 'unknown' : problem || 'unknown';
    }
    return { event: 'resync', info: { cause: 'recovery_failed', scopes } };
  }

  /*
   * A gap notice (docs/protocol.md section 6): messages of one scope's
   * channel up to (epoch, offset) will not come, and no reconnect can bring
   * them back (the server sends one only once its history no longer has
   * them). The position moves past them, so a later recovery starts there;
   * the application is told. A notice at or behind the position changes
   * nothing.
   */
  _onGap(msg) {
    const scope = msg.scope;
    if (SCOPES.indexOf(scope) < 0) return;
    const at = positionOf(msg);
    const cur = this._pos ? this._pos[scope] : null;
    if (at && cur && cur.epoch === at.epoch && at.offset <= cur.offset) return;
    if (at && cur) this._pos[scope] = at;
    const reason = typeof msg.reason === 'string' && msg.reason ? msg.reason : 'unknown';
    this._emit('gap', { scope, epoch: msg.epoch, offset: msg.offset, reason });
    this._emit('resync', { cause: 'gap', scopes: { [scope]: reason } });
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
      const err = new HubbubError('timeout', kind + ' was not acknowledged within ackTimeoutMs (' + this._opts.ackTimeoutMs + ' ms)',
        { requestId: item.id, eventName: item.eventName });
      this._settle(item.id, err, null);
      this._emit('error', err);
    }, this._opts.ackTimeoutMs);
    this._pending.set(item.id, { kind, resolve: item.resolve, reject: item.reject, timer, eventName: item.eventName, item });
  }

  _settle(id, err, ack) {
    const p = id != null ? this._pending.get(id) : null;
    if (!p) return;
    this._pending.delete(id);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else if (p.kind === 'presence') p.resolve(ack);
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
        return this._lost(ws, CLOSE_ABNORMAL, 'ping failed');
      }
      if (!this._pongTimer) {
        this._pongTimer = setTimeout(() => {
          this._pongTimer = null;
          this._lost(ws, undefined, '', 'no answer to a ping within pongTimeoutMs (' + this._opts.pongTimeoutMs + ' ms)');
        }, this._opts.pongTimeoutMs);
      }
    }, every);
  }

  /*
   * The socket `ws` is gone: closed (`code`, `reason`), failed without a close
   * (code undefined), or abandoned by one of our timers (`timeout` says why).
   * Runs at most once per socket: the first caller tears it down. Reports one
   * error and reconnects, refreshes the token, or stops (lossOutcome).
   */
  _lost(ws, code, reason, timeout) {
    if (ws !== this._ws) return;
    const sock = this._sock;
    this._teardownSocket();
    try {
      ws.close();
    } catch (e) { /* not open yet or already closing */ }
    /* Sent but not acknowledged: it may or may not have arrived. A publish goes
     * back to the front of the queue with its idempotency key, so the resend
     * after the reconnect is answered with the first result and never
     * delivered twice; if the client gives up, _failAll rejects it. Other
     * requests (subscriptions are re-sent anyway) reject. */
    this._requeuePublishes();
    this._rejectPending('connection_lost', 'the connection closed before the server answered');
    for (const sub of this._subs.values()) {
      if (sub.live) this._resetReady(sub);
      sub.live = false;
    }
    for (const pr of this._presence.values()) {
      if (pr.live) this._resetReady(pr);
      pr.live = false;
    }
    const out = lossOutcome(sock, code, reason, timeout, typeof this._opts.getToken === 'function');
    const err = new HubbubError(out.code, out.message, { closeCode: out.closeCode, reason: out.reason, status: out.status });
    if (out.policy === 'stop' || !this._opts.reconnect) return this._giveUp(err);
    if (out.policy === 'refresh') this._tokenRefresh = true;
    if (code === CLOSE_RATE_LIMITED) this._attempt = Math.max(this._attempt, 4); /* "after backoff" */
    this._scheduleReconnect(err);
  }

  /* The end: everything waiting rejects with `err`, the state is closed, and
   * then `err` is emitted (a listener that reads `state` sees 'closed'). */
  _giveUp(err) {
    this._failAll(err);
    this._setState('closed');
    this._emit('error', err);
  }

  _requeuePublishes() {
    const again = [];
    for (const [id, p] of this._pending) {
      if (p.kind !== 'publish') continue;
      clearTimeout(p.timer);
      this._pending.delete(id);
      again.push(p.item);
    }
    this._queue = again.concat(this._queue);
    for (const item of again) this._armQueueTimer(item); /* bounded like any queued publish */
  }

  /* A queued publish waits at most queueTimeoutMs for a connection. */
  _armQueueTimer(item) {
    item.queueTimer = null;
    const wait = this._opts.queueTimeoutMs;
    if (!(wait > 0 && wait < Infinity)) return;
    item.queueTimer = setTimeout(() => {
      const i = this._queue.indexOf(item);
      if (i < 0) return;
      this._queue.splice(i, 1);
      item.fail('timeout', 'publish: not connected within queueTimeoutMs (' + wait + ' ms)' +
        (this._state === 'idle' ? '; connect() was never called' : ''));
    }, wait);
  }

  _rejectPending(code, message) {
    const pending = this._pending;
    this._pending = new Map();
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      p.reject(new HubbubError(code, message, { requestId: id, eventName: p.eventName }));
    }
  }

  /* After a failed attempt: report `cause` and try again after the backoff
   * delay, or give up when maxReconnectAttempts is reached. The state changes
   * first, so that an 'error' listener sees what happens next. */
  _scheduleReconnect(cause) {
    if (this._attempt >= this._opts.maxReconnectAttempts) {
      this._emit('error', cause);
      return this._giveUp(new HubbubError('reconnect_failed', 'gave up after ' + this._attempt + ' attempts (last: ' + cause.code + ')',
        { cause, closeCode: cause.closeCode, status: cause.status }));
    }
    this._setState('reconnecting');
    const delay = backoffDelay(this._attempt, this._opts);
    this._attempt++;
    this._clearTimer('_reconnectTimer');
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      this._open();
    }, delay);
    this._emit('error', cause);
  }

  _teardownSocket() {
    const ws = this._ws;
    this._ws = null;
    this._clearTimer('_connectTimer');
    this._clearTimer('_errorTimer');
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

  /* The client gives up: every waiting promise rejects with `err`'s code (the
   * connect() promises with `err` itself). */
  _failAll(err) {
    const copy = (extra) => new HubbubError(err.code, err.message,
      Object.assign({ closeCode: err.closeCode, reason: err.reason, status: err.status }, extra));
    for (const [id, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(copy({ requestId: id, eventName: p.eventName }));
    }
    this._pending.clear();
    const queue = this._queue;
    this._queue = [];
    for (const item of queue) {
      clearTimeout(item.queueTimer);
      item.reject(copy({ eventName: item.eventName }));
    }
    for (const [name, sub] of this._subs) {
      sub.reject(copy({ eventName: name }));
      this._resetReady(sub);
    }
    for (const pr of this._presence.values()) {
      pr.reject(copy({}));
      this._resetReady(pr);
    }
    const gets = this._presenceWaiters;
    this._presenceWaiters = [];
    for (const w of gets) w.fail(copy({}));
    const waiters = this._connectWaiters;
    this._connectWaiters = [];
    for (const w of waiters) w.reject(err);
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

/* ---- Presence (docs/sdk.md, "Presence"; docs/protocol.md, "Presence") ----
 *
 * The server sends a subscriber a snapshot (the first members, the exact
 * count, a version), then at most one delta per interval with the joins and
 * leaves since the last one and the new count. Each delta carries the next
 * version, and the server guarantees that the deltas after a snapshot are
 * exactly those with a higher version, in order: applying them keeps the
 * list exact. When a snapshot or a delta was truncated (a large room) the
 * list is a sample (`complete: false`); when the count is small enough for
 * one page again, the SDK fetches a fresh page and is complete again.
 */

/* Why presence options cannot be used, or '' (docs/sdk.md, "Presence"). */
function presenceProblem(what, options, known) {
  if (options == null) return '';
  if (!isPlainObject(options)) return what + ': options must be an object, e.g. { scope: \'event\' }';
  for (const k of Object.keys(options)) {
    if (known.indexOf(k) < 0) return what + ": unknown option '" + k + "' (known: " + known.join(', ') + ')';
  }
  if (options.scope != null && PRESENCE_SCOPES.indexOf(options.scope) < 0) {
    return what + ": scope must be 'session' or 'event' (presence is not kept per organization)";
  }
  if (options.cursor != null && (typeof options.cursor !== 'string' || !/^[0-9]{1,20}$/.test(options.cursor))) {
    return what + ': cursor must be the cursor of an earlier page';
  }
  if (options.limit != null && !(Number.isInteger(options.limit) && options.limit >= 1 && options.limit <= PRESENCE_PAGE_MAX)) {
    return what + ': limit must be an integer from 1 to ' + PRESENCE_PAGE_MAX;
  }
  return '';
}

/* The SDK's shape of a member: { userId, info? }. */
function presenceMember(m) {
  const out = { userId: String(m.user_id) };
  if (m.info !== undefined) out.info = m.info;
  return out;
}

/* The SDK's shape of a page. */
function presencePage(msg) {
  const page = {
    scope: msg.scope,
    version: msg.version,
    count: msg.count,
    members: Array.isArray(msg.members) ? msg.members.map(presenceMember) : [],
    truncated: !!msg.truncated,
  };
  if (msg.truncated && msg.cursor) page.cursor = String(msg.cursor);
  return page;
}

Object.assign(Client.prototype, {
  _presenceGet(options) {
    return quietPromise((resolve, reject) => {
      const fail = (err) => {
        reject(err);
        this._emit('error', err);
      };
      const problem = presenceProblem('presence.get', options, PRESENCE_GET_OPTIONS);
      if (problem) return fail(new HubbubError('invalid_argument', problem));
      if (this._state === 'closed') return fail(new HubbubError('closed', 'presence.get: the client is closed'));
      const o = options || {};
      const req = { type: 'presence.get', scope: o.scope || 'session' };
      if (o.cursor != null) req.cursor = o.cursor;
      if (o.limit != null) req.limit = o.limit;
      const run = () => this._presenceRequest(req, (msg) => resolve(presencePage(msg)), fail);
      if (this._state === 'open') return run();
      /* Not connected: asked once the server welcomes us, like a queued publish. */
      const wait = this._opts.queueTimeoutMs;
      const w = { run: () => (clearTimeout(w.timer), run()), fail: (e) => (clearTimeout(w.timer), fail(e)), timer: null };
      if (wait > 0 && wait < Infinity) {
        w.timer = setTimeout(() => {
          const i = this._presenceWaiters.indexOf(w);
          if (i < 0) return;
          this._presenceWaiters.splice(i, 1);
          fail(new HubbubError('timeout', 'presence.get: not connected within queueTimeoutMs (' + wait + ' ms)'));
        }, wait);
      }
      this._presenceWaiters.push(w);
    });
  },

  _presenceSubscribe(callback, options) {
    if (typeof callback !== 'function') {
      throw new HubbubError('invalid_argument', 'presence.subscribe: the callback must be a function, e.g. presence.subscribe((p) => …)');
    }
    const problem = presenceProblem('presence.subscribe', options, ['scope']);
    if (problem) throw new HubbubError('invalid_argument', problem);
    const scope = (options && options.scope) || 'session';
    let pr = this._presence.get(scope);
    if (!pr) {
      pr = { scope, callbacks: new Set(), live: false, members: new Map(), count: 0, version: -1, complete: false, state: null };
      this._resetReady(pr);
      this._presence.set(scope, pr);
      if (this._state === 'open') this._presenceSend(scope, pr);
    } else if (pr.state) {
      /* A late subscriber hears what the others already know, at once. */
      const st = pr.state;
      Promise.resolve().then(() => {
        if (pr.callbacks.has(callback)) this._presenceCall(pr, callback, st);
      });
    }
    pr.callbacks.add(callback);
    const off = () => {
      if (!pr.callbacks.delete(callback) || pr.callbacks.size > 0) return;
      this._presence.delete(scope);
      pr.reject(new HubbubError('unsubscribed', 'unsubscribed before the server sent a snapshot'));
      if (this._state === 'open') {
        this._presenceRequest({ type: 'presence.unsubscribe', scope }, noop, noop);
      }
    };
    off.ready = pr.ready;
    return off;
  },

  /* A presence request: `onAnswer` gets the server's answer (a snapshot, an
   * ack) synchronously, as it arrives, so that deltas read right after it
   * (often in the same read) apply to the state it set; `onError` a HubbubError. */
  _presenceRequest(req, onAnswer, onError) {
    const id = 'c' + this._nextId++;
    this._sendRequest({ id, frame: JSON.stringify(Object.assign({}, req, { id })), resolve: onAnswer, reject: onError }, 'presence');
  },

  /* (Re)subscribe: the snapshot replaces whatever was held. */
  _presenceSend(scope, pr) {
    pr.live = false;
    this._presenceRequest({ type: 'presence.subscribe', scope }, (msg) => {
      if (this._presence.get(scope) !== pr) return; /* unsubscribed meanwhile */
      pr.members = new Map();
      for (const m of msg.members || []) pr.members.set(String(m.user_id), presenceMember(m));
      pr.count = msg.count;
      pr.version = msg.version;
      pr.complete = !msg.truncated;
      pr.live = true;
      pr.resolve();
      this._presenceNotify(pr, [], []);
      this._presenceMaybeRefresh(pr);
    }, (err) => {
      if (this._presence.get(scope) !== pr) return;
      if (err && err.code === 'connection_lost') return; /* the reconnect asks again */
      this._presence.delete(scope);
      pr.reject(err);
    });
  },

  _onPresenceDelta(msg) {
    const pr = this._presence.get(msg.scope);
    if (!pr || !pr.live || typeof msg.version !== 'number' || msg.version <= pr.version) return;
    if (msg.version !== pr.version + 1) {
      /* Never expected (the server sends every version in order); if it
       * happens, start again from a snapshot rather than hold a wrong list. */
      return this._presenceSend(pr.scope, pr);
    }
    pr.version = msg.version;
    pr.count = msg.count;
    const leaves = Array.isArray(msg.leaves) ? msg.leaves.map(String) : [];
    const joins = Array.isArray(msg.joins) ? msg.joins.map(presenceMember) : [];
    for (const u of leaves) pr.members.delete(u);
    for (const m of joins) pr.members.set(m.userId, m);
    if (msg.truncated) pr.complete = false;
    this._presenceNotify(pr, joins, leaves);
    this._presenceMaybeRefresh(pr);
  },

  /* A sample whose room fits in one page again: fetch the page, be complete. */
  _presenceMaybeRefresh(pr) {
    const limits = this.welcome && this.welcome.limits;
    const max = limits && limits.presence_list_max > 0 ? limits.presence_list_max : 100;
    if (pr.complete || pr.refreshing || pr.count > max || this._state !== 'open') return;
    pr.refreshing = true;
    this._presenceRequest({ type: 'presence.get', scope: pr.scope, limit: max }, (msg) => {
      pr.refreshing = false;
      /* Deltas up to the page's version arrived before it: it replaces them. */
      if (this._presence.get(pr.scope) !== pr || msg.version < pr.version || msg.truncated) return;
      pr.members = new Map((msg.members || []).map((m) => [String(m.user_id), presenceMember(m)]));
      pr.count = msg.count;
      pr.version = msg.version;
      pr.complete = true;
      this._presenceNotify(pr, [], []);
    }, () => {
      pr.refreshing = false;
    });
  },

  _presenceNotify(pr, joins, leaves) {
    const st = {
      scope: pr.scope,
      count: pr.count,
      members: Array.from(pr.members.values()),
      complete: pr.complete,
      joins,
      leaves,
    };
    pr.state = st;
    for (const cb of Array.from(pr.callbacks)) {
      if (pr.callbacks.has(cb)) this._presenceCall(pr, cb, st);
    }
  },

  _presenceCall(pr, cb, st) {
    try {
      cb(st);
    } catch (e) {
      this._emit('error', new HubbubError('callback_error', 'a presence subscriber threw: ' + (e && e.message), { cause: e }));
    }
  },
});

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

/* Not API: the pieces the SDK's own tests check one by one. Absent from
 * hubbub.d.ts and docs/sdk.md; may change in any release. */
const _internal = Object.freeze({
  DEFAULTS, ERROR_CLOSE_GRACE_MS, REFUSAL_CLOSE_CODES, backoffDelay, closePolicy, statusCloseCode, lossOutcome,
  buildSocketUrl, socketProtocols, tokenProblem, publishProblem, presenceProblem, positionsOf, resumeString,
});

// @@exports-begin (build.mjs: the classic build replaces this block)
export { PubSub, createClient, HubbubError, Client, VERSION, _internal };
export default PubSub;
// @@exports-end
