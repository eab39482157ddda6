// Subscribing at the upgrade (docs/protocol.md): /api/v1/ws?token=...&subscribe=a,b
// subscribes the new connection before the welcome is written, as acked
// `subscribe` messages would, without a round trip each. A list that names an
// invalid event, or more than max_subscriptions, refuses the upgrade.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startServer, room, uuid, mintJwt, parseHttpResponse, publishBody } from './harness.mjs';

const MAX_SUBS = 3;
let srv, t;
before(async () => {
  srv = await startServer({ threads: 1, config: { max_subscriptions: MAX_SUBS } });
  t = await srv.tenant();
});
after(async () => {
  await srv?.stop();
});

const wsPath = (token, subscribe) =>
  `/api/v1/ws?token=${encodeURIComponent(token)}` + (subscribe === undefined ? '' : `&subscribe=${subscribe}`);

/** Hand-written upgrade request; returns the parsed response. */
async function handshake(target) {
  let req = `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`;
  req += `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  return parseHttpResponse(await srv.rawHttp(req, { timeoutMs: 3000 }));
}

function assertRefused(res, status, code) {
  assert.notEqual(res.status, 101, 'must not upgrade');
  assert.equal(res.status, status, `status: ${res.raw.slice(0, 400)}`);
  assert.equal(res.json?.error?.code, code, res.body);
}

const publish = (r, eventName, data) => srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, eventName, data));

test('names in ?subscribe= are subscribed before the welcome: events arrive without a subscribe message', async () => {
  const r = room();
  const tok = mintJwt(t.signingSecret, srv.claims(t, r));
  // chat%3Amsg is chat:msg; "a,a" counts once against nothing but the limit
  const ws = await srv.rawWs(tok, { path: wsPath(tok, 'a,chat%3Amsg,a') });
  try {
    assert.equal(ws.response.status, 101);
    const welcome = await ws.waitJson((m) => m.type === 'welcome');
    assert.deepEqual(welcome.subscribed, ['a', 'chat:msg', 'a'], 'the welcome lists what was subscribed');
    const m1 = uuid(), m2 = uuid(), m3 = uuid();
    assert.equal((await publish(r, 'b', { m: m1 })).status, 202); // not subscribed
    assert.equal((await publish(r, 'a', { m: m2 })).status, 202);
    assert.equal((await publish(r, 'chat:msg', { m: m3 })).status, 202);
    await ws.waitJson((m) => m.data?.m === m3, 5000);
    const events = ws.texts.map((s) => JSON.parse(s)).filter((m) => m.type === 'event');
    assert.deepEqual(events.map((m) => [m.eventName, m.data.m]), [['a', m2], ['chat:msg', m3]]);
    assert.equal(ws.texts.filter((s) => JSON.parse(s).type === 'ack').length, 0, 'no acks: nothing was asked by message');

    // The subscriptions are ordinary ones: unsubscribe and subscribe work on them.
    ws.sendJson({ type: 'unsubscribe', eventName: 'a', id: 'u1' });
    await ws.waitJson((m) => m.type === 'ack' && m.id === 'u1');
    ws.sendJson({ type: 'subscribe', eventName: 'chat:msg', id: 's1' }); // already held: still acked
    await ws.waitJson((m) => m.type === 'ack' && m.id === 's1');
    const m4 = uuid(), m5 = uuid();
    await publish(r, 'a', { m: m4 });
    await publish(r, 'chat:msg', { m: m5 });
    await ws.waitJson((m) => m.data?.m === m5, 5000);
    assert.ok(!ws.texts.some((s) => s.includes(m4)), 'unsubscribed from a');
  } finally {
    ws.destroy();
  }
});

test('an empty subscribe parameter subscribes nothing; exactly max_subscriptions names are allowed', async () => {
  const tok = mintJwt(t.signingSecret, srv.claims(t, room()));
  for (const list of ['', 'x,y,z']) {
    const ws = await srv.rawWs(tok, { path: wsPath(tok, list) });
    try {
      const welcome = await ws.waitJson((m) => m.type === 'welcome');
      if (list === '') assert.equal(welcome.subscribed, undefined, 'no names: no field');
      else assert.deepEqual(welcome.subscribed, ['x', 'y', 'z']);
    } finally {
      ws.destroy();
    }
  }
});

test('a bad subscribe list refuses the upgrade with a precise error', async () => {
  const tok = mintJwt(t.signingSecret, srv.claims(t, room()));
  const cases = [
    ['a,,b', 422, 'invalid_event_name'],
    [',a', 422, 'invalid_event_name'],
    ['a,', 422, 'invalid_event_name'],
    ['a%20b', 422, 'invalid_event_name'],
    ['a%2Cb%00', 422, 'invalid_event_name'], // a NUL after decoding
    ['x'.repeat(129), 422, 'invalid_event_name'],
    ['a,b,c,d', 422, 'too_many_subscriptions'],
    ['a,a,a,a', 422, 'too_many_subscriptions'], // every name counts against the limit
    ['a%zz', 400, 'bad_request'],
    ['a%2', 400, 'bad_request'],
    ['x'.repeat(2049), 400, 'bad_request'],
  ];
  for (const [list, status, code] of cases) {
    const res = await handshake(wsPath(tok, list));
    assertRefused(res, status, code);
  }
  // and the server is unharmed
  const ok = await handshake(wsPath(tok, 'a'));
  assert.equal(ok.status, 101);
});

test('without a valid token the subscribe list is not looked at: 401 first', async () => {
  const res = await handshake(`/api/v1/ws?token=nope&subscribe=a,,b`);
  assert.equal(res.status, 401, res.raw.slice(0, 300));
});
