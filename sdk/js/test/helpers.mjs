// Shared helpers of the SDK tests. Servers come from the end-to-end harness
// (test/e2e/harness.mjs); the reconnect tests also start the binary directly
// because they need the same port and data directory twice.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import http from 'node:http';
import { createClient as _createClient } from '../dist/hubbub.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '../../..');
export const BIN = process.env.HUBBUB_BIN || path.join(REPO, 'build/hubbub');

// HUBBUB_TEST_HARNESS lets a developer point the tests at another harness.
const harness = await import(process.env.HUBBUB_TEST_HARNESS || '../../../test/e2e/harness.mjs');
export const { startServer, uuid, room } = harness;

const requireRepo = createRequire(path.join(REPO, 'package.json'));
/** The `ws` package (the scripted servers, and the client on Node 20 without --experimental-websocket). */
export const wsPackage = requireRepo('ws');
/**
 * The client's WebSocket: the runtime's own (undici: Node 22, Node 20 with
 * --experimental-websocket), else the `ws` package (Node 20).
 * HUBBUB_TEST_WEBSOCKET=ws|global picks one (implementations.test.mjs runs
 * the suites again with the other).
 */
export const WebSocket = process.env.HUBBUB_TEST_WEBSOCKET === 'ws' ? wsPackage
  : process.env.HUBBUB_TEST_WEBSOCKET === 'global' ? globalThis.WebSocket
    : globalThis.WebSocket || wsPackage;
if (!WebSocket) throw new Error('HUBBUB_TEST_WEBSOCKET=global, but this Node has no global WebSocket (Node 20: --experimental-websocket)');

export { createClient, PubSub, HubbubError, Client, _internal } from '../dist/hubbub.mjs';

/**
 * Connect options of every test against the real server (build/hubbub): the
 * SDK's defaults, the token as the hubbub.token.<jwt> subprotocol next to
 * hubbub.v1 (docs/protocol.md section 2). Tests of `tokenTransport: 'query'`
 * say so themselves.
 */
export const REAL_SERVER = {};

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `pred` until true, for at most `ms`. */
export async function waitFor(pred, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Resolves when `client` reaches `state` (bounded). */
export function waitState(client, state, ms = 5000) {
  if (client.state === state) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error(`state ${state} not reached in ${ms} ms (now ${client.state})`));
    }, ms);
    const off = client.onStateChange((s) => {
      if (s === state) {
        clearTimeout(t);
        off();
        resolve();
      }
    });
  });
}

/** Subscribe and record every delivery: returns { list, off }. */
export function collect(client, eventName) {
  const list = [];
  const off = client.subscribe(eventName, (data, meta) => list.push({ data, meta }));
  return { list, off, ready: off.ready };
}

/** A connected client in `r` for `tenant`, errors recorded in client.errors. */
export async function connectClient(srv, tenant, r, extra = {}) {
  const { scopes, user_id, ...opts } = extra;
  const token = await srv.connToken(tenant, { ...r, user_id: user_id || 'u-' + uuid().slice(0, 8), scopes: scopes || ['session'] });
  const c = createClientLocal({ url: srv.wsUrl, token, WebSocket, ...opts });
  await c.connected;
  return c;
}

/**
 * createClient() for the real server (REAL_SERVER options first) plus `errors`
 * (every 'error' event) and `connected` (the first welcome, bounded).
 */
function createClientLocal(opts) {
  const c = _createClient({ ...REAL_SERVER, ...opts });
  c.errors = [];
  c.on('error', (e) => c.errors.push(e));
  c.connected = new Promise((resolve, reject) => {
    if (c.state === 'open') return resolve();
    const t = setTimeout(() => reject(new Error('client did not open in 5 s: ' + c.state)), 5000);
    c.on('welcome', () => {
      clearTimeout(t);
      resolve();
    });
  });
  c.connected.catch(() => {}); /* tests that expect a refusal never await it */
  return c;
}
export { createClientLocal as createTestClient };

/**
 * srv.tenant(), returned once the server accepts the new API token. Admin
 * commands write to the store of a running server, which picks changes up
 * on its reload tick (HB_AUTH_RELOAD_INTERVAL_MS): poll instead of racing it.
 */
export async function readyTenant(srv, ms = 3000) {
  const t = await srv.tenant();
  const end = Date.now() + ms;
  for (;;) {
    const r = await srv.http('POST', '/api/v1/connection_tokens', {
      headers: { Authorization: `Bearer ${t.apiToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(room()),
    });
    if (r.status === 201) return t;
    if (Date.now() > end) throw new Error(`new API token still refused after ${ms} ms: ${r.status} ${r.text}`);
    await sleep(50);
  }
}

export function httpPublish(srv, tenant, r, eventName, data, type = 'session') {
  const scope = { type };
  if (type !== 'organization') scope.event_id = r.event_id;
  if (type === 'session') scope.session_id = r.session_id;
  return srv.publish(tenant.apiToken, { scope, payload: { event: { eventName, data } } });
}

/** A TCP port that was free a moment ago. */
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

/** Run an admin command of the binary: parsed --json output. */
export function cli(dataDir, args) {
  return JSON.parse(execFileSync(BIN, [...args, '--data', dataDir, '--json'], { timeout: 10000 }).toString());
}

/**
 * A server on a fixed port and data dir that the test can kill and start
 * again: { port, dataDir, wsUrl, start(), kill(signal), cleanup() }.
 */
export async function restartableServer() {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-sdk-'));
  /* tenant() may run before start(): the admin commands need a store. */
  execFileSync(BIN, ['init', '--data', dataDir], { timeout: 10000 });
  const port = await freePort();
  let proc = null;
  const self = {
    port,
    dataDir,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    stderr: '',
    log: '', /* every run's stderr, for sanitizer reports */
    /** Throws if a sanitizer (ASan, UBSan, LSan) reported anything in any run. */
    assertClean() {
      const m = /AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:/.exec(self.log);
      if (m) throw new Error('sanitizer report in server stderr:\n' + self.log.slice(Math.max(0, m.index - 200), m.index + 3000));
    },
    async start() {
      proc = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir, '--threads', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
      const p = proc;
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('server did not print its listening line in 10 s:\n' + self.stderr)), 10000);
        p.stderr.on('data', (d) => {
          self.stderr += d;
          if (self.log.length < 1 << 20) self.log += d;
          if (/listening on http:\/\/127\.0\.0\.1:\d+/.test(self.stderr)) {
            clearTimeout(t);
            resolve();
          }
        });
        p.once('exit', (code) => {
          clearTimeout(t);
          reject(new Error(`server exited (${code}) before listening:\n${self.stderr}`));
        });
      });
      self.stderr = '';
    },
    async kill(signal = 'SIGKILL') {
      const p = proc;
      proc = null;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill(signal);
      await Promise.race([exited, sleep(5000)]);
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    },
    async cleanup() {
      await self.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    },
    tenant() {
      const org = cli(dataDir, ['org', 'create', 'sdk-' + uuid().slice(0, 8)]);
      const plugin = cli(dataDir, ['plugin', 'create', '--org', org.id, 'sdk-test']);
      const tok = cli(dataDir, ['token', 'create', '--org', org.id, '--plugin', plugin.id]);
      return { org, plugin, signingSecret: plugin.signing_secret, apiToken: tok.token };
    },
  };
  return self;
}

/** An HS256 connection token minted offline (docs/protocol.md section 1). */
export function mintToken(tenant, r, { sub = 'u-' + uuid().slice(0, 8), scopes = ['session'], exp = Math.floor(Date.now() / 1000) + 3600, info } = {}) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64({
    organization_id: tenant.org.id, plugin_id: tenant.plugin.id, event_id: r.event_id,
    session_id: r.session_id, sub, scopes, exp, iat: Math.floor(Date.now() / 1000), ...(info ? { info } : {}),
  });
  return head + '.' + crypto.createHmac('sha256', tenant.signingSecret).update(head).digest('base64url');
}

export function cleanupDir(d) {
  rmSync(d, { recursive: true, force: true });
}

/* ---- scripted servers ------------------------------------------------ */

/** The welcome a hubbub server sends, with `extra` fields. */
export const welcome = (extra = {}) => JSON.stringify({
  type: 'welcome', protocol: 1, connection_id: crypto.randomUUID(),
  room: { organization_id: 'o', plugin_id: 'p', event_id: 'e', session_id: 's' },
  user_id: 'u', scopes: ['session'], expires_at: 0, ping_interval_ms: 25000,
  limits: { max_message_bytes: 65536, max_data_bytes: 32768, max_subscriptions: 256 }, ...extra,
});

/**
 * A scripted server on 127.0.0.1 that plays hubbub's part where the real one
 * cannot be made to misbehave on demand. `onConn(ws, i, req)` runs for every
 * accepted WebSocket. Options:
 *  - `subprotocol`: answer the 101 with `hubbub.v1` when offered (default
 *    true; false plays a server older than the subprotocol);
 *  - `onUpgrade(req, socket, i)`: return true after answering the upgrade
 *    request yourself (e.g. `refuseHttp(401, 'invalid_token')`);
 *  - `onRequest(req, res)`: plain HTTP requests (default 404).
 * Records `upgrades` (every upgrade request: url, protocols header), `conns`,
 * and `received` ({ conn, msg } for every message).
 */
export async function scripted(onConn = () => {}, { subprotocol = true, onUpgrade, onRequest } = {}) {
  const wss = new wsPackage.WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => (subprotocol && offered.has('hubbub.v1') ? 'hubbub.v1' : false),
  });
  const server = http.createServer((req, res) => {
    if (onRequest) return onRequest(req, res);
    res.writeHead(404).end();
  });
  const sockets = new Set();
  server.on('connection', (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  const s = { conns: [], upgrades: [], received: [], wss, server };
  server.on('upgrade', (req, socket, head) => {
    const i = s.upgrades.length;
    s.upgrades.push({ url: req.url, protocols: req.headers['sec-websocket-protocol'] || '', headers: req.headers });
    if (onUpgrade && onUpgrade(req, socket, i)) return;
    wss.handleUpgrade(req, socket, head, (ws) => {
      const n = s.conns.length;
      s.conns.push(ws);
      ws.on('message', (m) => {
        let msg;
        try {
          msg = JSON.parse(m.toString());
        } catch (e) {
          msg = { unparsed: m.toString() };
        }
        s.received.push({ conn: n, msg });
      });
      onConn(ws, n, req);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  s.port = server.address().port;
  s.url = `ws://127.0.0.1:${s.port}`;
  s.httpUrl = `http://127.0.0.1:${s.port}`;
  s.close = () => {
    for (const ws of s.conns) ws.terminate();
    for (const sock of sockets) sock.destroy();
    return new Promise((r) => server.close(r));
  };
  return s;
}

/** onConn for scripted(): the in-band refusal of docs/protocol.md section 2. */
export function refuseInBand(code, closeCode, message = 'refused by the scripted server: ' + code) {
  return (ws) => {
    ws.send(JSON.stringify({ type: 'error', code, message }));
    ws.close(closeCode, code);
  };
}

/** onUpgrade for scripted(): a refusal as a plain HTTP answer (a server without in-band refusals). */
export function refuseHttp(status, code) {
  return (req, socket) => {
    const body = JSON.stringify({ error: { code, message: 'refused by the scripted server' } });
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    return true;
  };
}
