// Reconnect: the server is killed and started again on the same port and data
// directory; every subscription must come back and publishes made while
// offline must be delivered exactly once, in order. Also: queue bound, token
// refresh through getToken, and close codes that must not reconnect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  restartableServer, mintToken, room, WebSocket, createTestClient, waitFor, waitState, sleep, HubbubError,
} from './helpers.mjs';

const FAST = { backoffBaseMs: 50, backoffCapMs: 400 };
const QUIET_MS = 400;

async function withServer(fn) {
  const s = await restartableServer();
  const clients = [];
  try {
    const tenant = s.tenant(); /* before start: the server loads it at once */
    await s.start();
    await fn(s, tenant, (c) => (clients.push(c), c));
    for (const c of clients) c.close();
    await s.kill('SIGTERM'); /* a clean exit, so that leak reports are written */
    s.assertClean();
  } finally {
    for (const c of clients) c.close();
    await s.cleanup();
  }
}

test('server killed and restarted: resubscribes everything, flushes the offline queue once', { timeout: 30000 }, async () => {
  await withServer(async (s, tenant, track) => {
    const r = room();
    const a = track(createTestClient({ url: s.wsUrl, token: mintToken(tenant, r), WebSocket, ...FAST }));
    const watcher = track(createTestClient({ url: s.wsUrl, token: mintToken(tenant, r), WebSocket, ...FAST }));
    await Promise.all([a.connected, watcher.connected]);
    const names = ['alpha', 'beta', 'gamma'];
    const got = Object.fromEntries(names.map((n) => [n, []]));
    const seenByWatcher = Object.fromEntries(names.map((n) => [n, []]));
    for (const n of names) {
      a.subscribe(n, (d) => got[n].push(d));
      watcher.subscribe(n, (d) => seenByWatcher[n].push(d));
    }
    await Promise.all(names.map((n) => a.subscribed(n)));
    await Promise.all(names.map((n) => watcher.subscribed(n)));
    const states = [];
    a.onStateChange((st) => states.push(st));

    await s.kill('SIGKILL');
    await waitState(a, 'reconnecting', 5000);
    /* Offline: these are queued, in order. */
    const pending = [];
    for (let i = 0; i < 5; i++) pending.push(a.publish('alpha', { data: { i } }));
    pending.push(a.publish('gamma', { data: { last: true } }));
    await sleep(300); /* a few failed attempts against the dead port */
    assert.equal(a.state, 'reconnecting');

    await s.start();
    await waitState(a, 'open', 8000);
    const acks = await Promise.all(pending);
    assert.equal(new Set(acks.map((x) => x.message_id)).size, 6, 'six distinct acks');
    /* a's own subscriptions were re-sent before its queue, so it sees its own publishes. */
    await waitFor(() => got.alpha.length === 5 && got.gamma.length === 1, 5000, 'queued publishes');
    assert.deepEqual(got.alpha, [0, 1, 2, 3, 4].map((i) => ({ i })), 'in order');
    assert.ok(states.includes('reconnecting') && states.at(-1) === 'open', states.join());

    /* Every subscription of both clients is back: publish each name again. */
    await waitState(watcher, 'open', 8000);
    await Promise.all(names.map((n) => watcher.subscribed(n)));
    for (const n of names) await a.publish(n, { data: { after: n } });
    await waitFor(() => names.every((n) => seenByWatcher[n].some((d) => d.after === n)), 5000, 'watcher deliveries');
    await waitFor(() => names.every((n) => got[n].some((d) => d.after === n)), 5000, 'own deliveries');
    await sleep(QUIET_MS);
    assert.equal(got.alpha.length, 6, 'queued publishes delivered once: ' + JSON.stringify(got.alpha));
    assert.equal(got.gamma.length, 2);
    assert.equal(got.beta.length, 1);
  });
});

test('SIGTERM (close 1001) also reconnects; the queue is bounded while offline', { timeout: 30000 }, async () => {
  await withServer(async (s, tenant, track) => {
    const r = room();
    const c = track(createTestClient({ url: s.wsUrl, token: mintToken(tenant, r), WebSocket, ...FAST, maxQueue: 3 }));
    await c.connected;
    const got = [];
    await c.subscribe('q', (d) => got.push(d)).ready;
    await s.kill('SIGTERM');
    await waitState(c, 'reconnecting', 5000);
    const ok = [1, 2, 3].map((n) => c.publish('q', { data: { n } }));
    await assert.rejects(c.publish('q', { data: { n: 4 } }), (e) => e instanceof HubbubError && e.code === 'queue_full');
    assert.ok(c.errors.some((e) => e.code === 'queue_full'));
    await s.start();
    await Promise.all(ok);
    await waitFor(() => got.length === 3, 5000, 'three queued publishes');
    await sleep(QUIET_MS);
    assert.deepEqual(got, [{ n: 1 }, { n: 2 }, { n: 3 }]);
  });
});

test('backoff while the server is down: attempts spaced by the bounded, jittered delay', { timeout: 30000 }, async () => {
  await withServer(async (s, tenant, track) => {
    const r = room();
    const c = track(createTestClient({ url: s.wsUrl, token: mintToken(tenant, r), WebSocket, backoffBaseMs: 100, backoffCapMs: 300 }));
    await c.connected;
    await s.kill('SIGKILL');
    await waitState(c, 'reconnecting', 5000);
    /* Count attempts through getToken-less opens: wrap the constructor. */
    const opens = [];
    const Orig = c._wsImpl;
    c._wsImpl = function (...args) {
      opens.push(Date.now());
      return new Orig(...args);
    };
    /* Keeps trying (the marker: a third attempt), and is not a busy loop.
     * The delays themselves (random in [0, min(cap, base * 2^n))) are
     * checked exactly by the unit test of backoffDelay, not with a clock:
     * this machine is shared, so wall-clock spacing proves nothing. */
    const t0 = Date.now();
    await waitFor(() => opens.length >= 3, 20000, 'three reconnect attempts');
    const elapsed = Date.now() - t0;
    assert.ok(opens.length <= 2 + elapsed / 10, `${opens.length} attempts in ${elapsed} ms: not backing off`);
    await s.start();
    await waitState(c, 'open', 5000);
  });
});

test('getToken is called before reconnecting, and its token is used', { timeout: 30000 }, async () => {
  await withServer(async (s, tenant, track) => {
    const r = room();
    let calls = 0;
    const c = track(createTestClient({
      url: s.wsUrl, WebSocket, ...FAST,
      getToken: async () => {
        calls++;
        return mintToken(tenant, r, { sub: 'refreshed-' + calls });
      },
    }));
    await c.connected;
    assert.equal(calls, 1, 'no token given: getToken supplies the first');
    assert.equal(c.welcome.user_id, 'refreshed-1');
    await s.kill('SIGKILL');
    await waitState(c, 'reconnecting', 5000);
    await s.start();
    await waitState(c, 'open', 8000);
    assert.ok(calls >= 2);
    assert.equal(c.welcome.user_id, 'refreshed-' + calls);
  });
});

test('expired token: without getToken the client stops; with getToken it reconnects', { timeout: 30000 }, async () => {
  await withServer(async (s, tenant, track) => {
    const r = room();
    const expired = mintToken(tenant, r, { exp: Math.floor(Date.now() / 1000) - 3600 });
    const c = track(createTestClient({ url: s.wsUrl, token: expired, WebSocket, ...FAST, maxReconnectAttempts: 5 }));
    await waitState(c, 'closed', 8000);
    assert.ok(c.errors.length > 0);
    let calls = 0;
    const d = track(createTestClient({
      url: s.wsUrl, token: expired, WebSocket, ...FAST,
      getToken: () => (calls++, mintToken(tenant, r)),
    }));
    await d.connected;
    assert.ok(calls >= 1);
  });
});

test('token expiring while connected (close 4401): stop without getToken, refresh and resubscribe with it', { timeout: 30000 }, async () => {
  await withServer(async (s, tenant, track) => {
    const r = room();
    /* exp 29 s ago: still inside the server's 30 s leeway, so it expires within ~1 s. */
    const almost = () => mintToken(tenant, r, { sub: 'short', exp: Math.floor(Date.now() / 1000) - 29 });
    const plain = track(createTestClient({ url: s.wsUrl, token: almost(), WebSocket, ...FAST }));
    let calls = 0;
    const refreshing = track(createTestClient({
      url: s.wsUrl, token: almost(), WebSocket, ...FAST,
      getToken: () => (calls++, mintToken(tenant, r, { sub: 'fresh' })),
    }));
    await Promise.all([plain.connected, refreshing.connected]);
    const got = [];
    await refreshing.subscribe('after-refresh', (d) => got.push(d)).ready;

    await waitState(plain, 'closed', 10000);
    const e = plain.errors.at(-1);
    assert.equal(e.code, 'token_expired');
    assert.equal(e.closeCode, 4401);

    await waitFor(() => calls >= 1 && refreshing.state === 'open' && refreshing.welcome.user_id === 'fresh', 10000, 'refreshed connection');
    await refreshing.subscribed('after-refresh');
    await refreshing.publish('after-refresh', { data: { ok: true } });
    await waitFor(() => got.length === 1, 3000, 'delivery after refresh');
  });
});
