// hostile-lib.mjs - shared fixture of the hostile catalogue (40-hostile-*).
//
// Every hostile suite runs against one server with a bystander: an observer
// WebSocket subscribed to "obs" in its own room. After each hostile case,
// `alive()` checks that the server still serves (/healthz 200), that an HTTP
// publish is still delivered, and that the observer has received every
// bystander publish so far, in order: a hostile client must never cost
// another client a message. `after` also checks a clean SIGTERM exit and no
// sanitizer report (harness stop()).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before } from 'node:test';
import { startServer, room, publishBody, sleep, passTime, parseHttpResponse, withTimeout, uuid } from './harness.mjs';

/** Short timeouts and small limits so the crossing tests stay fast. */
export const HOSTILE_CONFIG = {
  handshake_timeout_ms: 1000,
  max_body_bytes: 4096,
  max_message_bytes: 8192,
  max_data_bytes: 2048,
  max_subscriptions: 16,
  conn_publish_rate: 20,
  conn_publish_burst: 20,
};

/**
 * Register before/after hooks for a suite and return its context:
 * { srv, t (tenant), obs (observer), obsRoom, alive(), config }.
 */
export function hostileSuite({ config = {}, threads = 2 } = {}) {
  const ctx = { srv: null, t: null, obs: null, obsRoom: room(), sent: 0, config: { ...HOSTILE_CONFIG, ...config } };
  before(async () => {
    ctx.srv = await startServer({ threads, config: ctx.config });
    ctx.t = await ctx.srv.tenant();
    ctx.obs = await ctx.srv.join(ctx.t, ctx.obsRoom, { subscribe: ['obs'] });
  });
  after(async () => {
    if (!ctx.srv) return;
    // The bystander must still be connected and complete at the very end.
    if (ctx.obs && !ctx.obs.closeInfo) await ctx.alive();
    if (ctx.obs) await ctx.obs.close().catch(() => {});
    await ctx.srv.stop();
  });

  /** The server still serves, and the observer lost nothing. */
  ctx.alive = async (what = 'after the hostile input') => {
    const h = await ctx.srv.http('GET', '/healthz');
    assert.equal(h.status, 200, `/healthz ${what}`);
    assert.equal(ctx.obs.closeInfo, null, `observer closed ${what}: ${JSON.stringify(ctx.obs.closeInfo)}`);
    const seq = ++ctx.sent;
    const r = await ctx.srv.publish(ctx.t.apiToken, publishBody({ type: 'session', ...ctx.obsRoom }, 'obs', { seq }));
    assert.equal(r.status, 202, `publish ${what}: ${r.text}`);
    await ctx.obs.waitFor((m) => m.type === 'event' && m.data?.seq === seq, 3000, `observer event ${seq} ${what}`);
    const seqs = ctx.obs.events('obs').map((m) => m.data.seq);
    assert.deepEqual(seqs, Array.from({ length: seq }, (_, i) => i + 1), `observer lost or reordered messages ${what}`);
  };
  return ctx;
}

/**
 * Send bytes (one write per array element, `gapMs` apart) and collect
 * everything until the server closes or `timeoutMs`. Returns
 * { raw, responses: [parsed...], closed (bool), ms }.
 */
export function rawExchange(port, parts, { timeoutMs = 3000, gapMs = 0 } = {}) {
  return new Promise((resolve) => {
    const start = Date.now();
    const chunks = [];
    let closed = false;
    let done = false;
    const sock = net.connect(port, '127.0.0.1');
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const raw = Buffer.concat(chunks);
      resolve({ raw: raw.toString('latin1'), responses: splitResponses(raw), closed, ms: Date.now() - start });
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('connect', async () => {
      const list = Array.isArray(parts) ? parts : [parts];
      for (const p of list) {
        if (done || sock.destroyed) return;
        sock.write(p);
        if (gapMs) await passTime(gapMs, 'a slow client: the gap between its writes');
      }
    });
    sock.on('data', (d) => chunks.push(d));
    sock.on('end', () => {
      closed = true;
      finish();
    });
    sock.on('close', () => {
      closed = true;
      finish();
    });
    sock.on('error', () => {});
  });
}

/** Split a byte stream of Content-Length responses into parsed responses. */
export function splitResponses(buf) {
  const out = [];
  let rest = Buffer.isBuffer(buf) ? buf : Buffer.from(buf, 'latin1');
  while (rest.length) {
    const r = parseHttpResponse(rest);
    if (!r.status) break;
    out.push(r);
    const end = rest.indexOf('\r\n\r\n');
    const n = Number(r.headers['content-length'] ?? 0);
    rest = rest.subarray(end + 4 + n);
  }
  return out;
}

/** Assert exactly one error response with `status` and `code`. */
export function assertOneError(ex, status, code) {
  assert.ok(ex.responses.length >= 1, `no response; raw: ${JSON.stringify(ex.raw.slice(0, 300))}`);
  const r = ex.responses[0];
  assert.equal(r.status, status, `status; raw: ${ex.raw.slice(0, 300)}`);
  if (code) assert.equal(r.json?.error?.code, code, `error code; body: ${r.body.slice(0, 300)}`);
  return r;
}

/** A raw WebSocket in a fresh room with every scope; waits for the welcome. */
export async function rawJoin(ctx, { scopes = ['session', 'event', 'organization'], r = room() } = {}) {
  const token = await ctx.srv.connToken(ctx.t, { ...r, user_id: 'h-' + uuid().slice(0, 6), scopes });
  const ws = await ctx.srv.rawWs(token);
  await ws.waitJson((m) => m.type === 'welcome', 3000, 'welcome');
  ws.room = r;
  return ws;
}

/** Wait for the server's close frame; returns its code (null: TCP ended without one). */
export async function closeCode(ws, ms = 3000) {
  const c = await withTimeout(ws.closed, ms, 'server close frame');
  return c.code;
}

export { sleep, room, publishBody, uuid };
