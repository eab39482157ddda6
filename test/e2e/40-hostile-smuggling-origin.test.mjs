// Hostile catalogue, request smuggling and cross-site WebSocket hijacking:
// H108-H115. Exact answers, then the server still serves and the observer
// lost nothing.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, mintJwt } from './harness.mjs';
import { hostileSuite, rawExchange, assertOneError, room, uuid } from './hostile-lib.mjs';

const ctx = hostileSuite();
const CRLF = '\r\n';

test('H108 an upgrade request and the first WebSocket frame in one write: the frame is not lost', async () => {
  const { encodeFrame } = await import('./harness.mjs');
  const tok = await ctx.srv.connToken(ctx.t, { ...room() });
  const up = Buffer.from(
    `GET /api/v1/ws?token=${tok} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const ex = await rawExchange(ctx.srv.port, Buffer.concat([up, encodeFrame({ payload: '{"type":"ping","id":"first"}' })]), { timeoutMs: 800 });
  assert.match(ex.raw, /^HTTP\/1\.1 101 /);
  assert.ok(ex.raw.includes('{"type":"pong","id":"first"}'), ex.raw.slice(-200));
  await ctx.alive();
});

test('H109 Transfer-Encoding other than chunked (gzip; chunked, gzip): 400 bad_request', async () => {
  for (const te of ['gzip', 'chunked, gzip']) {
    const ex = await rawExchange(
      ctx.srv.port,
      ['POST /api/v1/pub_subs HTTP/1.1', 'Host: a', `Authorization: Bearer ${ctx.t.apiToken}`, 'Content-Type: application/json', `Transfer-Encoding: ${te}`].join(CRLF) + CRLF + CRLF + '2\r\n{}\r\n0\r\n\r\n',
    );
    assertOneError(ex, 400, 'bad_request');
    assert.ok(ex.closed);
  }
  await ctx.alive();
});

test('H110 duplicate Transfer-Encoding headers: 400 bad_request', async () => {
  const ex = await rawExchange(
    ctx.srv.port,
    ['POST /api/v1/pub_subs HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'].join(CRLF) + CRLF + CRLF + '0\r\n\r\n',
  );
  assertOneError(ex, 400, 'bad_request');
  await ctx.alive();
});

test('H111 a request hidden in a chunked GET body is body, never a request', async () => {
  const hidden = 'GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n';
  const bytes =
    'GET /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n' +
    `${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n` +
    'GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';
  const ex = await rawExchange(ctx.srv.port, bytes, { timeoutMs: 2000 });
  assert.ok(!ex.raw.includes('hubbub_'), 'the hidden /metrics request was answered');
  // Either the body is read and dropped (two answers: the GET and the one
  // after the body) or refused like a Content-Length body (413, closed; H112).
  const st = ex.responses.map((r) => r.status);
  assert.ok(JSON.stringify(st) === '[200,200]' || JSON.stringify(st) === '[413]', `${st}: ${ex.raw.slice(0, 300)}`);
  await ctx.alive();
});

test('H112 a request hidden in a Content-Length GET body is body, never a request', async () => {
  const hidden = 'GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n';
  const bytes = `GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`;
  const ex = await rawExchange(ctx.srv.port, bytes, { timeoutMs: 2000 });
  assert.ok(!ex.raw.includes('hubbub_'), 'the hidden /metrics request was answered');
  assert.deepEqual(ex.responses.map((r) => r.status), [413], ex.raw.slice(0, 300));
  assert.equal(ex.responses[0].json?.error?.code, 'payload_too_large');
  assert.ok(ex.closed);
  await ctx.alive();
});

// --- Origin allowlists (own servers: the allowlist is global) ---------------

const own = [];
after(async () => {
  for (const s of own) await s.stop().catch(() => {});
});

async function handshake(srv, token, origin) {
  try {
    const c = await srv.connect(token, { origin });
    await c.close();
    return 101;
  } catch (e) {
    if (e.status === 403) assert.equal(e.json?.error?.code, 'origin_forbidden');
    return e.status;
  }
}

test('H113 global allowed_origins: evil, missing, look-alike and suffix Origins get 403 origin_forbidden', async () => {
  const srv = await startServer({ threads: 1, config: { allowed_origins: 'https://app.example.com http://localhost:3000' } });
  own.push(srv);
  const t = await srv.tenant();
  const tok = mintJwt(t.signingSecret, srv.claims(t, room()));
  assert.equal(await handshake(srv, tok, 'https://app.example.com'), 101);
  assert.equal(await handshake(srv, tok, 'http://localhost:3000'), 101);
  for (const bad of ['https://evil.example', 'https://app.example.com.evil.example', 'https://app.example.com:443', 'http://app.example.com', 'https://app.example.co', 'null', 'https://app.example.com/']) {
    assert.equal(await handshake(srv, tok, bad), 403, bad);
  }
  assert.equal(await handshake(srv, tok, undefined), 403, 'no Origin at all');
  assert.equal((await srv.http('GET', '/healthz')).status, 200);
});

test("H114 a plugin's Origin allowlist applies to its tokens only", async () => {
  const srv = await startServer({ threads: 1 });
  own.push(srv);
  const t = await srv.tenant();
  const locked = await srv.cli(['plugin', 'create', '--org', t.org.id, `locked-${uuid().slice(0, 6)}`, '--origins', 'https://app.example.com']);
  const open = mintJwt(t.signingSecret, srv.claims(t, room()));
  const lockedTok = mintJwt(locked.signing_secret, { ...srv.claims(t, room()), plugin_id: locked.id });
  assert.equal(await handshake(srv, lockedTok, 'https://app.example.com'), 101);
  assert.equal(await handshake(srv, lockedTok, 'https://evil.example'), 403);
  assert.equal(await handshake(srv, lockedTok, undefined), 403);
  assert.equal(await handshake(srv, open, 'https://evil.example'), 101, 'a plugin without a list accepts any Origin');
});

test('H115 a forbidden Origin is refused before the token is used: no 101, nothing subscribed', async () => {
  const srv = await startServer({ threads: 1, config: { allowed_origins: 'https://app.example.com' } });
  own.push(srv);
  const t = await srv.tenant();
  const r = room();
  const tok = mintJwt(t.signingSecret, srv.claims(t, r));
  const ex = await rawExchange(
    srv.port,
    `GET /api/v1/ws?token=${tok} HTTP/1.1\r\nHost: a\r\nOrigin: https://evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  assertOneError(ex, 403, 'origin_forbidden');
  assert.ok(ex.closed);
  const m = await srv.http('GET', '/metrics');
  assert.match(m.text, /^hubbub_websockets_open 0$/m);
});

test('H125 admin API: off (404) without admin_token_sha256; with it, API tokens, the hash itself and near misses are 401', async () => {
  const crypto = await import('node:crypto');
  const admin = 'hba_' + crypto.randomBytes(16).toString('hex');
  const sha = crypto.createHash('sha256').update(admin).digest('hex');
  const get = (srv, auth) => srv.http('GET', '/api/v1/admin/organizations', { headers: auth ? { Authorization: auth } : {} });

  const off = await startServer({ threads: 1 });
  own.push(off);
  const offRes = await get(off, `Bearer ${admin}`);
  assert.equal(offRes.status, 404, offRes.text);
  assert.equal(offRes.json?.error?.code, 'not_found');

  const srv = await startServer({ threads: 1, config: { admin_token_sha256: sha } });
  own.push(srv);
  const t = await srv.tenant();
  assert.equal((await get(srv, `Bearer ${admin}`)).status, 200);
  for (const [what, auth, code] of [
    ['a near miss', `Bearer ${admin}x`, 'invalid_token'],
    ['a prefix', `Bearer ${admin.slice(0, -1)}`, 'invalid_token'],
    ['an API token', `Bearer ${t.apiToken}`, 'invalid_token'],
    ['the configured hash itself', `Bearer ${sha}`, 'invalid_token'],
    ['nothing', null, 'missing_token'],
  ]) {
    const r = await get(srv, auth);
    assert.equal(r.status, 401, `${what}: ${r.text}`);
    assert.equal(r.json?.error?.code, code, what);
  }
  // And the admin token is not an API token.
  const pub = await srv.publish(`Bearer ${admin}`, { scope: { type: 'organization' }, payload: { event: { eventName: 'x', data: {} } } });
  assert.equal(pub.status, 401);
});
