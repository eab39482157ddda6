// SDK logic that needs no server: backoff bounds, close-code policy, URLs,
// argument checks, and the queue before connect().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, shouldReconnect, buildSocketUrl, Client, HubbubError, PubSub, createClient } from '../dist/hubbub.mjs';

test('backoff: full jitter within [0, min(cap, base*2^n))', () => {
  const opts = { backoffBaseMs: 250, backoffCapMs: 10000 };
  for (let n = 0; n < 12; n++) {
    const ceiling = Math.min(10000, 250 * 2 ** n);
    assert.equal(backoffDelay(n, opts, () => 0), 0, 'lowest draw is 0 (full jitter)');
    const hi = backoffDelay(n, opts, () => 0.999999);
    assert.ok(hi < ceiling && hi >= ceiling - 1, `attempt ${n}: ${hi} vs ${ceiling}`);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(n, opts);
      assert.ok(d >= 0 && d < ceiling, `attempt ${n}: ${d} out of [0, ${ceiling})`);
    }
  }
});

test('backoff: defaults are 250 ms base and 10 s cap; huge attempts stay capped', () => {
  assert.equal(backoffDelay(0, {}, () => 0.999999), 249);
  assert.equal(backoffDelay(1000, {}, () => 0.999999), 9999);
  assert.equal(backoffDelay(1e9, { backoffBaseMs: 1, backoffCapMs: 500 }, () => 0.5), 250);
  assert.equal(backoffDelay(-3, {}, () => 0.5), 125, 'negative attempts count as 0');
});

test('backoff: the draws are spread (jitter), not a fixed sequence', () => {
  const seen = new Set();
  for (let i = 0; i < 50; i++) seen.add(backoffDelay(5, {}));
  assert.ok(seen.size > 20, `only ${seen.size} distinct delays`);
});

test('close codes: which ones reconnect (docs/protocol.md section 4)', () => {
  for (const code of [1001, 1006, 1011, 1012, 4000, 4001, 4008, 4399]) assert.equal(shouldReconnect(code, false), true, String(code));
  for (const code of [1000, 1002, 1003, 1007, 1009, 4400, 4401, 4403, 4499]) assert.equal(shouldReconnect(code, false), false, String(code));
  assert.equal(shouldReconnect(4401, true), true, '4401 reconnects when getToken can refresh');
  assert.equal(shouldReconnect(4403, true), false);
});

test('socket URL: ws/http/https bases, trailing slash, token escaped', () => {
  assert.equal(buildSocketUrl('ws://127.0.0.1:8080', 'a.b.c'), 'ws://127.0.0.1:8080/api/v1/ws?token=a.b.c');
  assert.equal(buildSocketUrl('http://h:1/', 'x'), 'ws://h:1/api/v1/ws?token=x');
  assert.equal(buildSocketUrl('https://h.example/pubsub/', 'x'), 'wss://h.example/pubsub/api/v1/ws?token=x');
  assert.equal(buildSocketUrl('wss://h/api/v1/ws', 'a+b/c='), 'wss://h/api/v1/ws?token=a%2Bb%2Fc%3D');
  assert.equal(buildSocketUrl('ws://h/api/v1/ws?token=old&x=1', 'new'), 'ws://h/api/v1/ws?x=1&token=new');
  // names to subscribe to at the upgrade: encoded, comma-separated, replacing any in the URL
  assert.equal(buildSocketUrl('ws://h', 't', ['a', 'chat:msg']), 'ws://h/api/v1/ws?token=t&subscribe=a,chat%3Amsg');
  assert.equal(buildSocketUrl('ws://h/api/v1/ws?subscribe=old', 't', []), 'ws://h/api/v1/ws?token=t');
  assert.throws(() => buildSocketUrl('ftp://h', 'x'), (e) => e instanceof HubbubError && e.code === 'invalid_argument');
});

test('connect() without token or WebSocket fails at once', () => {
  const c = new Client();
  assert.throws(() => c.connect({ url: 'ws://127.0.0.1:1' }), (e) => e.code === 'invalid_argument');
  if (typeof globalThis.WebSocket === 'undefined') {
    assert.throws(() => c.connect({ url: 'ws://127.0.0.1:1', token: 't' }), (e) => e.code === 'invalid_argument' && /WebSocket/.test(e.message));
  }
});

test('publish argument errors reject with typed codes and never throw', async () => {
  const c = new Client();
  const errors = [];
  c.on('error', (e) => errors.push(e.code));
  await assert.rejects(c.publish('bad name!', { data: {} }), (e) => e instanceof HubbubError && e.code === 'invalid_event_name');
  await assert.rejects(c.publish('ok', { data: [1] }), (e) => e.code === 'invalid_type');
  await assert.rejects(c.publish('ok', { data: 'str' }), (e) => e.code === 'invalid_type');
  await assert.rejects(c.publish('ok', { data: {}, scope: 'room' }), (e) => e.code === 'invalid_scope');
  const circular = {};
  circular.self = circular;
  await assert.rejects(c.publish('ok', { data: circular }), (e) => e.code === 'invalid_json');
  await assert.rejects(c.publish('ok', { data: { s: 'x'.repeat(40000) } }), (e) => e.code === 'data_too_large');
  await assert.rejects(c.publish('ok', { data: { s: '漢'.repeat(12000) } }), (e) => e.code === 'data_too_large', '36 KB of UTF-8 in 12 K characters');
  assert.deepEqual(errors, ['invalid_event_name', 'invalid_type', 'invalid_type', 'invalid_scope', 'invalid_json', 'data_too_large', 'data_too_large']);
  assert.throws(() => c.subscribe('', () => {}), (e) => e.code === 'invalid_event_name');
  assert.throws(() => c.subscribe('x', 'not a function'), TypeError);
});

test('ignored publish promises do not become unhandled rejections', async () => {
  let unhandled = 0;
  const onUnhandled = () => unhandled++;
  process.on('unhandledRejection', onUnhandled);
  const c = new Client();
  c.on('error', () => {});
  c.publish('bad name!', { data: {} });
  c.publish('x', { data: {} });
  c.close(); /* rejects the queued one with `closed` */
  await new Promise((r) => setTimeout(r, 50));
  process.off('unhandledRejection', onUnhandled);
  assert.equal(unhandled, 0);
});

test('before connect(): state idle, publishes queued in order and bounded', async () => {
  const c = new Client();
  assert.equal(c.state, 'idle');
  c.on('error', () => {});
  const ok = [];
  for (let i = 0; i < 3; i++) ok.push(c.publish('q', { data: { i } }));
  assert.equal(c._queue.length, 3);
  assert.deepEqual(c._queue.map((q) => JSON.parse(q.frame).data.i), [0, 1, 2]);
  const small = new Client();
  small.on('error', () => {});
  small._opts.maxQueue = 2;
  small.publish('q', { data: {} });
  small.publish('q', { data: {} });
  await assert.rejects(small.publish('q', { data: {} }), (e) => e.code === 'queue_full');
  c.close();
  for (const p of ok) await assert.rejects(p, (e) => e.code === 'closed');
  small.close();
});

test('a queued publish is a snapshot of data at call time', () => {
  const c = new Client();
  const data = { n: 1 };
  c.publish('snap', { data });
  data.n = 2;
  assert.equal(JSON.parse(c._queue[0].frame).data.n, 1);
  c.on('error', () => {});
  c.close();
});

test('exports: PubSub is a ready-to-use default client', () => {
  assert.equal(typeof PubSub.publish, 'function');
  assert.equal(typeof PubSub.subscribe, 'function');
  assert.equal(PubSub.state, 'idle');
  assert.equal(PubSub.createClient, createClient);
});
