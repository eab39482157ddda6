// Several nodes: two servers on one data directory, pointed at one Redis. A
// subscriber on node A receives what was published through node B, in every
// scope, exactly once, and isolation between plugins and organizations holds
// across nodes. With Redis gone, publishes fail loudly (broker_unavailable).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, startRedis, room, uuid, observeFor, publishBody, mintJwt, poll, STORE_CHANGE_WAIT_MS } from './harness.mjs';
import { settle } from './redis-harness.mjs';

let redis, a, b, dataDir, t, tSibling, tOther;
const ALL = ['session', 'event', 'organization'];

before(async () => {
  redis = await startRedis();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-e2e-cluster-'));
  a = await startServer({ dataDir, config: { redis_url: redis.url } });
  b = await startServer({ dataDir, config: { redis_url: redis.url } });
  t = await a.tenant();
  tSibling = await a.siblingPlugin(t);
  tOther = await a.tenant();
});
after(async () => {
  try {
    await a?.stop();
    await b?.stop();
  } finally {
    await redis?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
});

const join = (srv, tenant, r, names) => srv.connect(mintJwt(tenant.signingSecret, srv.claims(tenant, r, { scopes: ALL }))).then(async (c) => {
  for (const n of names) await c.subscribe(n);
  return c;
});


test('both nodes report the redis broker in /healthz', async () => {
  for (const srv of [a, b]) {
    const h = await srv.http('GET', '/healthz');
    assert.equal(h.status, 200, h.text);
    assert.equal(h.json.status, 'ok');
    if (h.json.broker) assert.equal(h.json.broker.type, 'redis');
  }
});

for (const scope of ALL) {
  test(`HTTP ${scope} publish through node B reaches subscribers on both nodes, once`, async () => {
    const e = uuid();
    const r1 = { event_id: e, session_id: uuid() };
    const r2 = { event_id: e, session_id: uuid() };
    const r3 = room();
    const onA = await join(a, t, r1, ['x']);
    const onB = await join(b, t, r1, ['x']);
    const onA2 = await join(a, t, r2, ['x']); // same event, other session
    const onA3 = await join(a, t, r3, ['x']); // other event
    const clients = [onA, onB, onA2, onA3];
    try {
      await settle(b, t, r1, onA, 'x');
      const marker = uuid();
      const s = scope === 'session' ? { type: 'session', ...r1 } : scope === 'event' ? { type: 'event', event_id: e } : { type: 'organization' };
      const res = await b.publish(t.apiToken, publishBody(s, 'x', { marker }));
      assert.equal(res.status, 202, res.text);
      const want = scope === 'session' ? [onA, onB] : scope === 'event' ? [onA, onB, onA2] : clients;
      const match = (m) => m.type === 'event' && m.data?.marker === marker;
      for (const c of want) await c.waitFor(match, 3000, `${scope} event`);
      await observeFor(300, 'duplicates and deliveries outside the scope');
      for (const c of clients) assert.equal(c.messages.filter(match).length, want.includes(c) ? 1 : 0, `delivery count on ${clients.indexOf(c)}`);
      assert.equal(onA.messages.find(match).message_id, res.json.message_id);
    } finally {
      for (const c of clients) await c.close();
    }
  });
}

test('a WebSocket publish on node A reaches a subscriber on node B with data byte-exact', async () => {
  const r = room();
  const pub = await join(a, t, r, ['x']);
  const sub = await join(b, t, r, ['x']);
  try {
    await settle(a, t, r, sub, 'x');
    const data = '{"n":0.1,"z":-0,"big":12345678901234567890,"u":"\\u00e9"}';
    pub.send(`{"type":"publish","eventName":"x","data":${data},"scope":"session","id":"p1"}`);
    const ack = await pub.waitFor((m) => m.id === 'p1');
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    const ev = await sub.waitFor((m) => m.type === 'event' && m.message_id === ack.message_id);
    assert.ok(sub.raw[sub.messages.indexOf(ev)].includes(data), 'data unchanged across nodes');
  } finally {
    await pub.close();
    await sub.close();
  }
});

test('isolation across nodes: other plugins and organizations with the same ids hear nothing', async () => {
  const r = room();
  const mine = await join(a, t, r, ['iso']);
  const sibling = await join(a, tSibling, r, ['iso']);
  const foreign = await join(a, tOther, r, ['iso']);
  try {
    await settle(b, t, r, mine, 'iso');
    for (const s of [{ type: 'session', ...r }, { type: 'event', event_id: r.event_id }, { type: 'organization' }]) {
      assert.equal((await b.publish(t.apiToken, publishBody(s, 'iso', { s: s.type }))).status, 202);
      await mine.waitFor((m) => m.data?.s === s.type);
    }
    await sibling.expectNone((m) => m.type === 'event', 300, 'event from another plugin');
    await foreign.expectNone((m) => m.type === 'event', 0, 'event from another organization');
  } finally {
    for (const c of [mine, sibling, foreign]) await c.close();
  }
});

test('a token revoked on the shared store is refused by both nodes', async () => {
  const x = await a.tenant();
  const body = publishBody({ type: 'organization' }, 'x', {});
  for (const srv of [a, b]) await poll(async () => (await srv.publish(x.apiToken, body)).status === 202, STORE_CHANGE_WAIT_MS, 'token accepted');
  await a.cli(['token', 'revoke', x.tokenId]);
  for (const srv of [a, b]) await poll(async () => (await srv.publish(x.apiToken, body)).status === 401, STORE_CHANGE_WAIT_MS, 'token refused');
});

test('Redis down: publishes answer 503 broker_unavailable (HTTP) / error broker_unavailable (WebSocket)', async () => {
  const r = room();
  const c = await join(a, t, r, ['down']);
  try {
    await redis.stop();
    const res = await poll(async () => {
      const x = await a.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'down', {}));
      return x.status === 503 ? x : null;
    }, 5000, 'publish refused once Redis is gone');
    assert.equal(res.json?.error?.code, 'broker_unavailable');
    assert.ok(res.headers['retry-after'], 'Retry-After');
    const e = await c.request({ type: 'publish', eventName: 'down', data: {} });
    assert.equal(e.type, 'error');
    assert.equal(e.code, 'broker_unavailable');
    const h = await a.http('GET', '/healthz');
    assert.equal(h.status, 503);
  } finally {
    await c.close();
  }
});
