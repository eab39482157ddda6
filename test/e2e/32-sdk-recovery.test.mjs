// The SDK's recovery against real servers (docs/sdk.md "Nothing lost
// silently"): one node alone, and two nodes on a real redis-server, the SDK's
// socket through a TCP relay the test cuts (a reset, not a clean close) and
// points at another node.
//  - one node: a client cut and back gets what it missed, and 'recovered';
//  - a client cut from node A reconnects to node B with since=: every event it
//    missed, in order, once, and 'recovered';
//  - more missed than max_recover_messages: recovered:false, 'resync' with
//    too_many, nothing replayed, live again;
//  - Redis restarted without its data while the client is connected: the
//    node's gap notice reaches the SDK as 'gap' then 'resync', and the
//    client's position moves to the new epoch (events after it arrive).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startServer, room, uuid, poll, publishBody, WebSocket } from './harness.mjs';
import { redisServer } from './redis-harness.mjs';
import { createClient } from '../../sdk/js/dist/hubbub.mjs';

const SCOPES = ['session', 'event', 'organization'];
// Wide bounds: the machines that run the suite are shared and slow; nothing
// here asserts an upper bound on timing.
const SETTLE_MS = 15000;
const RECOVER_MS = 20000;
const MAX_RECOVER = 20;

let redis, dataDir, A, B;

before(async () => {
  redis = await redisServer();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-e2e-sdkrec-'));
  const config = { redis_url: redis.url, conn_publish_rate: 0, token_publish_rate: 0, max_recover_messages: MAX_RECOVER };
  A = await startServer({ dataDir, config });
  B = await startServer({ dataDir, config });
});

after(async () => {
  try {
    await A?.stop();
    await B?.stop();
  } finally {
    await redis?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
});

/**
 * A TCP relay on 127.0.0.1 to `port`: cut() resets every connection through
 * it and refuses new ones until to(port) points it somewhere (again); mute()
 * drops what the server sends until the next cut().
 */
async function relay(port) {
  let target = port;
  let muted = false; /* the server's bytes are dropped: the client hears nothing */
  const conns = new Set();
  const server = net.createServer((c) => {
    if (!target) return c.resetAndDestroy();
    const up = net.connect(target, '127.0.0.1');
    conns.add(c).add(up);
    const drop = () => {
      conns.delete(c);
      conns.delete(up);
      c.destroy();
      up.destroy();
    };
    c.on('error', drop).on('close', drop);
    up.on('error', drop).on('close', drop);
    c.pipe(up);
    up.on('data', (d) => muted || c.write(d));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const self = {
    url: `ws://127.0.0.1:${server.address().port}`,
    mute() {
      muted = true;
    },
    cut() {
      target = 0;
      muted = false;
      for (const s of conns) s.resetAndDestroy();
      conns.clear();
    },
    to(p) {
      target = p;
    },
    close() {
      self.cut();
      return new Promise((r) => server.close(r));
    },
  };
  return self;
}

/** An SDK client in room `r` through `url`, recording events and outcomes. */
async function sdkClient(srv, t, r, url, names) {
  const token = await srv.connToken(t, { ...r, user_id: 'u-' + uuid().slice(0, 8), scopes: SCOPES });
  const c = createClient({ url, token, WebSocket, backoffBaseMs: 50, backoffCapMs: 200 });
  c.got = [];
  c.told = [];
  c.errors = [];
  c.on('error', (e) => c.errors.push(e.code));
  for (const ev of ['recovered', 'resync', 'gap']) c.on(ev, (x) => c.told.push([ev, x]));
  for (const n of names) c.subscribe(n, (data, meta) => c.got.push({ data, scope: meta.scope, offset: meta.offset }));
  await Promise.all(names.map((n) => c.subscribed(n)));
  return c;
}

const scopeOf = (s, r) => (s === 'session' ? { type: 'session', ...r } : s === 'event' ? { type: 'event', event_id: r.event_id } : { type: 'organization' });

async function publish(srv, t, r, scope, name, data) {
  const res = await srv.publish(t.apiToken, publishBody(scopeOf(scope, r), name, data));
  assert.equal(res.status, 202, res.text);
  return res.json;
}

test('one node (no Redis): cut and back, the missed events once and \'recovered\'', async () => {
  const solo = await startServer();
  const t = await solo.tenant();
  const r = room();
  const rel = await relay(solo.port);
  const c = await sdkClient(solo, t, r, rel.url, ['h']);
  try {
    rel.cut();
    await poll(() => c.state === 'reconnecting', SETTLE_MS, 'the client noticed');
    for (let i = 0; i < 3; i++) await publish(solo, t, r, SCOPES[i], 'h', { i });
    rel.to(solo.port);
    await poll(() => c.told.length > 0, RECOVER_MS, 'the outcome');
    assert.deepEqual(c.told, [['recovered', { replayed: 3 }]]);
    assert.deepEqual(c.got.map((g) => g.data.i), [0, 1, 2]);
  } finally {
    c.close();
    await rel.close();
    await solo.stop();
  }
});

test('cut from node A, back through node B: every missed event once, in order, and \'recovered\'', async () => {
  const t = await A.tenant();
  const r = room();
  const rel = await relay(A.port);
  const c = await sdkClient(A, t, r, rel.url, ['h']);
  try {
    await publish(A, t, r, 'session', 'h', { i: 0 });
    await poll(() => c.got.length === 1, SETTLE_MS, 'the first event');
    rel.cut();
    await poll(() => c.state === 'reconnecting', SETTLE_MS, 'the client noticed');
    const missed = [];
    for (let i = 1; i <= 6; i++) missed.push({ scope: SCOPES[i % 3], ack: await publish(B, t, r, SCOPES[i % 3], 'h', { i }) });
    await publish(B, t, r, 'session', 'other-name', { not: 'subscribed' });
    rel.to(B.port);
    await poll(() => c.told.length > 0, RECOVER_MS, 'the outcome');
    assert.deepEqual(c.told, [['recovered', { replayed: 6 }]]);
    await publish(A, t, r, 'event', 'h', { i: 7 });
    await poll(() => c.got.length === 8, SETTLE_MS, 'the live event after the recovery');
    // each scope in offset order, every accepted one once
    for (const scope of SCOPES) {
      const offs = c.got.filter((g) => g.scope === scope).map((g) => g.offset);
      assert.deepEqual(offs, [...offs].sort((a, b) => a - b), `${scope} in order`);
      assert.equal(new Set(offs).size, offs.length, `${scope}: nothing twice`);
    }
    assert.deepEqual(c.got.map((g) => g.data.i).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7]);
    for (const m of missed) assert.ok(c.got.some((g) => g.scope === m.scope && g.offset === m.ack.offset), `offset ${m.ack.offset} of ${m.scope}`);
    assert.ok(!c.got.some((g) => g.data.not), 'a name it did not subscribe to');
  } finally {
    c.close();
    await rel.close();
  }
});

test('more missed than max_recover_messages: \'resync\' (too_many), nothing replayed, live again', async () => {
  const t = await A.tenant();
  const r = room();
  const rel = await relay(A.port);
  const c = await sdkClient(A, t, r, rel.url, ['h']);
  try {
    rel.cut();
    await poll(() => c.state === 'reconnecting', SETTLE_MS, 'the client noticed');
    for (let i = 0; i <= MAX_RECOVER; i++) await publish(B, t, r, 'event', 'h', { i });
    rel.to(A.port);
    await poll(() => c.told.length > 0, RECOVER_MS, 'the outcome');
    assert.deepEqual(c.told, [['resync', { cause: 'recovery_failed', scopes: { event: 'too_many' } }]]);
    assert.equal(c.got.length, 0, 'nothing replayed');
    const last = await publish(B, t, r, 'event', 'h', { live: 1 });
    await poll(() => c.got.length === 1, SETTLE_MS, 'live again');
    assert.equal(c.got[0].offset, last.offset);
    assert.ok(c.resumePosition.includes(`.${last.epoch}.${last.offset}.`), c.resumePosition);
  } finally {
    c.close();
    await rel.close();
  }
});

test('Redis restarted without its data: the gap notice reaches the app as \'gap\' then \'resync\'; the new epoch goes on', async () => {
  const t = await A.tenant();
  const r = room();
  const c = await sdkClient(A, t, r, A.wsUrl, ['h']);
  try {
    const before = await publish(B, t, r, 'session', 'h', { before: 1 });
    await poll(() => c.got.length === 1, SETTLE_MS, 'the event before');
    await redis.kill();
    await redis.start();
    await poll(() => c.told.some(([ev, x]) => ev === 'gap' && x.scope === 'session'), RECOVER_MS, 'the gap notice');
    const gi = c.told.findIndex(([ev, x]) => ev === 'gap' && x.scope === 'session');
    const gap = c.told[gi][1];
    assert.equal(gap.reason, 'epoch_changed');
    assert.notEqual(gap.epoch, before.epoch);
    assert.deepEqual(c.told[gi + 1], ['resync', { cause: 'gap', scopes: { session: 'epoch_changed' } }]);
    assert.equal(c.state, 'open', 'the client stayed connected');
    let after;
    await poll(async () => {
      after = await B.publish(t.apiToken, publishBody(scopeOf('session', r), 'h', { after: 1 }));
      return after.status === 202;
    }, RECOVER_MS, 'publishes accepted again');
    assert.equal(after.json.epoch, gap.epoch);
    await poll(() => c.got.length === 2, SETTLE_MS, 'the event in the new epoch');
    assert.deepEqual(c.got[1].data, { after: 1 });
    assert.ok(c.resumePosition.startsWith(`h1.${gap.epoch}.${after.json.offset}.`), c.resumePosition);
  } finally {
    c.close();
  }
});

test('a publish whose ack the link lost is sent again with its idempotency key: delivered once, answered with the first result', async () => {
  const solo = await startServer();
  const t = await solo.tenant();
  const r = room();
  const rel = await relay(solo.port);
  const c = await sdkClient(solo, t, r, rel.url, ['h']);
  const obs = await sdkClient(solo, t, r, solo.url, ['h']);
  try {
    rel.mute(); /* the server gets the publish and delivers it; its ack never reaches the client */
    const sent = c.publish('h', { data: { n: 1 } });
    await poll(() => obs.got.length === 1, SETTLE_MS, 'the observer got the publish');
    rel.cut();
    await poll(() => c.state === 'reconnecting', SETTLE_MS, 'the client noticed');
    rel.to(solo.port);
    const ack = await sent; /* resent after the reconnect, answered from the first */
    assert.match(ack.message_id, /^[0-9a-f-]{36}$/);
    await publish(solo, t, r, 'session', 'h', { n: 2 }); /* a marker behind it */
    await poll(() => obs.got.length >= 2, SETTLE_MS, 'the marker');
    assert.deepEqual(obs.got.map((g) => g.data.n), [1, 2], 'delivered once');
    await poll(() => c.got.some((g) => g.data.n === 2), SETTLE_MS, 'the client is live again');
    assert.deepEqual(c.got.map((g) => g.data.n), [1, 2], 'its own publish (replayed) once, then the marker');
  } finally {
    c.close();
    obs.close();
    await rel.close();
    await solo.stop();
  }
});
