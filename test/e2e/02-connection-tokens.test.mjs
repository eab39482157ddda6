// POST /api/v1/connection_tokens: minting, the claims of the JWT it returns,
// and every error case.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, uuid, assertError, decodeJwt, verifyJwt, nowS } from './harness.mjs';

let srv, t;
const P = '/api/v1/connection_tokens';

before(async () => {
  srv = await startServer();
  t = await srv.tenant();
});
after(async () => {
  await srv?.stop();
});

const mint = (body, auth = `Bearer ${t.apiToken}`, headers = {}) =>
  srv.http('POST', P, {
    headers: { ...(auth ? { Authorization: auth } : {}), 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

test('201 {token, expires_at}: an HS256 JWT with the contract claims', async () => {
  const r = room();
  const before = nowS();
  const res = await mint({ ...r, user_id: 'alice', scopes: ['session', 'event'], ttl: 120 });
  assert.equal(res.status, 201, res.text);
  assert.match(res.headers['content-type'] || '', /^application\/json/);
  const { token, expires_at } = res.json;
  assert.equal(typeof token, 'string');
  assert.equal(typeof expires_at, 'number');
  const { header, claims } = decodeJwt(token);
  assert.equal(header.alg, 'HS256');
  assert.ok(verifyJwt(token, t.signingSecret), 'signed with the plugin signing secret');
  assert.equal(claims.organization_id, t.org.id);
  assert.equal(claims.plugin_id, t.plugin.id);
  assert.equal(claims.event_id, r.event_id);
  assert.equal(claims.session_id, r.session_id);
  assert.equal(claims.sub, 'alice');
  assert.deepEqual([...claims.scopes].sort(), ['event', 'session']);
  assert.equal(claims.exp, expires_at);
  assert.ok(expires_at >= before + 120 && expires_at <= nowS() + 121, `expires_at ${expires_at} ~ now+120`);
});

test('plain (non-Bearer) Authorization works too', async () => {
  const res = await mint({ ...room(), user_id: 'bob' }, t.apiToken);
  assert.equal(res.status, 201, res.text);
});

test('defaults: ttl 3600 and scopes ["session"]', async () => {
  const res = await mint({ ...room(), user_id: 'carol' });
  assert.equal(res.status, 201, res.text);
  const { claims } = decodeJwt(res.json.token);
  assert.ok(Math.abs(claims.exp - (nowS() + 3600)) <= 5, `exp ${claims.exp}`);
  assert.deepEqual(claims.scopes ?? ['session'], ['session']);
});

test('ttl bounds: 1 and 86400 accepted', async () => {
  for (const ttl of [1, 86400]) {
    const res = await mint({ ...room(), user_id: 'u', ttl });
    assert.equal(res.status, 201, `${ttl}: ${res.text}`);
  }
});

test('the minted token connects into its room with its user and scopes', async () => {
  const r = room();
  const res = await mint({ ...r, user_id: 'dave', scopes: ['session', 'organization'] });
  const c = await srv.connect(res.json.token);
  try {
    assert.equal(c.welcome.room.organization_id, t.org.id);
    assert.equal(c.welcome.room.plugin_id, t.plugin.id);
    assert.equal(c.welcome.room.event_id, r.event_id);
    assert.equal(c.welcome.room.session_id, r.session_id);
    assert.equal(c.welcome.user_id, 'dave');
    assert.deepEqual([...c.welcome.scopes].sort(), ['organization', 'session']);
    assert.equal(c.welcome.expires_at, res.json.expires_at);
  } finally {
    await c.close();
  }
});

const bad = [
  ['ttl a string', { ttl: '60' }, 'invalid_type', '/ttl'],
  ['ttl a float', { ttl: 1.5 }, 'invalid_type', '/ttl'],
  ['ttl 0', { ttl: 0 }, 'invalid_value', '/ttl'],
  ['ttl negative', { ttl: -5 }, 'invalid_value', '/ttl'],
  ['ttl 86401', { ttl: 86401 }, 'invalid_value', '/ttl'],
  ['unknown scope', { scopes: ['room'] }, 'invalid_scope', '/scopes/0'],
  ['unknown scope second', { scopes: ['session', 'Event'] }, 'invalid_scope', '/scopes/1'],
  ['event_id missing', { event_id: undefined }, 'missing_field', '/event_id'],
  ['session_id missing', { session_id: undefined }, 'missing_field', '/session_id'],
  ['event_id not a UUID', { event_id: 'nope' }, 'invalid_uuid', '/event_id'],
  ['session_id not a UUID', { session_id: '1234' }, 'invalid_uuid', '/session_id'],
  ['event_id a number', { event_id: 7 }, 'invalid_type', '/event_id'],
  ['user_id not a string', { user_id: 5 }, 'invalid_type', '/user_id'],
  ['user_id 129 bytes', { user_id: 'u'.repeat(129) }, 'invalid_value', '/user_id'],
  ['user_id empty', { user_id: '' }, 'invalid_value', '/user_id'],
  ['scopes not an array', { scopes: 'session' }, 'invalid_type', '/scopes'],
];
for (const [name, patch, code, pointer] of bad) {
  test(`422 ${code} ${pointer}: ${name}`, async () => {
    const body = { ...room(), user_id: 'u', ...patch };
    for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
    assertError(await mint(body), 422, code, pointer);
  });
}

test('top level not an object: 422 invalid_type ""', async () => {
  assertError(await mint('[]'), 422, 'invalid_type', '');
});

test('malformed JSON: 400 invalid_json', async () => {
  assertError(await mint('{"event_id":'), 400, 'invalid_json');
});

test('no Authorization: 401 missing_token', async () => {
  assertError(await mint({ ...room() }, null), 401, 'missing_token');
});

test('unknown API token: 401 invalid_token', async () => {
  assertError(await mint({ ...room() }, 'Bearer hb_unknown_' + uuid()), 401, 'invalid_token');
});

test('Content-Type not JSON: 415', async () => {
  assertError(await mint(JSON.stringify(room()), `Bearer ${t.apiToken}`, { 'Content-Type': 'text/plain' }), 415, 'unsupported_media_type');
});

test('GET: 405 with Allow: POST', async () => {
  const res = await srv.http('GET', P);
  assertError(res, 405, 'method_not_allowed');
  assert.match(res.headers.allow || '', /POST/);
});

test('a token minted for one plugin names that plugin only', async () => {
  const t2 = await srv.siblingPlugin(t);
  const res = await mint({ ...room(), user_id: 'x' }, `Bearer ${t2.apiToken}`);
  assert.equal(res.status, 201, res.text);
  const { claims } = decodeJwt(res.json.token);
  assert.equal(claims.plugin_id, t2.plugin.id);
  assert.ok(verifyJwt(res.json.token, t2.signingSecret));
  assert.ok(!verifyJwt(res.json.token, t.signingSecret));
});
