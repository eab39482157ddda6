// The end-to-end harness: starts the real `hubbub` binary on a free port with a
// fresh data directory and talks to it the way users do (CLI, HTTP, WebSocket),
// plus raw sockets for the requests and frames no well-behaved client would send.
//
// Every wait here is bounded: a hung server fails a test, it never hangs the suite.
// Other suites (the SDK tests, the browser tests) import this file: keep its API.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '../..');
export const BIN = process.env.HUBBUB_BIN || path.join(REPO, 'build/hubbub');

// Node 20 has no global WebSocket; the `ws` package is a root dev dependency.
const require = createRequire(path.join(REPO, 'package.json'));
export const WebSocket = require('ws');

const START_TIMEOUT_MS = 10000;
const STOP_TIMEOUT_MS = 8000; // the server's shutdown grace is 5 s
const CLI_TIMEOUT_MS = 10000;
const HTTP_TIMEOUT_MS = 10000;
const CONNECT_TIMEOUT_MS = 5000;
const MAX_STDERR_BYTES = 4 * 1024 * 1024;
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/**
 * How long a test waits for the server to act on a change made in the store
 * by the CLI or another node (it looks every HB_AUTH_RELOAD_INTERVAL_MS): a
 * bound against a hang, not a latency claim (no test asserts how fast).
 */
export const STORE_CHANGE_WAIT_MS = 5000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const uuid = () => crypto.randomUUID();
export const room = () => ({ event_id: uuid(), session_id: uuid() });
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const nowS = () => Math.floor(Date.now() / 1000);

/** Reject after `ms` with a message saying what we were waiting for. */
export function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/**
 * Let time pass because the test needs the clock to move, not to wait for
 * something: to go past a server timeout, to let a token bucket refill, to
 * keep a connection quiet. `why` says which. Anything a test waits FOR is a
 * marker (a message, a log line, a metric), never a pause.
 */
export async function passTime(ms, why) {
  if (typeof why !== 'string' || !why) throw new Error('passTime: say why the time must pass');
  await sleep(ms);
}

/**
 * A bounded observation window: watch `ms` for something that must NOT
 * happen (a duplicate, a stray delivery, an UNSUBSCRIBE); the caller then
 * asserts it did not. `what` names it. Not synchronisation: a longer window
 * only makes the check stricter.
 */
export async function observeFor(ms, what) {
  if (typeof what !== 'string' || !what) throw new Error('observeFor: name what is watched for');
  await sleep(ms);
}

/** Poll `pred` (may be async) until it returns truthy, for at most `ms`. */
export async function poll(pred, ms = 3000, what = 'condition', every = 25) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

/**
 * The value of a numeric constant of include/hubbub/limits.h, so that a test
 * that crosses a fixed limit follows the constant instead of copying it.
 */
export function limit(name) {
  const text = readFileSync(path.join(REPO, 'include/hubbub/limits.h'), 'utf8');
  const m = new RegExp(`^#define ${name} ([0-9()* +]+?)\\s*(?:/\\*.*)?$`, 'm').exec(text);
  if (!m) throw new Error(`limits.h has no numeric ${name}`);
  return Function(`return (${m[1]})`)();
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/**
 * Sign a JWT with node:crypto only. `header.alg` picks the HMAC: HS256 and
 * HS512 are signed, anything else (e.g. "none") gets an empty signature, which
 * is what attackers send.
 */
export function mintJwt(secret, claims, header = { alg: 'HS256', typ: 'JWT' }) {
  const input = b64url(JSON.stringify(header)) + '.' + b64url(JSON.stringify(claims));
  const algs = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };
  const h = algs[header.alg];
  const sig = h ? crypto.createHmac(h, Buffer.from(secret, 'ascii')).update(input).digest() : Buffer.alloc(0);
  return input + '.' + b64url(sig);
}

/** Decode a JWT without verifying it: { header, claims, signature }. */
export function decodeJwt(token) {
  const [h, c, s] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    claims: JSON.parse(Buffer.from(c, 'base64url').toString('utf8')),
    signature: s,
  };
}

/** Verify an HS256 JWT with `secret` (constant time). */
export function verifyJwt(token, secret) {
  const i = token.lastIndexOf('.');
  const want = crypto.createHmac('sha256', Buffer.from(secret, 'ascii')).update(token.slice(0, i)).digest();
  const got = Buffer.from(token.slice(i + 1), 'base64url');
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

// ---------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------

/** Parse one HTTP/1.1 response from raw bytes: { status, reason, headers, body, json, complete }. */
export function parseHttpResponse(raw) {
  const buf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'latin1');
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: {}, body: '', json: null, complete: false, raw: buf.toString('latin1') };
  const head = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(head[0]);
  const headers = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    headers[k] = k in headers ? headers[k] + ', ' + v : v;
  }
  let rest = buf.subarray(end + 4);
  let complete = true;
  if (headers['transfer-encoding'] && /chunked/i.test(headers['transfer-encoding'])) {
    const parts = [];
    let off = 0;
    complete = false;
    for (;;) {
      const nl = rest.indexOf('\r\n', off);
      if (nl < 0) break;
      const n = parseInt(rest.subarray(off, nl).toString('latin1'), 16);
      if (Number.isNaN(n)) break;
      if (n === 0) {
        complete = true;
        break;
      }
      if (nl + 2 + n > rest.length) break;
      parts.push(rest.subarray(nl + 2, nl + 2 + n));
      off = nl + 2 + n + 2;
    }
    rest = Buffer.concat(parts);
  } else if (headers['content-length'] !== undefined) {
    const n = parseInt(headers['content-length'], 10);
    complete = rest.length >= n;
    rest = rest.subarray(0, n);
  } else if (m && (m[1] === '101' || m[1] === '204' || m[1] === '304')) {
    rest = Buffer.alloc(0);
  } else {
    complete = false; // body runs to the end of the connection
  }
  const body = rest.toString('utf8');
  let json = null;
  try {
    json = JSON.parse(body);
  } catch {
    /* not JSON */
  }
  return { status: m ? Number(m[1]) : 0, reason: m ? m[2] : '', headers, body, json, complete, raw: buf.toString('latin1') };
}

/**
 * Send hand-written bytes to 127.0.0.1:port and return the raw response as a
 * string (latin1, so bytes survive). Resolves when the server closes, when one
 * complete response is in (unless `untilClose`), or after `timeoutMs`.
 */
export function rawHttp(port, bytes, { timeoutMs = 3000, untilClose = false } = {}) {
  return new Promise((resolve) => {
    const chunks = [];
    let done = false;
    const sock = net.connect(port, '127.0.0.1');
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('connect', () => {
      const list = Array.isArray(bytes) ? bytes : [bytes];
      for (const b of list) sock.write(b);
    });
    sock.on('data', (d) => {
      chunks.push(d);
      if (!untilClose && parseHttpResponse(Buffer.concat(chunks)).complete) finish();
    });
    sock.on('end', finish);
    sock.on('close', finish);
    sock.on('error', finish);
  });
}

// ---------------------------------------------------------------------------
// Raw WebSocket: hand-made frames for protocol-violation tests
// ---------------------------------------------------------------------------

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

/**
 * Encode one frame. Defaults to a final, masked text frame (what a client
 * must send); every bit can be bent for the violation tests.
 */
export function encodeFrame({ opcode = OP.TEXT, payload = Buffer.alloc(0), fin = true, rsv = 0, mask = true, maskKey = null, declaredLength = null } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const len = declaredLength ?? data.length;
  const b0 = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  let head;
  if (len < 126) {
    head = Buffer.from([b0, (mask ? 0x80 : 0) | len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = b0;
    head[1] = (mask ? 0x80 : 0) | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = (mask ? 0x80 : 0) | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  if (!mask) return Buffer.concat([head, data]);
  const key = maskKey || crypto.randomBytes(4);
  const body = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) body[i] = data[i] ^ key[i & 3];
  return Buffer.concat([head, key, body]);
}

/** A close frame payload: 2-byte code + reason. */
export function closePayload(code, reason = '') {
  const r = Buffer.isBuffer(reason) ? reason : Buffer.from(reason, 'utf8');
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
}

/**
 * Open a raw WebSocket: a net socket that performs the upgrade by hand.
 * `path` defaults to /api/v1/ws?token=<token>. Resolves once the 101 is in
 * (rejects with .response if another status came back).
 *
 * Returns { sock, response, frames, texts, send(frameOpts), sendText(str),
 *   sendJson(obj), waitFrame(pred, ms), waitJson(pred, ms), closed, ended,
 *   pause(), resume(), bytesRead(), destroy() }.
 * `closed` resolves with { code, reason } at the server's close frame (code
 * null when the TCP connection ended without one); `ended` when TCP is gone.
 */
export function rawWs(port, token, { path: p = null, headers = {}, timeoutMs = CONNECT_TIMEOUT_MS } = {}) {
  const key = crypto.randomBytes(16).toString('base64');
  const target = p ?? `/api/v1/ws?token=${encodeURIComponent(token)}`;
  const hdrs = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  let req = `GET ${target} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(hdrs)) if (v !== undefined && v !== null) req += `${k}: ${v}\r\n`;
  req += '\r\n';

  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let total = 0;
    const frames = [];
    const texts = [];
    const waiters = new Set();
    let fragments = null; // [opcode, parts] of a message being reassembled
    let closeResolve, endResolve;
    const closed = new Promise((r) => (closeResolve = r));
    const ended = new Promise((r) => (endResolve = r));
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`raw WebSocket handshake timed out after ${timeoutMs} ms`));
    }, timeoutMs);

    const notify = () => {
      for (const w of waiters) w();
    };
    const parseFrames = () => {
      for (;;) {
        if (buf.length < 2) return;
        const fin = (buf[0] & 0x80) !== 0;
        const rsv = (buf[0] >> 4) & 7;
        const opcode = buf[0] & 0x0f;
        const masked = (buf[1] & 0x80) !== 0;
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (masked) off += 4;
        if (buf.length < off + len) return;
        let payload = Buffer.from(buf.subarray(off, off + len));
        if (masked) {
          const k = buf.subarray(off - 4, off);
          for (let i = 0; i < payload.length; i++) payload[i] ^= k[i & 3];
        }
        buf = buf.subarray(off + len);
        const f = { fin, rsv, opcode, masked, payload };
        frames.push(f);
        if (opcode === OP.CLOSE) {
          closeResolve({
            code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005,
            reason: payload.subarray(2).toString('utf8'),
            masked,
          });
        } else if (opcode === OP.TEXT || opcode === OP.BINARY) {
          if (fin) texts.push(payload.toString('utf8'));
          else fragments = [opcode, [payload]];
        } else if (opcode === OP.CONT && fragments) {
          fragments[1].push(payload);
          if (fin) {
            texts.push(Buffer.concat(fragments[1]).toString('utf8'));
            fragments = null;
          }
        }
      }
    };

    sock.on('connect', () => sock.write(req));
    sock.on('data', (d) => {
      total += d.length;
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const response = parseHttpResponse(buf.subarray(0, end + 4));
        if (response.status !== 101) {
          // Read the error body too, so the test can check its code.
          const full = parseHttpResponse(buf);
          if (!full.complete) return;
          clearTimeout(timer);
          sock.destroy();
          const e = new Error(`expected 101, got ${full.status}: ${full.body}`);
          e.response = full;
          reject(e);
          return;
        }
        upgraded = true;
        clearTimeout(timer);
        buf = buf.subarray(end + 4);
        client.response = response;
        const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
        client.acceptOk = response.headers['sec-websocket-accept'] === accept;
        resolve(client);
      }
      parseFrames();
      notify();
    });
    const onGone = () => {
      clearTimeout(timer);
      if (!upgraded) {
        const full = parseHttpResponse(buf);
        const e = new Error(`connection closed before 101 (status ${full.status}): ${full.body}`);
        e.response = full;
        reject(e);
      }
      closeResolve({ code: null, reason: '' });
      endResolve();
      notify();
    };
    sock.on('end', onGone);
    sock.on('close', onGone);
    sock.on('error', () => {});

    const waitFrame = (pred, ms = 3000, what = 'a frame') =>
      new Promise((res, rej) => {
        const check = () => {
          const f = frames.find(pred);
          if (f) {
            waiters.delete(check);
            clearTimeout(t);
            res(f);
          }
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          rej(new Error(`timed out after ${ms} ms waiting for ${what}`));
        }, ms);
        waiters.add(check);
        check();
      });

    const client = {
      sock,
      response: null,
      acceptOk: false,
      frames,
      texts,
      get messages() {
        return texts.map((t) => {
          try {
            return JSON.parse(t);
          } catch {
            return { unparsable: t };
          }
        });
      },
      write: (bytes) => sock.write(bytes),
      send: (opts) => sock.write(encodeFrame(opts)),
      sendText: (s) => sock.write(encodeFrame({ opcode: OP.TEXT, payload: s })),
      sendJson: (o) => sock.write(encodeFrame({ opcode: OP.TEXT, payload: JSON.stringify(o) })),
      sendClose: (code = 1000, reason = '') => sock.write(encodeFrame({ opcode: OP.CLOSE, payload: closePayload(code, reason) })),
      waitFrame,
      waitJson: async (pred, ms = 3000, what = 'a JSON message') => {
        const end = Date.now() + ms;
        for (;;) {
          const m = client.messages.find(pred);
          if (m) return m;
          const left = end - Date.now();
          if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}; got ${JSON.stringify(client.messages).slice(0, 500)}`);
          await Promise.race([sleep(Math.min(left, 20)), ended]);
          if (client.isEnded && !client.messages.find(pred)) throw new Error(`connection ended while waiting for ${what}`);
        }
      },
      closed,
      ended,
      isEnded: false,
      pause: () => sock.pause(),
      isPaused: () => sock.isPaused(),
      resume: () => sock.resume(),
      bytesRead: () => total,
      destroy: () => sock.destroy(),
    };
    ended.then(() => (client.isEnded = true));
  });
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/**
 * Start a fresh server. `config` (an object) is written as JSON and passed
 * with --config; `args` are appended to the serve command line. `store` (a
 * store location, e.g. a PostgreSQL URI from pg-harness.mjs) replaces the
 * data directory as the store of the server and of srv.cli().
 */
export async function startServer({ threads = 2, config = null, args = [], env = {}, dataDir: sharedDir = null, store = null } = {}) {
  // A shared data dir (several nodes of one cluster) belongs to the caller.
  const ownsData = !sharedDir;
  const dataDir = sharedDir || mkdtempSync(path.join(os.tmpdir(), 'hubbub-e2e-'));
  const where = store ? ['--store', store] : ['--data', dataDir];
  const argv = ['serve', '--listen', '127.0.0.1:0', ...where, '--threads', String(threads)];
  if (config) {
    const file = path.join(dataDir, `config-${uuid().slice(0, 8)}.json`);
    writeFileSync(file, JSON.stringify(config));
    argv.push('--config', file);
  }
  argv.push(...args);

  const child = spawn(BIN, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  const logWaiters = new Set(); // re-checked on every chunk of stderr
  let stdout = '';
  // 'close' rather than 'exit': it fires once stderr is drained too.
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  let exitInfo = null;
  exited.then((e) => (exitInfo = e));
  child.stdout.on('data', (d) => {
    if (stdout.length < MAX_STDERR_BYTES) stdout += d;
  });

  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not print its listening line within ${START_TIMEOUT_MS} ms; stderr:\n${stderr}`));
    }, START_TIMEOUT_MS);
    child.stderr.on('data', (d) => {
      if (stderr.length < MAX_STDERR_BYTES) stderr += d;
      for (const w of logWaiters) w();
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${BIN}: ${e.message}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (code ${code}, signal ${signal}) before listening; stderr:\n${stderr}`));
    });
  });

  const clients = new Set();
  let stopped = null;

  const srv = {
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    dataDir,
    child,
    pid: child.pid,
    get stderr() {
      return stderr;
    },
    get stdout() {
      return stdout;
    },
    get exitInfo() {
      return exitInfo;
    },
    exited,

    /**
     * Wait for a line of the server's stderr matching `re`, written after
     * offset `after` of srv.stderr (take srv.stderr.length before the action
     * that should log it). Resolves with the match.
     */
    waitLog(re, { after = 0, ms = 5000, what = String(re) } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(stderr.slice(after));
          if (!m) return;
          logWaiters.delete(check);
          clearTimeout(timer);
          resolve(m);
        };
        const timer = setTimeout(() => {
          logWaiters.delete(check);
          reject(new Error(`timed out after ${ms} ms waiting for the log line ${what}; stderr tail:\n${stderr.slice(-1500)}`));
        }, ms);
        logWaiters.add(check);
        check();
      });
    },

    /** The value of hubbub_<name> in /metrics (a number; NaN when absent). */
    async metric(name) {
      const res = await srv.http('GET', '/metrics');
      const m = new RegExp(`^hubbub_${name} (-?\\d+)$`, 'm').exec(res.text);
      return m ? Number(m[1]) : NaN;
    },

    /**
     * Metrics read over one keep-alive connection, opened by the first read:
     * reading them opens (and counts) no further connection, so the
     * connection gauges and counters move only for the test's own.
     * { read(name), wait(name, pred, what, ms), close() }.
     */
    metricsProbe() {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const read = (name) =>
        withTimeout(
          new Promise((resolve, reject) => {
            http
              .get({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => {
                let text = '';
                res.on('data', (d) => (text += d));
                res.on('end', () => {
                  const m = new RegExp(`^hubbub_${name} (-?\\d+)$`, 'm').exec(text);
                  resolve(m ? Number(m[1]) : NaN);
                });
                res.on('error', reject);
              })
              .on('error', reject);
          }),
          HTTP_TIMEOUT_MS,
          `GET /metrics (${name})`,
        );
      return {
        read,
        async wait(name, pred, what, ms = 5000) {
          let v;
          await poll(async () => pred((v = await read(name))), ms, `${what} (hubbub_${name} is ${v})`);
          return v;
        },
        close: () => agent.destroy(),
      };
    },

    /** Wait until pred(hubbub_<name>) holds (a marker read from /metrics); resolves with the value. */
    async waitMetric(name, pred, what, ms = 5000) {
      let v;
      await poll(async () => pred((v = await srv.metric(name))), ms, `${what} (hubbub_${name} is ${v})`);
      return v;
    },

    /** Run an admin command against this server's store: { code, stdout, stderr, json }. */
    cliRaw(cliArgs, { json = true } = {}) {
      const full = [...cliArgs, ...where, ...(json ? ['--json'] : [])];
      return new Promise((resolve) => {
        execFile(BIN, full, { timeout: CLI_TIMEOUT_MS, maxBuffer: 8 * 1024 * 1024 }, (err, out, errOut) => {
          let parsed = null;
          try {
            parsed = JSON.parse(out);
          } catch {
            /* not JSON */
          }
          resolve({ code: err ? (err.code ?? 1) : 0, stdout: out, stderr: errOut, json: parsed });
        });
      });
    },

    /** Parsed JSON of `hubbub ...args --data dir|--store loc --json`; throws on failure. */
    async cli(cliArgs) {
      const r = await srv.cliRaw(cliArgs);
      if (r.code !== 0 || r.json === null) {
        throw new Error(`hubbub ${cliArgs.join(' ')} failed (exit ${r.code}): ${r.stderr}${r.stdout}`);
      }
      return r.json;
    },

    /** A fresh organization, plugin and API token. */
    async tenant({ org: orgName = null } = {}) {
      const tag = uuid().slice(0, 8);
      const org = orgName ? { name: orgName } : await srv.cli(['org', 'create', `org-${tag}`]);
      const plugin = await srv.cli(['plugin', 'create', '--org', org.id ?? org.name, `plugin-${tag}`]);
      const tok = await srv.cli(['token', 'create', '--org', org.id ?? org.name, '--plugin', plugin.id, '--name', `token-${tag}`]);
      return {
        org,
        plugin,
        orgId: org.id,
        pluginId: plugin.id,
        signingSecret: plugin.signing_secret,
        apiToken: tok.token,
        tokenId: tok.id,
      };
    },

    /** Another plugin (with its own API token) in the tenant's organization. */
    async siblingPlugin(tenant) {
      const tag = uuid().slice(0, 8);
      const plugin = await srv.cli(['plugin', 'create', '--org', tenant.org.id, `plugin-${tag}`]);
      const tok = await srv.cli(['token', 'create', '--org', tenant.org.id, '--plugin', plugin.id]);
      return {
        org: tenant.org,
        plugin,
        orgId: tenant.org.id,
        pluginId: plugin.id,
        signingSecret: plugin.signing_secret,
        apiToken: tok.token,
        tokenId: tok.id,
      };
    },

    /** HTTP request via node:http (no automatic Content-Type). */
    http(method, p, { headers = {}, body = undefined, chunked = false, timeoutMs = HTTP_TIMEOUT_MS } = {}) {
      let payload = body;
      const hdrs = { ...headers };
      if (payload !== undefined && typeof payload === 'object' && !Buffer.isBuffer(payload)) {
        payload = JSON.stringify(payload);
        if (!Object.keys(hdrs).some((k) => k.toLowerCase() === 'content-type')) hdrs['Content-Type'] = 'application/json';
      }
      if (payload !== undefined && !chunked) hdrs['Content-Length'] = Buffer.byteLength(payload);
      return withTimeout(
        new Promise((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: hdrs, agent: false }, (res) => {
            const chunks = [];
            res.on('data', (d) => chunks.push(d));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let json = null;
              try {
                json = JSON.parse(text);
              } catch {
                /* not JSON */
              }
              resolve({ status: res.statusCode, headers: res.headers, json, text });
            });
            res.on('error', reject);
          });
          req.on('error', reject);
          if (payload !== undefined) {
            if (chunked) {
              // Several chunks so that the server must add them up itself.
              const b = Buffer.from(payload);
              const step = Math.max(1, Math.ceil(b.length / 4));
              for (let i = 0; i < b.length; i += step) req.write(b.subarray(i, i + step));
            } else {
              req.write(payload);
            }
          }
          req.end();
        }),
        timeoutMs,
        `${method} ${p}`,
      );
    },

    /** POST /api/v1/pub_subs with this API token; body an object or a raw string. */
    publish(apiToken, body, { path: p = '/api/v1/pub_subs', headers = {} } = {}) {
      return srv.http('POST', p, {
        headers: { Authorization: apiToken, 'Content-Type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    },

    /** Mint a connection token over HTTP; returns the token string. */
    async connToken(tenant, { event_id, session_id, user_id, scopes, ttl } = {}) {
      const body = {};
      if (event_id !== undefined) body.event_id = event_id;
      if (session_id !== undefined) body.session_id = session_id;
      if (user_id !== undefined) body.user_id = user_id;
      if (scopes !== undefined) body.scopes = scopes;
      if (ttl !== undefined) body.ttl = ttl;
      const r = await srv.http('POST', '/api/v1/connection_tokens', {
        headers: { Authorization: `Bearer ${tenant.apiToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (r.status !== 201 || !r.json || typeof r.json.token !== 'string') {
        throw new Error(`connection_tokens: expected 201 with a token, got ${r.status} ${r.text}`);
      }
      return r.json.token;
    },

    mintJwt,

    /** Claims for a valid offline-minted connection token in `r`. */
    claims(tenant, r, extra = {}) {
      return {
        organization_id: tenant.org.id,
        plugin_id: tenant.plugin.id,
        event_id: r.event_id,
        session_id: r.session_id,
        sub: 'user-' + uuid().slice(0, 8),
        scopes: ['session'],
        iat: nowS(),
        exp: nowS() + 600,
        ...extra,
      };
    },

    /**
     * Open a WebSocket with the `ws` package and wait for the welcome.
     * Rejects (error.status, error.json) when the handshake is refused.
     */
    connect(token, { origin, headers, waitWelcome = true, timeoutMs = CONNECT_TIMEOUT_MS, query = '' } = {}) {
      // `query`: more of the URL's query string, e.g. '&subscribe=a,b&since=h1...'.
      const url = `${srv.wsUrl}/api/v1/ws?token=${encodeURIComponent(token)}${query}`;
      const ws = new WebSocket(url, { origin, headers, perMessageDeflate: false, handshakeTimeout: timeoutMs });
      const messages = [];
      const raw = [];
      const waiters = new Set();
      let reqN = 0;
      let closeInfo = null;
      const closed = new Promise((resolve) => {
        ws.on('close', (code, reason) => {
          closeInfo = { code, reason: reason.toString('utf8') };
          clients.delete(client);
          resolve(closeInfo);
          for (const w of waiters) w();
        });
      });
      ws.on('message', (data, isBinary) => {
        const text = data.toString('utf8');
        raw.push(text);
        let m;
        try {
          m = JSON.parse(text);
        } catch {
          m = { unparsable: text, binary: isBinary };
        }
        messages.push(m);
        for (const w of waiters) w();
      });

      const waitFor = (pred, ms = 3000, what = null) =>
        new Promise((resolve, reject) => {
          const check = () => {
            const m = messages.find(pred);
            if (m) {
              waiters.delete(check);
              clearTimeout(t);
              resolve(m);
            } else if (closeInfo) {
              waiters.delete(check);
              clearTimeout(t);
              reject(new Error(`connection closed (${closeInfo.code} ${closeInfo.reason}) while waiting for ${what || pred.toString()}`));
            }
          };
          const t = setTimeout(() => {
            waiters.delete(check);
            reject(new Error(`timed out after ${ms} ms waiting for ${what || pred.toString()}; got ${JSON.stringify(messages).slice(0, 800)}`));
          }, ms);
          waiters.add(check);
          check();
        });

      const client = {
        ws,
        messages,
        raw,
        welcome: null,
        closed,
        get closeInfo() {
          return closeInfo;
        },
        send(obj) {
          ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
        },
        /** Send with a fresh id; resolves with the ack or error for it. */
        async request(obj, ms = 3000) {
          const id = obj.id ?? `r${++reqN}-${uuid().slice(0, 6)}`;
          client.send({ ...obj, id });
          return waitFor((m) => m.id === id && (m.type === 'ack' || m.type === 'error'), ms, `ack/error for ${id}`);
        },
        /** Subscribe and require the ack. */
        async subscribe(eventName) {
          const r = await client.request({ type: 'subscribe', eventName });
          assert.equal(r.type, 'ack', `subscribe ${eventName}: ${JSON.stringify(r)}`);
          return r;
        },
        waitFor,
        /** Watch `ms` (observeFor), then assert that no message matching `pred` arrived. */
        async expectNone(pred, ms = 300, what = 'message') {
          await observeFor(ms, `no ${what}`);
          const bad = messages.filter(pred);
          assert.equal(bad.length, 0, `expected no ${what}, got ${JSON.stringify(bad).slice(0, 500)}`);
        },
        /** Events named `eventName` received so far. */
        events(eventName) {
          return messages.filter((m) => m.type === 'event' && (eventName === undefined || m.eventName === eventName));
        },
        async close(code = 1000) {
          if (closeInfo) return closeInfo;
          try {
            ws.close(code);
          } catch {
            /* already closing */
          }
          return withTimeout(closed, 3000, 'client close').catch(() => {
            ws.terminate();
            return closeInfo;
          });
        },
      };

      const opened = new Promise((resolve, reject) => {
        ws.on('open', () => {
          clients.add(client);
          resolve();
        });
        ws.on('unexpected-response', (req, res) => {
          const chunks = [];
          res.on('data', (d) => chunks.push(d));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const e = new Error(`WebSocket handshake refused: ${res.statusCode} ${text}`);
            e.status = res.statusCode;
            e.headers = res.headers;
            e.text = text;
            try {
              e.json = JSON.parse(text);
            } catch {
              e.json = null;
            }
            reject(e);
          });
        });
        ws.on('error', (e) => reject(e));
      });
      return withTimeout(
        (async () => {
          await opened;
          if (waitWelcome) client.welcome = await waitFor((m) => m.type === 'welcome', timeoutMs, 'welcome');
          return client;
        })(),
        timeoutMs + 500,
        'WebSocket connect',
      ).catch((e) => {
        ws.terminate();
        throw e;
      });
    },

    /** Mint a token over HTTP, connect in room `r`, subscribe to `subscribe`. */
    async join(tenant, r, { scopes, user_id, subscribe = [] } = {}) {
      const token = await srv.connToken(tenant, { ...r, user_id: user_id ?? 'u-' + uuid().slice(0, 8), scopes });
      const c = await srv.connect(token);
      for (const name of subscribe) await c.subscribe(name);
      return c;
    },

    rawHttp: (bytes, opts) => rawHttp(port, bytes, opts),
    rawWs: (token, opts) => rawWs(port, token, opts),

    /** kill -9: the process dies at once (nothing flushed). Resolves on its exit. */
    async crash() {
      child.kill('SIGKILL');
      stopped = withTimeout(exited, STOP_TIMEOUT_MS, 'server exit after SIGKILL');
      const info = await stopped;
      for (const c of clients) c.ws.terminate();
      return info;
    },

    /**
     * SIGTERM, wait (bounded) for the exit, then assert exit code 0 and no
     * sanitizer report. Idempotent: a second call returns the first result.
     */
    stop({ keepData = false } = {}) {
      if (stopped) return stopped;
      stopped = (async () => {
        if (!exitInfo) child.kill('SIGTERM');
        let info;
        try {
          info = await withTimeout(exited, STOP_TIMEOUT_MS, 'server exit after SIGTERM');
        } catch (e) {
          child.kill('SIGKILL');
          await withTimeout(exited, 2000, 'server exit after SIGKILL').catch(() => {});
          for (const c of clients) c.ws.terminate();
          throw e;
        } finally {
          if (!keepData && ownsData) rmSync(dataDir, { recursive: true, force: true });
        }
        for (const c of clients) c.ws.terminate();
        assert.ok(!/AddressSanitizer|LeakSanitizer|runtime error:|ThreadSanitizer/.test(stderr), `sanitizer report in server stderr:\n${stderr.slice(-4000)}`);
        assert.deepEqual(info, { code: 0, signal: null }, `server exit status; stderr tail:\n${stderr.slice(-2000)}`);
        return info;
      })();
      return stopped;
    },
  };
  return srv;
}

// ---------------------------------------------------------------------------
// Small assertion helpers shared by the suites
// ---------------------------------------------------------------------------

/** Assert an HTTP error response: status, code and (if given) pointer. */
export function assertError(res, status, code, pointer = undefined) {
  const ctx = `${res.status} ${res.text ?? res.body}`;
  assert.equal(res.status, status, `status (${ctx})`);
  assert.ok(res.json && res.json.error, `error body (${ctx})`);
  if (res.headers) assert.match(res.headers['content-type'] || '', /^application\/json/, `error Content-Type (${ctx})`);
  assert.equal(res.json.error.code, code, `error code (${ctx})`);
  assert.equal(typeof res.json.error.message, 'string', `error message (${ctx})`);
  if (pointer !== undefined) assert.equal(res.json.error.pointer, pointer, `error pointer (${ctx})`);
}

/** A valid publish body. */
export function publishBody(scope, eventName, data) {
  return { scope, payload: { event: { eventName, data } } };
}

// ---------------------------------------------------------------------------
// Redis, for the multi-node tests
// ---------------------------------------------------------------------------

/** A free TCP port on 127.0.0.1 (bind to 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Start a throwaway redis-server (no persistence) on a free port:
 * { port, url, stop() }. Rejects if the binary is missing or does not answer.
 */
export async function startRedis({ bin = process.env.REDIS_SERVER_BIN || 'redis-server' } = {}) {
  const port = await freePort();
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.on('error', () => {});
  await poll(
    () =>
      new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        sock.on('connect', () => sock.write('PING\r\n'));
        sock.on('data', (d) => {
          sock.destroy();
          resolve(d.toString().startsWith('+PONG'));
        });
        sock.on('error', () => resolve(false));
      }),
    5000,
    `redis-server on port ${port} (${out.slice(-300)})`,
    50,
  );
  let stopped = null;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    child,
    stop() {
      if (!stopped) {
        child.kill('SIGTERM');
        stopped = withTimeout(exited, 5000, 'redis-server exit').catch(() => child.kill('SIGKILL'));
      }
      return stopped;
    },
  };
}
