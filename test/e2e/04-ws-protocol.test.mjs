// The room wire protocol over a real WebSocket: welcome, ack, error codes with
// ids, ping/pong, limits and scope permissions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, uuid, nowS, mintJwt, UUID_RE } from './harness.mjs';

let srv, t;

before(async () => {
  srv = await startServer({ config: { max_subscriptions: 4 } });
  t = await srv.tenant();
});
after(async () => {
  await srv?.stop();
});

const connect = async (r = room(), extra = {}) => srv.connect(mintJwt(t.signingSecret, srv.claims(t, r, extra)));

test('welcome carries every documented field', async () => {
  const r = room();
  const exp = nowS() + 900;
  const c = await connect(r, { sub: 'alice', scopes: ['session', 'event'], exp });
  try {
    const w = c.welcome;
    assert.equal(c.messages[0].type, 'welcome', 'welcome is the first message');
    assert.equal(w.protocol, 1);
    assert.match(w.connection_id, UUID_RE);
    assert.deepEqual(w.room, { organization_id: t.org.id, plugin_id: t.plugin.id, event_id: r.event_id, session_id: r.session_id });
    assert.equal(w.user_id, 'alice');
    assert.deepEqual([...w.scopes].sort(), ['event', 'session']);
    assert.equal(w.expires_at, exp);
    assert.equal(typeof w.ping_interval_ms, 'number');
    assert.equal(w.limits.max_message_bytes, 65536);
    assert.equal(w.limits.max_data_bytes, 32768);
    assert.equal(w.limits.max_subscriptions, 4, 'configured max_subscriptions');
  } finally {
    await c.close();
  }
});

test('scopes default to ["session"] when the claim is absent', async () => {
  const c = await connect(room(), { scopes: undefined });
  try {
    assert.deepEqual(c.welcome.scopes, ['session']);
  } finally {
    await c.close();
  }
});

test('subscribe, unsubscribe and publish are acked with their id; publish ack has message_id', async () => {
  const c = await connect();
  try {
    assert.deepEqual(await c.request({ type: 'subscribe', eventName: 'a', id: 'c1' }), { type: 'ack', id: 'c1' });
    const again = await c.request({ type: 'subscribe', eventName: 'a', id: 'c1b' });
    assert.equal(again.type, 'ack', 'subscribe is idempotent');
    const pub = await c.request({ type: 'publish', eventName: 'a', data: { x: 1 }, id: 'c3' });
    assert.equal(pub.type, 'ack');
    assert.match(pub.message_id, UUID_RE);
    const ev = await c.waitFor((m) => m.type === 'event' && m.eventName === 'a');
    assert.equal(ev.message_id, pub.message_id);
    assert.equal((await c.request({ type: 'unsubscribe', eventName: 'a', id: 'c2' })).type, 'ack');
    assert.equal((await c.request({ type: 'unsubscribe', eventName: 'a', id: 'c2b' })).type, 'ack', 'unsubscribe is idempotent');
    assert.equal((await c.request({ type: 'unsubscribe', eventName: 'never', id: 'c2c' })).type, 'ack');
  } finally {
    await c.close();
  }
});

test('a request without id gets no ack, but still takes effect', async () => {
  const c = await connect();
  try {
    c.send({ type: 'subscribe', eventName: 'quiet' });
    await c.expectNone((m) => m.type === 'ack', 300, 'ack');
    c.send({ type: 'publish', eventName: 'quiet', data: { q: 1 } });
    await c.waitFor((m) => m.type === 'event' && m.eventName === 'quiet');
    await c.expectNone((m) => m.type === 'ack', 100, 'ack');
  } finally {
    await c.close();
  }
});

test('ping → pong with the same id', async () => {
  const c = await connect();
  try {
    c.send({ type: 'ping', id: 'p1' });
    const p = await c.waitFor((m) => m.type === 'pong');
    assert.equal(p.id, 'p1');
  } finally {
    await c.close();
  }
});

test('event messages carry eventName, data, scope, message_id, sent_at', async () => {
  const c = await connect();
  try {
    await c.subscribe('shape');
    const before = Date.now();
    c.send({ type: 'publish', eventName: 'shape', data: { k: 'v' }, scope: 'session' });
    const ev = await c.waitFor((m) => m.type === 'event');
    assert.equal(ev.eventName, 'shape');
    assert.deepEqual(ev.data, { k: 'v' });
    assert.equal(ev.scope, 'session');
    assert.match(ev.message_id, UUID_RE);
    assert.equal(typeof ev.sent_at, 'number');
    assert.ok(ev.sent_at >= before - 2000 && ev.sent_at <= Date.now() + 2000, `sent_at ${ev.sent_at} is server ms`);
  } finally {
    await c.close();
  }
});

const errorCases = [
  ['missing type', { eventName: 'a' }, 'missing_field'],
  ['type a number', { type: 3 }, 'invalid_type'],
  ['unknown type', { type: 'shout', eventName: 'a' }, 'unknown_type'],
  ['subscribe without eventName', { type: 'subscribe' }, 'missing_field'],
  ['subscribe eventName not a string', { type: 'subscribe', eventName: 12 }, 'invalid_type'],
  ['subscribe eventName empty', { type: 'subscribe', eventName: '' }, 'invalid_event_name'],
  ['subscribe eventName 129 bytes', { type: 'subscribe', eventName: 'e'.repeat(129) }, 'invalid_event_name'],
  ['subscribe eventName with space', { type: 'subscribe', eventName: 'a b' }, 'invalid_event_name'],
  ['unsubscribe without eventName', { type: 'unsubscribe' }, 'missing_field'],
  ['publish without eventName', { type: 'publish', data: {} }, 'missing_field'],
  ['publish without data', { type: 'publish', eventName: 'a' }, 'missing_field'],
  ['publish data an array', { type: 'publish', eventName: 'a', data: [] }, 'invalid_type'],
  ['publish data a string', { type: 'publish', eventName: 'a', data: 'x' }, 'invalid_type'],
  ['publish scope unknown', { type: 'publish', eventName: 'a', data: {}, scope: 'room' }, 'invalid_scope'],
  ['publish scope not a string', { type: 'publish', eventName: 'a', data: {}, scope: 1 }, 'invalid_type'],
  ['publish data over 32 KiB', { type: 'publish', eventName: 'a', data: { pad: 'x'.repeat(33000) } }, 'data_too_large'],
  ['publish eventName bad chars', { type: 'publish', eventName: 'a<b>', data: {} }, 'invalid_event_name'],
];
for (const [name, msg, code] of errorCases) {
  test(`error ${code} with the request id: ${name}`, async () => {
    const c = await connect();
    try {
      const res = await c.request(msg);
      assert.equal(res.type, 'error', JSON.stringify(res));
      assert.equal(res.code, code, JSON.stringify(res));
      assert.equal(typeof res.message, 'string');
      // The connection stays usable after an error.
      c.send({ type: 'ping', id: 'alive' });
      await c.waitFor((m) => m.type === 'pong' && m.id === 'alive');
    } finally {
      await c.close();
    }
  });
}

test('an id over 64 bytes: error invalid_value', async () => {
  const c = await connect();
  try {
    c.send({ type: 'subscribe', eventName: 'a', id: 'i'.repeat(65) });
    const e = await c.waitFor((m) => m.type === 'error');
    assert.equal(e.code, 'invalid_value');
    const ok = await c.request({ type: 'subscribe', eventName: 'a', id: 'i'.repeat(64) });
    assert.equal(ok.type, 'ack');
  } finally {
    await c.close();
  }
});

test('an id that is not a string: error invalid_type; an empty id: error invalid_value', async () => {
  const c = await connect();
  try {
    c.send({ type: 'subscribe', eventName: 'a', id: 5 });
    const e1 = await c.waitFor((m) => m.type === 'error');
    assert.equal(e1.code, 'invalid_type', JSON.stringify(e1));
    c.send({ type: 'subscribe', eventName: 'a', id: '' });
    const e2 = await c.waitFor(() => c.messages.filter((m) => m.type === 'error').length >= 2);
    const errs = c.messages.filter((m) => m.type === 'error');
    assert.equal(errs[1].code, 'invalid_value', JSON.stringify(errs[1]));
    assert.ok(e2);
  } finally {
    await c.close();
  }
});

test('unreadable messages: error invalid_json without id; the connection stays open', async () => {
  const c = await connect();
  try {
    for (const text of ['not json', '[1,2]', '"str"', '42', 'null', '{"type":"ping","id":"x"', '{"type":"ping","type":"ping"}']) {
      const n = c.messages.filter((m) => m.type === 'error').length;
      c.send(text);
      await c.waitFor(() => c.messages.filter((m) => m.type === 'error').length > n, 2000, `error for ${text}`);
      const e = c.messages.filter((m) => m.type === 'error')[n];
      assert.equal(e.code, 'invalid_json', `${text}: ${JSON.stringify(e)}`);
    }
    c.send({ type: 'ping', id: 'still' });
    await c.waitFor((m) => m.type === 'pong' && m.id === 'still');
  } finally {
    await c.close();
  }
});

test('nesting deeper than 32: error invalid_json', async () => {
  const c = await connect();
  try {
    const deep = '{"a":'.repeat(40) + '1' + '}'.repeat(40);
    c.send(`{"type":"publish","eventName":"a","data":${deep},"id":"deep"}`);
    const e = await c.waitFor((m) => m.type === 'error');
    assert.equal(e.code, 'invalid_json');
  } finally {
    await c.close();
  }
});

test('max_subscriptions (4 here): the 5th distinct name fails with too_many_subscriptions', async () => {
  const c = await connect();
  try {
    for (const n of ['s1', 's2', 's3', 's4']) await c.subscribe(n);
    const e = await c.request({ type: 'subscribe', eventName: 's5' });
    assert.equal(e.type, 'error');
    assert.equal(e.code, 'too_many_subscriptions');
    assert.equal((await c.request({ type: 'subscribe', eventName: 's1' })).type, 'ack', 're-subscribing an existing name is fine');
    await c.request({ type: 'unsubscribe', eventName: 's2' });
    assert.equal((await c.request({ type: 'subscribe', eventName: 's5' })).type, 'ack', 'a freed slot can be reused');
  } finally {
    await c.close();
  }
});

test('publish to a forbidden scope: scope_forbidden and nobody receives it', async () => {
  const r = room();
  const other = { event_id: r.event_id, session_id: uuid() };
  const pub = await connect(r, { scopes: ['session'] });
  const sameRoom = await connect(r);
  const sameEvent = await connect(other);
  try {
    for (const c of [pub, sameRoom, sameEvent]) await c.subscribe('secret');
    for (const scope of ['event', 'organization']) {
      const e = await pub.request({ type: 'publish', eventName: 'secret', data: { scope }, scope });
      assert.equal(e.type, 'error');
      assert.equal(e.code, 'scope_forbidden');
    }
    for (const c of [pub, sameRoom, sameEvent]) await c.expectNone((m) => m.type === 'event', 300, 'event');
  } finally {
    for (const c of [pub, sameRoom, sameEvent]) await c.close();
  }
});

test('a token with only ["event"] cannot publish to its session', async () => {
  const c = await connect(room(), { scopes: ['event'] });
  try {
    await c.subscribe('x');
    const e = await c.request({ type: 'publish', eventName: 'x', data: {} });
    assert.equal(e.code, 'scope_forbidden', 'default scope is session, not allowed');
    const ok = await c.request({ type: 'publish', eventName: 'x', data: {}, scope: 'event' });
    assert.equal(ok.type, 'ack');
    await c.waitFor((m) => m.type === 'event' && m.scope === 'event');
  } finally {
    await c.close();
  }
});

test('unknown fields in client messages are ignored', async () => {
  const c = await connect();
  try {
    const res = await c.request({ type: 'subscribe', eventName: 'extra', futureField: [1, 2], v: 2 });
    assert.equal(res.type, 'ack');
  } finally {
    await c.close();
  }
});

test('a token that expires while connected closes with 4401', async () => {
  // exp 25 s ago is inside the 30 s leeway: the handshake succeeds and the
  // token runs out a few seconds later at most.
  const tok = mintJwt(t.signingSecret, srv.claims(t, room(), { exp: nowS() - 25 }));
  const c = await srv.connect(tok, { waitWelcome: false });
  const info = await Promise.race([c.closed, new Promise((r) => setTimeout(() => r(null), 9000))]);
  if (!info) await c.close();
  assert.ok(info, 'closed within 9 s');
  assert.equal(info.code, 4401);
});
