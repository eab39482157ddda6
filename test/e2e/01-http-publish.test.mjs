// HTTP publish API: POST /api/v1/pub_subs and /api/v1/publish, every error case
// of the contract with exact status, code and pointer, the order of the checks,
// and `data` delivered byte for byte.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, uuid, assertError, publishBody, UUID_RE } from './harness.mjs';

let srv, t, r;
const PATHS = ['/api/v1/pub_subs', '/api/v1/publish'];

before(async () => {
  srv = await startServer();
  t = await srv.tenant();
  r = room();
});
after(async () => {
  await srv?.stop();
});

const sessionScope = () => ({ type: 'session', ...r });
const ok = (extra = {}) => publishBody(sessionScope(), 'hello', { foo: 'bar', ...extra });

test('healthz answers 200 {"status":"ok"}', async () => {
  const res = await srv.http('GET', '/healthz');
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'] || '', /^application\/json/);
  assert.equal(res.json.status, 'ok');
});

for (const p of PATHS) {
  for (const form of ['plain', 'Bearer']) {
    test(`${p} with "${form}" Authorization: 202 {message_id}`, async () => {
      const auth = form === 'plain' ? t.apiToken : `Bearer ${t.apiToken}`;
      const res = await srv.publish(auth, ok(), { path: p });
      assert.equal(res.status, 202, res.text);
      assert.match(res.json.message_id, UUID_RE);
      assert.match(res.headers['content-type'] || '', /^application\/json/);
    });
  }
}

test('Content-Type with parameters is accepted', async () => {
  for (const ct of ['application/json; charset=utf-8', 'application/json;charset=UTF-8', 'Application/JSON']) {
    const res = await srv.publish(t.apiToken, ok(), { headers: { 'Content-Type': ct } });
    assert.equal(res.status, 202, `${ct}: ${res.text}`);
  }
});

test('every scope type is accepted over HTTP', async () => {
  for (const scope of [{ type: 'session', ...r }, { type: 'event', event_id: r.event_id }, { type: 'organization' }]) {
    const res = await srv.publish(t.apiToken, publishBody(scope, 'x', {}));
    assert.equal(res.status, 202, `${scope.type}: ${res.text}`);
  }
});

test('each publish gets a distinct message_id', async () => {
  const ids = new Set();
  for (let i = 0; i < 5; i++) ids.add((await srv.publish(t.apiToken, ok())).json.message_id);
  assert.equal(ids.size, 5);
});

// --- routing and method --------------------------------------------------------

test('GET /nope: 404 not_found', async () => {
  assertError(await srv.http('GET', '/nope'), 404, 'not_found');
});

test('POST /api/v1/nope: 404 not_found even with a token', async () => {
  const res = await srv.http('POST', '/api/v1/nope', { headers: { Authorization: t.apiToken }, body: ok() });
  assertError(res, 404, 'not_found');
});

for (const p of PATHS) {
  test(`GET ${p}: 405 method_not_allowed with Allow: POST`, async () => {
    const res = await srv.http('GET', p);
    assertError(res, 405, 'method_not_allowed');
    assert.match(res.headers.allow || '', /POST/);
  });
}

test('PUT and DELETE on the publish endpoint: 405', async () => {
  for (const m of ['PUT', 'DELETE']) {
    const res = await srv.http(m, '/api/v1/pub_subs', { headers: { Authorization: t.apiToken }, body: ok() });
    assertError(res, 405, 'method_not_allowed');
  }
});

// --- credentials ---------------------------------------------------------------

test('no Authorization header: 401 missing_token', async () => {
  const res = await srv.http('POST', '/api/v1/pub_subs', { body: ok() });
  assertError(res, 401, 'missing_token');
});

test('unknown, garbage and empty-Bearer tokens: 401 invalid_token', async () => {
  for (const auth of ['hb_' + 'x'.repeat(40), 'garbage', `Bearer nope`, t.apiToken.slice(0, -2) + 'zz', 'Bearer ' + 'a'.repeat(500)]) {
    const res = await srv.publish(auth, ok());
    assertError(res, 401, 'invalid_token');
  }
});

test('a connection token is not an API token: 401 invalid_token', async () => {
  const jwt = await srv.connToken(t, r);
  assertError(await srv.publish(jwt, ok()), 401, 'invalid_token');
});

// --- Content-Type --------------------------------------------------------------

test('Content-Type missing: 415 unsupported_media_type', async () => {
  const res = await srv.http('POST', '/api/v1/pub_subs', { headers: { Authorization: t.apiToken }, body: JSON.stringify(ok()) });
  assertError(res, 415, 'unsupported_media_type');
});

test('Content-Type not application/json: 415', async () => {
  for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonp', 'multipart/form-data; boundary=x']) {
    const res = await srv.publish(t.apiToken, ok(), { headers: { 'Content-Type': ct } });
    assertError(res, 415, 'unsupported_media_type');
  }
});

// --- size ----------------------------------------------------------------------

test('body over 65536 bytes (Content-Length): 413 payload_too_large', async () => {
  const body = JSON.stringify(ok({ pad: 'x'.repeat(70000) }));
  assertError(await srv.publish(t.apiToken, body), 413, 'payload_too_large');
});

test('body over 65536 bytes (chunked): 413 payload_too_large', async () => {
  const body = JSON.stringify(ok({ pad: 'x'.repeat(70000) }));
  const res = await srv.http('POST', '/api/v1/pub_subs', {
    headers: { Authorization: t.apiToken, 'Content-Type': 'application/json' },
    body,
    chunked: true,
  });
  assertError(res, 413, 'payload_too_large');
});

test('chunked body under the limit is accepted', async () => {
  const res = await srv.http('POST', '/api/v1/pub_subs', {
    headers: { Authorization: t.apiToken, 'Content-Type': 'application/json' },
    body: JSON.stringify(ok({ pad: 'y'.repeat(1000) })),
    chunked: true,
  });
  assert.equal(res.status, 202, res.text);
});

// --- JSON ----------------------------------------------------------------------

test('malformed JSON: 400 invalid_json', async () => {
  for (const body of ['{', '{"scope":', 'not json', '', '{"a":1}x', "{'a':1}", '{"a":NaN}']) {
    assertError(await srv.publish(t.apiToken, body), 400, 'invalid_json');
  }
});

test('duplicate keys: 400 invalid_json', async () => {
  const body = `{"scope":{"type":"session","event_id":"${r.event_id}","session_id":"${r.session_id}"},"scope":{"type":"organization"},"payload":{"event":{"eventName":"a","data":{}}}}`;
  assertError(await srv.publish(t.apiToken, body), 400, 'invalid_json');
  const inner = `{"scope":{"type":"organization"},"payload":{"event":{"eventName":"a","data":{"k":1,"k":2}}}}`;
  assertError(await srv.publish(t.apiToken, inner), 400, 'invalid_json');
});

test('nesting deeper than 32: 400 invalid_json; shallow nesting is fine', async () => {
  const deep = '{"a":'.repeat(40) + '1' + '}'.repeat(40);
  const body = `{"scope":{"type":"organization"},"payload":{"event":{"eventName":"a","data":${deep}}}}`;
  assertError(await srv.publish(t.apiToken, body), 400, 'invalid_json');
  const arr = '['.repeat(40) + ']'.repeat(40);
  const body2 = `{"scope":{"type":"organization"},"payload":{"event":{"eventName":"a","data":{"x":${arr}}}}}`;
  assertError(await srv.publish(t.apiToken, body2), 400, 'invalid_json');
  const fine = '{"a":'.repeat(10) + '1' + '}'.repeat(10);
  const body3 = `{"scope":{"type":"organization"},"payload":{"event":{"eventName":"a","data":${fine}}}}`;
  assert.equal((await srv.publish(t.apiToken, body3)).status, 202);
});

// --- fields --------------------------------------------------------------------

const cases = [
  ['top level an array', [], 'invalid_type', ''],
  ['top level a string', 'str', 'invalid_type', ''],
  ['scope missing', { payload: { event: { eventName: 'a', data: {} } } }, 'missing_field', '/scope'],
  ['scope a string', { scope: 'session', payload: { event: { eventName: 'a', data: {} } } }, 'invalid_type', '/scope'],
  ['scope.type missing', { scope: {}, payload: { event: { eventName: 'a', data: {} } } }, 'missing_field', '/scope/type'],
  ['scope.type a number', { scope: { type: 5 }, payload: { event: { eventName: 'a', data: {} } } }, 'invalid_type', '/scope/type'],
  ['scope.type "room"', { scope: { type: 'room' }, payload: { event: { eventName: 'a', data: {} } } }, 'invalid_scope', '/scope/type'],
  ['scope.type "Session"', { scope: { type: 'Session' }, payload: { event: { eventName: 'a', data: {} } } }, 'invalid_scope', '/scope/type'],
  ['event scope without event_id', { scope: { type: 'event' }, payload: { event: { eventName: 'a', data: {} } } }, 'missing_field', '/scope/event_id'],
  ['session scope without event_id', { scope: { type: 'session', session_id: uuid() }, payload: { event: { eventName: 'a', data: {} } } }, 'missing_field', '/scope/event_id'],
  ['session scope without session_id', { scope: { type: 'session', event_id: uuid() }, payload: { event: { eventName: 'a', data: {} } } }, 'missing_field', '/scope/session_id'],
  ['event_id not a UUID', { scope: { type: 'event', event_id: 'abc' }, payload: { event: { eventName: 'a', data: {} } } }, 'invalid_uuid', '/scope/event_id'],
  ['event_id UUID with junk', { scope: { type: 'event', event_id: uuid() + 'x' }, payload: { event: { eventName: 'a', data: {} } } }, 'invalid_uuid', '/scope/event_id'],
  ['session_id not a UUID', { scope: { type: 'session', event_id: uuid(), session_id: 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz' }, payload: { event: { eventName: 'a', data: {} } } }, 'invalid_uuid', '/scope/session_id'],
  ['event_id a number', { scope: { type: 'event', event_id: 42 }, payload: { event: { eventName: 'a', data: {} } } }, 'invalid_type', '/scope/event_id'],
  ['session_id null', { scope: { type: 'session', event_id: uuid(), session_id: null }, payload: { event: { eventName: 'a', data: {} } } }, 'invalid_type', '/scope/session_id'],
  ['payload missing', { scope: { type: 'organization' } }, 'missing_field', '/payload'],
  ['payload.event missing', { scope: { type: 'organization' }, payload: {} }, 'missing_field', '/payload/event'],
  ['eventName missing', { scope: { type: 'organization' }, payload: { event: { data: {} } } }, 'missing_field', '/payload/event/eventName'],
  ['eventName empty', { scope: { type: 'organization' }, payload: { event: { eventName: '', data: {} } } }, 'invalid_event_name', '/payload/event/eventName'],
  ['eventName 129 bytes', { scope: { type: 'organization' }, payload: { event: { eventName: 'a'.repeat(129), data: {} } } }, 'invalid_event_name', '/payload/event/eventName'],
  ['eventName with a space', { scope: { type: 'organization' }, payload: { event: { eventName: 'a b', data: {} } } }, 'invalid_event_name', '/payload/event/eventName'],
  ['eventName with "#"', { scope: { type: 'organization' }, payload: { event: { eventName: 'a#b', data: {} } } }, 'invalid_event_name', '/payload/event/eventName'],
  ['eventName non-ASCII', { scope: { type: 'organization' }, payload: { event: { eventName: 'café', data: {} } } }, 'invalid_event_name', '/payload/event/eventName'],
  ['data missing', { scope: { type: 'organization' }, payload: { event: { eventName: 'a' } } }, 'missing_field', '/payload/event/data'],
  ['data an array', { scope: { type: 'organization' }, payload: { event: { eventName: 'a', data: [1] } } }, 'invalid_type', '/payload/event/data'],
  ['data a string', { scope: { type: 'organization' }, payload: { event: { eventName: 'a', data: 'x' } } }, 'invalid_type', '/payload/event/data'],
  ['data null', { scope: { type: 'organization' }, payload: { event: { eventName: 'a', data: null } } }, 'invalid_type', '/payload/event/data'],
];
for (const [name, body, code, pointer] of cases) {
  test(`422 ${code} ${pointer || '""'}: ${name}`, async () => {
    for (const p of PATHS) {
      assertError(await srv.publish(t.apiToken, JSON.stringify(body), { path: p }), 422, code, pointer);
    }
  });
}

test('credential, media-type, size and JSON errors are the same on /api/v1/publish', async () => {
  const p = '/api/v1/publish';
  assertError(await srv.http('POST', p, { body: ok() }), 401, 'missing_token');
  assertError(await srv.publish('Bearer nope', ok(), { path: p }), 401, 'invalid_token');
  assertError(await srv.publish(t.apiToken, ok(), { path: p, headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type');
  assertError(await srv.publish(t.apiToken, JSON.stringify(ok({ pad: 'x'.repeat(70000) })), { path: p }), 413, 'payload_too_large');
  assertError(await srv.publish(t.apiToken, '{"a":1,"a":2}', { path: p }), 400, 'invalid_json');
  assertError(await srv.publish(t.apiToken, publishBody({ type: 'organization' }, 'big', { pad: 'x'.repeat(33000) }), { path: p }), 413, 'data_too_large', '/payload/event/data');
});

test('eventName of exactly 128 bytes and every allowed character is accepted', async () => {
  for (const name of ['a'.repeat(128), 'AZaz09-_.:/@', 'room/chat:message@v1']) {
    const res = await srv.publish(t.apiToken, publishBody({ type: 'organization' }, name, {}));
    assert.equal(res.status, 202, `${name}: ${res.text}`);
  }
});

test('data over 32768 bytes: 413 data_too_large /payload/event/data', async () => {
  const res = await srv.publish(t.apiToken, publishBody({ type: 'organization' }, 'big', { pad: 'x'.repeat(33000) }));
  assertError(res, 413, 'data_too_large', '/payload/event/data');
});

test('data just under 32768 bytes is accepted', async () => {
  const data = JSON.stringify({ pad: 'x'.repeat(32768 - 12) }); // {"pad":"..."} = 10 + n bytes
  assert.ok(Buffer.byteLength(data) <= 32768);
  const res = await srv.publish(t.apiToken, `{"scope":{"type":"organization"},"payload":{"event":{"eventName":"big","data":${data}}}}`);
  assert.equal(res.status, 202, res.text);
});

// --- order of the checks -------------------------------------------------------

test('check order: path before method before credentials', async () => {
  assertError(await srv.http('DELETE', '/nope'), 404, 'not_found');
  assertError(await srv.http('GET', '/api/v1/pub_subs'), 405, 'method_not_allowed');
});

test('check order: credentials before Content-Type, size and JSON', async () => {
  const res = await srv.http('POST', '/api/v1/pub_subs', { headers: { 'Content-Type': 'text/plain' }, body: 'x'.repeat(70000) });
  assertError(res, 401, 'missing_token');
  const res2 = await srv.http('POST', '/api/v1/pub_subs', { headers: { Authorization: 'bad', 'Content-Type': 'text/plain' }, body: '{' });
  assertError(res2, 401, 'invalid_token');
});

test('check order: Content-Type before size, size before JSON, JSON before fields', async () => {
  const big = '{' + 'x'.repeat(70000);
  assertError(await srv.publish(t.apiToken, big, { headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type');
  assertError(await srv.publish(t.apiToken, big), 413, 'payload_too_large');
  assertError(await srv.publish(t.apiToken, '{"scope":'), 400, 'invalid_json');
  assertError(await srv.publish(t.apiToken, '{"scope":1,"scope":2}'), 400, 'invalid_json');
});

// --- delivery of data byte for byte -----------------------------------------------

test('data is forwarded byte-exact (0.1, -0, 1.0, 12345678901234567890, escapes)', async () => {
  const rr = room();
  const c = await srv.join(t, rr, { subscribe: ['exact'] });
  try {
    const data = '{"n":0.1,"z":-0,"f":1.0,"big":12345678901234567890,"e":1E+2,"u":"\\u00e9\\n","s":"é😀","a":[1,{"b":null,"t":true}]}';
    const body = `{"scope":{"type":"session","event_id":"${rr.event_id}","session_id":"${rr.session_id}"},"payload":{"event":{"eventName":"exact","data":${data}}}}`;
    const res = await srv.publish(t.apiToken, body);
    assert.equal(res.status, 202, res.text);
    const ev = await c.waitFor((m) => m.type === 'event' && m.eventName === 'exact');
    const raw = c.raw[c.messages.indexOf(ev)];
    assert.ok(raw.includes(data), `raw frame should contain data unchanged:\n  want ${data}\n  got  ${raw}`);
    assert.equal(ev.message_id, res.json.message_id);
  } finally {
    await c.close();
  }
});

test('a publish delivers to the subscriber through both endpoints', async () => {
  const rr = room();
  const c = await srv.join(t, rr, { subscribe: ['both'] });
  try {
    for (const p of PATHS) {
      const res = await srv.publish(`Bearer ${t.apiToken}`, publishBody({ type: 'session', ...rr }, 'both', { via: p }), { path: p });
      assert.equal(res.status, 202);
      await c.waitFor((m) => m.type === 'event' && m.data.via === p);
    }
  } finally {
    await c.close();
  }
});

test('the server keeps serving after many bad requests (keep-alive reuse)', async () => {
  const req =
    `POST /api/v1/pub_subs HTTP/1.1\r\nHost: x\r\nAuthorization: ${t.apiToken}\r\nContent-Type: application/json\r\nContent-Length: 1\r\n\r\n{` +
    `GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
  const raw = await srv.rawHttp(req, { untilClose: true, timeoutMs: 3000 });
  assert.match(raw, /^HTTP\/1\.1 400/);
  const health = await srv.http('GET', '/healthz');
  assert.equal(health.status, 200);
});

test('pipelined requests on one connection: exact response heads, nothing carried over', async () => {
  // Four requests in one write. Each response head is compared byte for byte;
  // the last request has no Authorization header and must not inherit the
  // one of the requests before it on the same connection.
  const body = JSON.stringify(ok());
  const post = (auth, b) =>
    `POST /api/v1/pub_subs HTTP/1.1\r\nHost: x\r\n${auth ? `Authorization: Bearer ${t.apiToken}\r\n` : ''}` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`;
  const req = post(true, body) + 'HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n' + post(true, '{"scope":') + post(false, body);
  const raw = await srv.rawHttp(req, { untilClose: true, timeoutMs: 3000 });
  const ids = raw
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'ID')
    .replace(/"offset":\d+,"epoch":"[0-9a-f]{16}"/g, '"offset":N,"epoch":"E"');
  const health = ids.indexOf('HTTP/1.1 200 OK');
  const len202 = /Content-Length: (\d+)/.exec(ids)[1];
  const head200 = ids.slice(health, ids.indexOf('\r\n\r\n', health) + 4);
  assert.equal(
    ids.slice(0, health).replace(`Content-Length: ${len202}`, 'Content-Length: LEN'),
    'HTTP/1.1 202 Accepted\r\nServer: hubbub\r\nContent-Type: application/json\r\nContent-Length: LEN\r\n\r\n' +
      '{"message_id":"ID","offset":N,"epoch":"E"}',
  );
  assert.match(head200, /^HTTP\/1\.1 200 OK\r\nServer: hubbub\r\nContent-Type: application\/json\r\nContent-Length: \d+\r\nCache-Control: no-store\r\n\r\n$/);
  const rest = ids.slice(health + head200.length);
  const m = /^(HTTP\/1\.1 400 Bad Request\r\nServer: hubbub\r\nContent-Type: application\/json\r\nContent-Length: (\d+)\r\n\r\n)/.exec(rest);
  assert.ok(m, rest);
  const errBody = rest.slice(m[1].length, m[1].length + Number(m[2]));
  assert.equal(JSON.parse(errBody).error.code, 'invalid_json');
  const last = rest.slice(m[1].length + Number(m[2]));
  const m2 =
    /^HTTP\/1\.1 401 Unauthorized\r\nServer: hubbub\r\nContent-Type: application\/json\r\nContent-Length: (\d+)\r\nWWW-Authenticate: Bearer\r\nConnection: close\r\n\r\n(.*)$/s.exec(
      last,
    );
  assert.ok(m2, last);
  assert.equal(m2[2].length, Number(m2[1]));
  assert.equal(JSON.parse(m2[2]).error.code, 'missing_token');
});
