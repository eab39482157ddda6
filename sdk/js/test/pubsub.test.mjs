// publish / subscribe / unsubscribe / scopes / errors through the SDK against
// a real hubbub (started by the end-to-end harness).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, room, uuid, WebSocket, connectClient, createTestClient, collect, waitFor, waitState,
  httpPublish, sleep, Client, HubbubError, readyTenant, REAL_SERVER, wsPackage,
} from './helpers.mjs';

let srv;
let tenant;
const clients = [];
const track = (c) => (clients.push(c), c);
const client = async (r, extra) => track(await connectClient(srv, tenant, r, extra));
const QUIET_MS = 300; /* how long "nothing arrives" is waited for */

before(async () => {
  srv = await startServer({ threads: 2 });
  tenant = await readyTenant(srv);
});
after(async () => {
  for (const c of clients) c.close();
  if (srv) await srv.stop();
});

test('welcome: state open, room and connection id known', { timeout: 10000 }, async () => {
  const r = room();
  const states = [];
  const token = await srv.connToken(tenant, { ...r, user_id: 'alice' });
  const c = track(createTestClient({ url: srv.url /* http:// works too */, token, WebSocket }));
  c.onStateChange((s) => states.push(s));
  await c.connected;
  assert.equal(c.state, 'open');
  assert.deepEqual(states, ['open'], 'connecting was reported before we listened');
  assert.equal(c.room.event_id, r.event_id);
  assert.equal(c.room.session_id, r.session_id);
  assert.equal(c.welcome.user_id, 'alice');
  assert.match(c.connectionId, /^[0-9a-f-]{36}$/);
});

test('publish reaches every subscriber of the room, the publisher included, once, data unchanged', { timeout: 10000 }, async () => {
  const r = room();
  const a = await client(r);
  const b = await client(r);
  const ga = collect(a, 'say-hello');
  const gb = collect(b, 'say-hello');
  await Promise.all([ga.ready, gb.ready]);
  const data = { custom: 'payload', n: 0.1, nested: { list: [1, 'two', null, true] }, text: 'héllo 🎉' };
  const ack = await a.publish('say-hello', { data });
  assert.match(ack.message_id, /^[0-9a-f-]{36}$/);
  await waitFor(() => ga.list.length === 1 && gb.list.length === 1, 3000, 'both deliveries');
  assert.deepEqual(gb.list[0].data, data);
  assert.deepEqual(ga.list[0].data, data);
  assert.equal(gb.list[0].meta.scope, 'session');
  assert.equal(gb.list[0].meta.messageId, ack.message_id);
  assert.equal(typeof gb.list[0].meta.sentAt, 'number');
  await sleep(QUIET_MS);
  assert.equal(ga.list.length + gb.list.length, 2, 'delivered once each');
});

test('original plugin API: fire-and-forget publish, callback gets exactly data', { timeout: 10000 }, async () => {
  const r = room();
  const a = await client(r);
  const got = [];
  const off = a.subscribe('say-hello', (message) => got.push(message));
  await off.ready;
  const ret = a.publish('say-hello', { data: { custom: 'payload' } }); /* ignored on purpose */
  assert.ok(ret instanceof Promise);
  await waitFor(() => got.length === 1, 3000, 'delivery');
  assert.deepEqual(got[0], { custom: 'payload' });
});

test('HTTP publish reaches SDK subscribers; event names filter', { timeout: 10000 }, async () => {
  const r = room();
  const a = await client(r);
  const hello = collect(a, 'hello');
  const other = collect(a, 'other');
  await Promise.all([hello.ready, other.ready]);
  const res = await httpPublish(srv, tenant, r, 'hello', { foo: 'bar' });
  assert.equal(res.status, 202, res.text);
  await waitFor(() => hello.list.length === 1, 3000, 'HTTP delivery');
  assert.deepEqual(hello.list[0].data, { foo: 'bar' });
  await sleep(QUIET_MS);
  assert.equal(other.list.length, 0);
});

test('unsubscribe: the returned function, unsubscribe(name, cb) and unsubscribe(name)', { timeout: 10000 }, async () => {
  const r = room();
  const pub = await client(r);
  const sub = await client(r);
  const one = [];
  const two = [];
  const cb2 = (d) => two.push(d);
  const off1 = sub.subscribe('u', (d) => one.push(d));
  sub.subscribe('u', cb2);
  await off1.ready;
  await pub.publish('u', { data: { n: 1 } });
  await waitFor(() => one.length === 1 && two.length === 1, 3000, 'first delivery');
  off1();
  await pub.publish('u', { data: { n: 2 } });
  await waitFor(() => two.length === 2, 3000, 'second delivery');
  assert.equal(one.length, 1, 'removed callback not called');
  sub.unsubscribe('u', cb2);
  /* The wire unsubscribe goes out on another connection than the publish: give it time to land. */
  await sleep(100);
  await pub.publish('u', { data: { n: 3 } });
  await sleep(QUIET_MS);
  assert.equal(two.length, 2, 'nothing after the last callback left');
  const again = collect(sub, 'u');
  await again.ready;
  sub.unsubscribe('u');
  await sleep(100);
  await pub.publish('u', { data: { n: 4 } });
  await sleep(QUIET_MS);
  assert.equal(again.list.length, 0);
});

test('scopes: session stays in the room, event reaches its sessions, organization every room', { timeout: 15000 }, async () => {
  const ev = uuid();
  const r1 = { event_id: ev, session_id: uuid() };
  const r2 = { event_id: ev, session_id: uuid() };
  const r3 = room(); /* another event */
  const pub = await client(r1, { scopes: ['session', 'event', 'organization'] });
  const c1 = await client(r1);
  const c2 = await client(r2);
  const c3 = await client(r3);
  const g = [c1, c2, c3].map((c) => collect(c, 'scoped'));
  await Promise.all(g.map((x) => x.ready));
  const counts = () => g.map((x) => x.list.length);
  await pub.publish('scoped', { data: { s: 'session' } });
  await waitFor(() => counts()[0] === 1, 3000, 'session delivery');
  await pub.publish('scoped', { data: { s: 'event' }, scope: 'event' });
  await waitFor(() => counts()[0] === 2 && counts()[1] === 1, 3000, 'event delivery');
  await pub.publish('scoped', { data: { s: 'organization' }, scope: 'organization' });
  await waitFor(() => counts().join() === '3,2,1', 3000, 'organization delivery');
  await sleep(QUIET_MS);
  assert.deepEqual(counts(), [3, 2, 1]);
  assert.deepEqual(g[2].list[0].data, { s: 'organization' });
  assert.equal(g[2].list[0].meta.scope, 'organization');
  assert.equal(g[1].list[0].meta.scope, 'event');
});

test('another plugin and another organization see nothing', { timeout: 15000 }, async () => {
  const r = room();
  const other = await readyTenant(srv);
  const mine = await client(r);
  const theirs = track(await connectClient(srv, other, r));
  const gm = collect(mine, 'iso');
  const gt = collect(theirs, 'iso');
  await Promise.all([gm.ready, gt.ready]);
  const pub = await client(r, { scopes: ['session', 'event', 'organization'] });
  await pub.publish('iso', { data: { a: 1 }, scope: 'organization' });
  await waitFor(() => gm.list.length === 1, 3000, 'own delivery');
  await sleep(QUIET_MS);
  assert.equal(gt.list.length, 0);
});

test('errors: scope_forbidden rejects the publish, reaches on(error), and nobody receives it', { timeout: 10000 }, async () => {
  const r = room();
  const pub = await client(r); /* scopes: session only */
  const sub = await client(r);
  const g = collect(sub, 'forbidden');
  await g.ready;
  await assert.rejects(pub.publish('forbidden', { data: {}, scope: 'event' }), (e) => {
    assert.ok(e instanceof HubbubError);
    assert.equal(e.code, 'scope_forbidden');
    assert.equal(e.eventName, 'forbidden');
    return true;
  });
  await waitFor(() => pub.errors.some((e) => e.code === 'scope_forbidden'), 1000, 'error event');
  await sleep(QUIET_MS);
  assert.equal(g.list.length, 0);
  assert.equal(pub.state, 'open', 'an error message does not close the connection');
});

test('a throwing subscriber does not stop the others; it is reported as callback_error', { timeout: 10000 }, async () => {
  const r = room();
  const c = await client(r);
  const got = [];
  c.subscribe('boom', () => {
    throw new Error('bad plugin');
  });
  const off = c.subscribe('boom', (d) => got.push(d));
  await off.ready;
  await c.publish('boom', { data: { x: 1 } });
  await waitFor(() => got.length === 1, 3000, 'second callback');
  assert.ok(c.errors.some((e) => e.code === 'callback_error' && /bad plugin/.test(e.message)));
});

test('calls made before connect() are queued and happen once connected', { timeout: 10000 }, async () => {
  const r = room();
  const c = track(new Client());
  const got = [];
  c.subscribe('early', (d) => got.push(d));
  const p1 = c.publish('early', { data: { n: 1 } });
  const p2 = c.publish('early', { data: { n: 2 } });
  assert.equal(c.state, 'idle');
  const token = await srv.connToken(tenant, { ...r, user_id: 'late' });
  const welcome = await c.connect({ url: srv.wsUrl, token, WebSocket, ...REAL_SERVER });
  assert.equal(welcome.type, 'welcome');
  await Promise.all([p1, p2]);
  await waitFor(() => got.length === 2, 3000, 'queued publishes');
  assert.deepEqual(got, [{ n: 1 }, { n: 2 }], 'in order');
});

test('a refused handshake (bad token): one invalid_token error in band, closed at once, no retry', { timeout: 10000 }, async () => {
  const c = track(new Client());
  const errors = [];
  c.on('error', (e) => errors.push(e));
  const p = c.connect({ url: srv.wsUrl, token: 'not.a.jwt', WebSocket, ...REAL_SERVER, backoffBaseMs: 10, maxReconnectAttempts: 3 });
  await assert.rejects(p, (e) => e instanceof HubbubError && e.code === 'invalid_token');
  await waitState(c, 'closed', 5000);
  await sleep(100); /* a retry would have started within backoffBaseMs */
  assert.deepEqual(errors.map((e) => e.code), ['invalid_token']);
});

test('tokenTransport query: a refused handshake (bad token) ends in closed with connection_refused', { timeout: 10000 }, async () => {
  const c = track(new Client());
  const errors = [];
  c.on('error', (e) => errors.push(e));
  /* ?token= offers no subprotocol: the refusal is an HTTP 401, which only
   * some WebSocket implementations show. */
  const p = c.connect({ url: srv.wsUrl, token: 'not.a.jwt', WebSocket, tokenTransport: 'query', backoffBaseMs: 10, maxReconnectAttempts: 3 });
  await assert.rejects(p, (e) => e instanceof HubbubError);
  await waitState(c, 'closed', 5000);
  assert.ok(errors.length >= 1);
  assert.equal(errors[0].code, 'connection_refused');
  if (WebSocket === wsPackage) {
    /* Node's ws reports the HTTP status, so the SDK stops at once. */
    assert.equal(errors.length, 1);
    assert.equal(errors[0].status, 401);
  } else {
    /* undici hides it: retried with backoff, then given up. */
    assert.deepEqual(errors.map((e) => e.code), ['connection_refused', 'connection_refused', 'connection_refused', 'connection_refused', 'reconnect_failed']);
  }
});

test('close(): state closed, later publishes reject with closed', { timeout: 10000 }, async () => {
  const c = await client(room());
  const states = [];
  c.onStateChange((s, prev) => states.push(prev + '>' + s));
  c.close();
  assert.equal(c.state, 'closed');
  assert.deepEqual(states, ['open>closed']);
  await assert.rejects(c.publish('x', { data: {} }), (e) => e.code === 'closed');
});

test('over the per-connection publish rate: the excess rejects with rate_limited, the rest is acked', { timeout: 15000 }, async () => {
  const c = await client(room());
  const results = await Promise.allSettled(Array.from({ length: 260 }, (_, i) => c.publish('burst', { data: { i } })));
  const ok = results.filter((r) => r.status === 'fulfilled').length;
  const limited = results.filter((r) => r.status === 'rejected' && r.reason.code === 'rate_limited').length;
  assert.equal(ok + limited, 260, 'every publish is either acked or rate_limited: ' +
    JSON.stringify(results.filter((r) => r.status === 'rejected' && r.reason.code !== 'rate_limited').slice(0, 3).map((r) => r.reason.code)));
  assert.ok(ok >= 100, `${ok} acked`);
  assert.ok(limited >= 1, 'the default burst (200) is exceeded');
  assert.ok(c.errors.some((e) => e.code === 'rate_limited' && e.eventName === 'burst'));
});
