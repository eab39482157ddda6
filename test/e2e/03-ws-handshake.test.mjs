// The WebSocket handshake: every refusal happens before any 101, with an HTTP
// error and a JSON body; offline-minted JWTs are checked strictly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startServer, room, uuid, nowS, mintJwt, parseHttpResponse, UUID_RE } from './harness.mjs';

let srv, t, t2, other;

before(async () => {
  srv = await startServer();
  t = await srv.tenant();
  t2 = await srv.siblingPlugin(t); // same organization, other plugin
  other = await srv.tenant(); // another organization
});
after(async () => {
  await srv?.stop();
});

/** Hand-written upgrade request; returns the parsed response. */
async function handshake(target, headers = {}) {
  const h = {
    Host: `127.0.0.1:${srv.port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  let req = `GET ${target} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(h)) if (v !== undefined) req += `${k}: ${v}\r\n`;
  const raw = await srv.rawHttp(req + '\r\n', { timeoutMs: 3000 });
  return parseHttpResponse(raw);
}

const wsPath = (token) => `/api/v1/ws?token=${encodeURIComponent(token)}`;

function assertRefused(res, status, code) {
  assert.notEqual(res.status, 101, 'must not upgrade');
  assert.equal(res.status, status, `status: ${res.raw.slice(0, 400)}`);
  assert.ok(res.json && res.json.error, `JSON error body: ${res.body}`);
  assert.equal(res.json.error.code, code, res.body);
}

test('a valid offline-minted token upgrades (101 with the right Sec-WebSocket-Accept)', async () => {
  const r = room();
  const tok = mintJwt(t.signingSecret, srv.claims(t, r));
  const ws = await srv.rawWs(tok);
  try {
    assert.equal(ws.response.status, 101);
    assert.ok(ws.acceptOk, 'Sec-WebSocket-Accept = base64(sha1(key + GUID))');
    const welcome = await ws.waitJson((m) => m.type === 'welcome');
    assert.equal(welcome.room.session_id, r.session_id);
  } finally {
    ws.destroy();
  }
});

test('browser-style "Connection: keep-alive, Upgrade" and an Origin header are accepted', async () => {
  const tok = mintJwt(t.signingSecret, srv.claims(t, room()));
  const ws = await srv.rawWs(tok, { headers: { Connection: 'keep-alive, Upgrade', Origin: 'http://localhost:3000', 'User-Agent': 'Mozilla/5.0' } });
  try {
    await ws.waitJson((m) => m.type === 'welcome');
  } finally {
    ws.destroy();
  }
});

test('a typ-less and a kid-carrying HS256 header are accepted', async () => {
  for (const header of [{ alg: 'HS256' }, { alg: 'HS256', typ: 'JWT', kid: 'k1' }]) {
    const c = await srv.connect(mintJwt(t.signingSecret, srv.claims(t, room()), header));
    await c.close();
  }
});

test('the token parameter is percent-decoded: escapes anywhere, bad or cut escapes refused', async () => {
  const tok = mintJwt(t.signingSecret, srv.claims(t, room()));
  // every character escaped (either hex case), then only the dots and the last character
  const all = [...tok].map((ch, i) => '%' + ch.charCodeAt(0).toString(16)[i % 2 ? 'toUpperCase' : 'toLowerCase']().padStart(2, '0')).join('');
  const some = tok.replaceAll('.', '%2E').slice(0, -1) + '%' + tok.charCodeAt(tok.length - 1).toString(16);
  for (const q of [all, some, `${tok.slice(0, 10)}%${tok.charCodeAt(10).toString(16)}${tok.slice(11)}`]) {
    const res = await handshake(`/api/v1/ws?a=b&token=${q}&c=d`);
    assert.equal(res.status, 101, `token ${q.slice(0, 40)}: ${res.raw.slice(0, 200)}`);
  }
  for (const q of [`${tok}%`, `${tok}%4`, `${tok.slice(0, 20)}%zz${tok.slice(20)}`, `%${tok}`, `${tok}%G1`]) {
    const res = await handshake(`/api/v1/ws?token=${q}`);
    assertRefused(res, 401, 'invalid_token');
  }
});

test('no token parameter: 401 missing_token', async () => {
  assertRefused(await handshake('/api/v1/ws'), 401, 'missing_token');
  assertRefused(await handshake('/api/v1/ws?token='), 401, 'missing_token');
});

test('garbage tokens: 401 invalid_token', async () => {
  for (const tok of ['garbage', 'a.b.c', 'eyJhbGciOiJIUzI1NiJ9..', t.apiToken, '...', 'x'.repeat(3000)]) {
    assertRefused(await handshake(wsPath(tok)), 401, 'invalid_token');
  }
});

test('expired token: 401 token_expired', async () => {
  const tok = mintJwt(t.signingSecret, srv.claims(t, room(), { iat: nowS() - 600, exp: nowS() - 120 }));
  assertRefused(await handshake(wsPath(tok)), 401, 'token_expired');
});

test('exp within the 30 s leeway is still accepted', async () => {
  const c = await srv.connect(mintJwt(t.signingSecret, srv.claims(t, room(), { exp: nowS() - 5 })));
  await c.close();
});

test('forged signature: 401 invalid_token', async () => {
  const good = mintJwt(t.signingSecret, srv.claims(t, room()));
  const wrongKey = mintJwt('not-the-secret', srv.claims(t, room()));
  const parts = good.split('.');
  const sig = Buffer.from(parts[2], 'base64url');
  sig[0] ^= 1;
  const flipped = `${parts[0]}.${parts[1]}.${sig.toString('base64url')}`;
  // Same signature, different claims: the payload was tampered with.
  const claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
  claims.session_id = uuid();
  const tampered = `${parts[0]}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${parts[2]}`;
  const nosig = `${parts[0]}.${parts[1]}.`;
  for (const tok of [wrongKey, flipped, tampered, nosig]) assertRefused(await handshake(wsPath(tok)), 401, 'invalid_token');
});

test('a token signed with another plugin\'s secret: 401 invalid_token', async () => {
  const tok = mintJwt(t2.signingSecret, srv.claims(t, room()));
  assertRefused(await handshake(wsPath(tok)), 401, 'invalid_token');
});

test('alg none / HS512 / HS384 / RS256: 401 invalid_token', async () => {
  const c = srv.claims(t, room());
  const toks = [
    mintJwt(t.signingSecret, c, { alg: 'none', typ: 'JWT' }),
    mintJwt(t.signingSecret, c, { alg: 'None' }),
    mintJwt(t.signingSecret, c, { alg: 'HS512', typ: 'JWT' }),
    mintJwt(t.signingSecret, c, { alg: 'HS384' }),
    mintJwt(t.signingSecret, c, { alg: 'RS256' }),
    mintJwt(t.signingSecret, c, { typ: 'JWT' }),
  ];
  for (const tok of toks) assertRefused(await handshake(wsPath(tok)), 401, 'invalid_token');
});

test('wrong organization claim: 401 invalid_token', async () => {
  const tok = mintJwt(t.signingSecret, srv.claims(t, room(), { organization_id: other.org.id }));
  assertRefused(await handshake(wsPath(tok)), 401, 'invalid_token');
  const tok2 = mintJwt(t.signingSecret, srv.claims(t, room(), { organization_id: uuid() }));
  assertRefused(await handshake(wsPath(tok2)), 401, 'invalid_token');
});

test('unknown plugin: 401 invalid_token', async () => {
  const tok = mintJwt(t.signingSecret, srv.claims(t, room(), { plugin_id: uuid() }));
  assertRefused(await handshake(wsPath(tok)), 401, 'invalid_token');
});

test('missing or malformed claims: 401 invalid_token', async () => {
  const r = room();
  const variants = [
    { exp: undefined },
    { sub: undefined },
    { sub: '' },
    { sub: 'x'.repeat(129) },
    { event_id: undefined },
    { session_id: 'not-a-uuid' },
    { organization_id: undefined },
    { plugin_id: undefined },
    { exp: 'tomorrow' },
    { scopes: ['room'] },
  ];
  for (const v of variants) {
    const claims = srv.claims(t, r, v);
    for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
    assertRefused(await handshake(wsPath(mintJwt(t.signingSecret, claims))), 401, 'invalid_token');
  }
});

test('Sec-WebSocket-Version 12: 426 upgrade_required with Sec-WebSocket-Version: 13', async () => {
  const tok = mintJwt(t.signingSecret, srv.claims(t, room()));
  const res = await handshake(wsPath(tok), { 'Sec-WebSocket-Version': '12' });
  assertRefused(res, 426, 'upgrade_required');
  assert.equal(res.headers['sec-websocket-version'], '13');
});

test('missing Sec-WebSocket-Key: 400 bad_request', async () => {
  const tok = mintJwt(t.signingSecret, srv.claims(t, room()));
  assertRefused(await handshake(wsPath(tok), { 'Sec-WebSocket-Key': undefined }), 400, 'bad_request');
});

test('a plain GET without Upgrade: no 101, a 4xx JSON error', async () => {
  const tok = mintJwt(t.signingSecret, srv.claims(t, room()));
  const res = await handshake(wsPath(tok), { Upgrade: undefined, Connection: undefined });
  assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
  assert.ok(res.json?.error?.code, res.body);
});

test('refused handshakes do not leak room traffic', async () => {
  // An expired client never sees a publish that happens while it tries.
  const r = room();
  const tok = mintJwt(t.signingSecret, srv.claims(t, r, { exp: nowS() - 120 }));
  const res = await handshake(wsPath(tok));
  assert.equal(res.status, 401);
  assert.ok(!/"type":"(welcome|event)"/.test(res.raw), 'no protocol message in a refused answer');
});

test('the ws client sees the welcome with a fresh connection_id each time', async () => {
  const tok = mintJwt(t.signingSecret, srv.claims(t, room()));
  const a = await srv.connect(tok);
  const b = await srv.connect(tok);
  try {
    assert.match(a.welcome.connection_id, UUID_RE);
    assert.notEqual(a.welcome.connection_id, b.welcome.connection_id);
  } finally {
    await a.close();
    await b.close();
  }
});
