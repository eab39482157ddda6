// 19-history: positions, bounded history, recovery on reconnect (since=),
// restarts, the HTTP history API, idempotent and batch publishes
// (docs/protocol.md "Recovery", docs/http-api.md).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, room, uuid, publishBody, poll } from './harness.mjs';

const SCOPES = ['session', 'event', 'organization'];
const servers = [];
after(async () => {
  for (const s of servers) await s.stop().catch(() => {});
});

async function server(config = {}, opts = {}) {
  const s = await startServer({ threads: 2, config: { conn_publish_rate: 0, token_publish_rate: 0, ...config }, ...opts });
  servers.push(s);
  return s;
}

/** The resume string the SDK builds from the last position of each scope. */
function resume(pos) {
  return 'h1.' + SCOPES.map((s) => `${pos[s].epoch}.${pos[s].offset}`).join('.');
}

/** The welcome's positions moved on by the events seen after it (what the SDK keeps). */
function positionsOf(client) {
  const pos = structuredClone(client.welcome.positions);
  const wi = client.messages.findIndex((m) => m.type === 'welcome');
  for (const m of client.messages.slice(wi + 1)) if (m.type === 'event') pos[m.scope].offset = Math.max(pos[m.scope].offset, m.offset);
  return pos;
}

async function joinWith(srv, t, r, { subscribe = [], since = null, scopes = SCOPES } = {}) {
  const token = await srv.connToken(t, { ...r, user_id: 'u-' + uuid().slice(0, 8), scopes });
  let query = subscribe.length ? `&subscribe=${subscribe.join(',')}` : '';
  if (since) query += `&since=${since}`;
  return srv.connect(token, { query });
}

async function publishAll(srv, t, r, name, n, scopes = SCOPES) {
  const out = [];
  for (let i = 0; i < n; i++) {
    for (const s of scopes) {
      const res = await srv.publish(t.apiToken, publishBody({ type: s, ...r }, name, { i, s }));
      assert.equal(res.status, 202, res.text);
      out.push(res.json);
    }
  }
  return out;
}

test('events carry their offset, the welcome the three positions, the publish answer offset and epoch', async () => {
  const srv = await server();
  const t = await srv.tenant();
  const r = room();
  const c = await joinWith(srv, t, r, { subscribe: ['h'] });
  for (const s of SCOPES) {
    assert.match(c.welcome.positions[s].epoch, /^[0-9a-f]{16}$/);
    assert.equal(typeof c.welcome.positions[s].offset, 'number');
  }
  const before = c.welcome.positions.session.offset;
  const res = await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'h', { a: 1 }));
  assert.equal(res.status, 202);
  assert.equal(res.json.offset, before + 1);
  assert.equal(res.json.epoch, c.welcome.positions.session.epoch);
  const ev = await c.waitFor((m) => m.type === 'event');
  assert.equal(ev.offset, before + 1);
  assert.deepEqual(ev.data, { a: 1 });
  // A WebSocket publish is acked with its position too.
  const ack = await c.request({ type: 'publish', eventName: 'h', data: { b: 2 } });
  assert.equal(ack.type, 'ack');
  assert.equal(ack.offset, before + 2);
  assert.equal(ack.epoch, c.welcome.positions.session.epoch);
  await c.close();
});

test('a client whose TCP connection died gets exactly what it missed, per scope, in order, once', async () => {
  const srv = await server();
  const t = await srv.tenant();
  const r = room();
  const a = await joinWith(srv, t, r, { subscribe: ['news', 'chat'] });
  await publishAll(srv, t, r, 'news', 2);
  await a.waitFor(() => a.events('news').length === 6, 3000, 'six live events');
  const pos = positionsOf(a);
  a.ws.terminate(); // the TCP connection is killed, not closed cleanly
  await a.closed;
  const missed = await publishAll(srv, t, r, 'news', 3);
  await publishAll(srv, t, r, 'ignored', 2); // not subscribed: never replayed
  const b = await joinWith(srv, t, r, { subscribe: ['news', 'chat'], since: resume(pos) });
  assert.equal(b.welcome.recovered, true, JSON.stringify(b.welcome));
  // Replayed events came before the welcome.
  const wi = b.messages.findIndex((m) => m.type === 'welcome');
  const replayed = b.messages.slice(0, wi);
  assert.equal(replayed.length, 9);
  assert.ok(replayed.every((m) => m.type === 'event' && m.eventName === 'news'));
  for (const s of SCOPES) {
    const got = replayed.filter((m) => m.scope === s).map((m) => m.offset);
    const want = missed.filter((x, i) => SCOPES[i % 3] === s).map((x) => x.offset);
    assert.deepEqual(got, want, `${s} offsets`);
  }
  assert.deepEqual(new Set(replayed.map((m) => m.message_id)).size, 9, 'each once');
  // And it is live again, with nothing twice.
  await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'news', { live: true }));
  await b.waitFor((m) => m.data?.live === true);
  await b.expectNone(() => b.events('news').length > 10, 200, 'a duplicate');
  assert.equal(b.events('news').length, 10);
  await b.close();
});

test('recovery is all or nothing: trimmed, too many, too old, another epoch -> recovered:false, nothing replayed', async () => {
  const srv = await server({ history_size: 5, max_recover_messages: 4 });
  const t = await srv.tenant();
  const r = room();
  const a = await joinWith(srv, t, r, { subscribe: ['x'] });
  const pos = positionsOf(a);
  await a.close();
  // 3 in session only: recoverable; then more than max_recover_messages.
  await publishAll(srv, t, r, 'x', 3, ['session']);
  let b = await joinWith(srv, t, r, { subscribe: ['x'], since: resume(pos) });
  assert.equal(b.welcome.recovered, true);
  assert.equal(b.events('x').length, 3);
  await b.close();
  await publishAll(srv, t, r, 'x', 2, ['session']);
  b = await joinWith(srv, t, r, { subscribe: ['x'], since: resume(pos) });
  assert.equal(b.welcome.recovered, false);
  assert.deepEqual(b.welcome.recovery.failed, { session: 'too_many' });
  assert.equal(b.events().length, 0, 'nothing replayed');
  await b.close();
  // Past history_size: the oldest missed one is gone.
  await publishAll(srv, t, r, 'x', 3, ['session']);
  b = await joinWith(srv, t, r, { subscribe: ['x'], since: resume(pos) });
  assert.deepEqual(b.welcome.recovery.failed, { session: 'trimmed' });
  assert.equal(b.events().length, 0);
  await b.close();
  // An epoch the channel never had (another room's, or forged).
  const forged = structuredClone(pos);
  forged.event.epoch = '0123456789abcdef';
  b = await joinWith(srv, t, r, { subscribe: ['x'], since: resume(forged) });
  assert.equal(b.welcome.recovered, false);
  assert.equal(b.welcome.recovery.failed.event, 'epoch_changed');
  assert.equal(b.events().length, 0);
  await b.close();
});

test('too old: messages past history_ttl_s are not replayed', async () => {
  const srv = await server({ history_ttl_s: 1 });
  const t = await srv.tenant();
  const r = room();
  const a = await joinWith(srv, t, r, { subscribe: ['x'] });
  const pos = positionsOf(a);
  await a.close();
  await publishAll(srv, t, r, 'x', 1, ['session']);
  // The marker: the channel keeps nothing any more (the sweep dropped the
  // message once it was older than the TTL).
  await poll(async () => {
    const h = await srv.http('GET', `/api/v1/history?scope=session&event_id=${r.event_id}&session_id=${r.session_id}`, { headers: { Authorization: t.apiToken } });
    return h.json.first_offset === null;
  }, 10000, 'the message to expire');
  const b = await joinWith(srv, t, r, { subscribe: ['x'], since: resume(pos) });
  assert.equal(b.welcome.recovered, false);
  assert.deepEqual(b.welcome.recovery.failed, { session: 'trimmed' });
  assert.equal(b.events().length, 0);
  await b.close();
});

test('isolation: a resume string cannot read another room, plugin or organization; a malformed one is refused', async () => {
  const srv = await server();
  const t = await srv.tenant();
  const t2 = await srv.tenant();
  const r1 = room();
  const r2 = room();
  const a = await joinWith(srv, t, r1, { subscribe: ['s'] });
  const pos = positionsOf(a);
  await a.close();
  await publishAll(srv, t, r1, 's', 2);
  // The other room's client presents room 1's positions.
  for (const [tenant, r] of [[t, r2], [t2, r1], [t2, r2]]) {
    const b = await joinWith(srv, tenant, r, { subscribe: ['s'], since: resume(pos) });
    assert.equal(b.welcome.recovered, false);
    assert.equal(b.events().length, 0, 'nothing of another room');
    await b.close();
  }
  const token = await srv.connToken(t, { ...r1 });
  for (const bad of ['x', 'h1.', 'h2.' + resume(pos).slice(3), resume(pos) + '.1', resume(pos).toUpperCase(), 'h1.' + 'a'.repeat(200)]) {
    const res = await fetch(`${srv.url}/api/v1/ws?token=${encodeURIComponent(token)}&since=${encodeURIComponent(bad)}`, {
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    }).catch((e) => e);
    // fetch refuses Upgrade headers in some Node versions: check with the raw client then.
    if (res instanceof Error) break;
    assert.equal(res.status, 400, bad);
  }
  const raw = await srv.rawHttp(
    `GET /api/v1/ws?token=${encodeURIComponent(token)}&since=h1.zz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    { untilClose: true },
  );
  assert.match(raw, /^HTTP\/1\.1 400/);
  assert.match(raw, /"code":"bad_request"/);
});

test('single node: history survives SIGTERM (recovered) ; after kill -9 the epochs change (recovered:false, never a silent gap)', async () => {
  const srv = await server();
  const dataDir = srv.dataDir;
  const t = await srv.tenant();
  const r = room();
  const a = await joinWith(srv, t, r, { subscribe: ['k'] });
  const pos = positionsOf(a);
  a.ws.terminate();
  await publishAll(srv, t, r, 'k', 2);
  await srv.stop({ keepData: true });

  const srv2 = await server({}, { dataDir });
  let b = await joinWith(srv2, t, r, { subscribe: ['k'], since: resume(pos) });
  assert.equal(b.welcome.recovered, true, JSON.stringify(b.welcome));
  assert.equal(b.events('k').length, 6);
  const pos2 = positionsOf(b);
  b.ws.terminate();
  await publishAll(srv2, t, r, 'k', 1);
  await srv2.crash();

  const srv3 = await server({}, { dataDir });
  b = await joinWith(srv3, t, r, { subscribe: ['k'], since: resume(pos2) });
  assert.equal(b.welcome.recovered, false);
  assert.deepEqual(Object.values(b.welcome.recovery.failed), ['epoch_changed', 'epoch_changed', 'epoch_changed']);
  assert.equal(b.events().length, 0);
  assert.match(srv3.stderr, /did not stop cleanly/);
  // Offsets only grow: a new message is past everything given before.
  const res = await srv3.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'k', {}));
  assert.ok(res.json.offset > pos2.session.offset);
  await b.close();
  await srv3.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('GET /api/v1/history: the kept messages of a channel, paged, filtered, scoped to the token', async () => {
  const srv = await server({ history_size: 10 });
  const t = await srv.tenant();
  const t2 = await srv.tenant();
  const r = room();
  const sent = [];
  for (let i = 0; i < 12; i++) sent.push((await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, i % 2 ? 'odd' : 'even', { i }))).json);
  const q = (tok, qs) => srv.http('GET', `/api/v1/history?scope=session&event_id=${r.event_id}&session_id=${r.session_id}${qs}`, { headers: { Authorization: tok } });
  let res = await q(t.apiToken, '');
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.epoch, sent[0].epoch);
  assert.equal(res.json.offset, sent[11].offset);
  assert.equal(res.json.messages.length, 10);
  assert.equal(res.json.first_offset, sent[2].offset);
  assert.equal(res.json.messages[0].data.i, 2);
  assert.equal(res.json.trimmed, true, 'the first two are gone');
  res = await q(t.apiToken, `&since=${sent[5].offset}&limit=3`);
  assert.deepEqual(res.json.messages.map((m) => m.data.i), [6, 7, 8]);
  assert.equal(res.json.more, true);
  assert.equal(res.json.trimmed, false);
  res = await q(t.apiToken, '&eventName=odd');
  assert.ok(res.json.messages.every((m) => m.eventName === 'odd'));
  // Another organization's token sees its own (empty) channel, never this one.
  res = await q(t2.apiToken, '');
  assert.equal(res.status, 200);
  assert.equal(res.json.messages.length, 0);
  assert.notEqual(res.json.epoch, sent[0].epoch);
  // Errors are precise.
  for (const [qs, status, code] of [
    ['', 401, 'missing_token'],
    ['?scope=room', 422, 'invalid_scope'],
    ['?scope=session', 422, 'missing_field'],
    [`?scope=event&event_id=nope`, 422, 'invalid_uuid'],
    [`?scope=organization&limit=0`, 422, 'invalid_value'],
    [`?scope=organization&eventName=a%20b`, 422, 'invalid_event_name'],
  ]) {
    const x = await srv.http('GET', `/api/v1/history${qs}`, { headers: status === 401 ? {} : { Authorization: t.apiToken } });
    assert.equal(x.status, status, qs + ' ' + x.text);
    assert.equal(x.json.error.code, code, qs);
  }
});

test('idempotency: the same key twice, and at once, is delivered once and answered the same', async () => {
  const srv = await server();
  const t = await srv.tenant();
  const r = room();
  const c = await joinWith(srv, t, r, { subscribe: ['pay'] });
  const body = publishBody({ type: 'session', ...r }, 'pay', { amount: 5 });
  const key = 'order-' + uuid();
  const first = await srv.publish(t.apiToken, body, { headers: { 'Idempotency-Key': key } });
  const again = await srv.publish(t.apiToken, body, { headers: { 'Idempotency-Key': key } });
  assert.equal(first.status, 202);
  assert.deepEqual(again.json, first.json);
  assert.equal(again.headers['idempotent-replayed'], 'true');
  const key2 = 'order-' + uuid();
  const burst = await Promise.all(Array.from({ length: 8 }, () => srv.publish(t.apiToken, body, { headers: { 'Idempotency-Key': key2 } })));
  assert.equal(new Set(burst.map((x) => x.json.message_id)).size, 1);
  // Over WebSocket, the same rule (keys are per plugin, whichever way they come).
  const ws1 = await c.request({ type: 'publish', eventName: 'pay', data: { amount: 7 }, idempotency_key: 'ws-1' });
  const ws2 = await c.request({ type: 'publish', eventName: 'pay', data: { amount: 7 }, idempotency_key: 'ws-1' });
  assert.equal(ws1.message_id, ws2.message_id);
  await poll(() => c.events('pay').length >= 3, 3000, 'three deliveries');
  await c.expectNone(() => c.events('pay').length > 3, 300, 'a second delivery');
  assert.deepEqual(c.events('pay').map((m) => m.data.amount), [5, 5, 7]);
  // A bad key is refused.
  const bad = await srv.publish(t.apiToken, body, { headers: { 'Idempotency-Key': 'has space' } });
  assert.equal(bad.status, 400);
  await c.close();
});

test('batch: each item on its own, answered in order with status, code and offset', async () => {
  const srv = await server();
  const t = await srv.tenant();
  const r = room();
  const c = await joinWith(srv, t, r, { subscribe: ['b'] });
  const good = publishBody({ type: 'session', ...r }, 'b', { n: 1 });
  const res = await srv.http('POST', '/api/v1/pub_subs/batch', {
    headers: { Authorization: t.apiToken },
    body: {
      publishes: [
        good,
        { scope: { type: 'room' }, payload: { event: { eventName: 'b', data: {} } } },
        { ...publishBody({ type: 'session', ...r }, 'b', { n: 2 }), idempotency_key: 'k1' },
        { ...publishBody({ type: 'session', ...r }, 'b', { n: 2 }), idempotency_key: 'k1' },
        publishBody({ type: 'session', ...r }, 'b', [1]),
      ],
    },
  });
  assert.equal(res.status, 200, res.text);
  const [a, b, d1, d2, e] = res.json.results;
  assert.equal(a.status, 202);
  assert.equal(typeof a.offset, 'number');
  assert.equal(b.status, 422);
  assert.equal(b.error.code, 'invalid_scope');
  assert.equal(b.error.pointer, '/publishes/1/scope/type');
  assert.equal(d1.message_id, d2.message_id);
  assert.equal(e.error.code, 'invalid_type');
  await poll(() => c.events('b').length >= 2, 3000, 'two deliveries');
  await c.expectNone(() => c.events('b').length > 2, 300);
  for (const [body, code] of [[{}, 'missing_field'], [{ publishes: [] }, 'invalid_value'], [{ publishes: {} }, 'invalid_type']]) {
    const x = await srv.http('POST', '/api/v1/pub_subs/batch', { headers: { Authorization: t.apiToken }, body });
    assert.equal(x.json.error.code, code);
  }
  await c.close();
});

test('memory stays bounded by history_size: 1000 publishes into one channel keep 100', async () => {
  const srv = await server({ history_size: 100 });
  const t = await srv.tenant();
  const r = room();
  const metric = async (name) => Number(new RegExp(`^hubbub_${name} (\\d+)$`, 'm').exec((await srv.http('GET', '/metrics')).text)[1]);
  await publishAll(srv, t, r, 'm', 100, ['session']);
  const h1 = await metric('heap_bytes');
  await publishAll(srv, t, r, 'm', 400, ['session']);
  const h2 = await metric('heap_bytes');
  assert.ok(h2 - h1 < 64 * 1024, `heap grew by ${h2 - h1} with a full history`);
});
