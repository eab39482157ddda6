// Admin CLI against a running server, API-token revocation (effective within
// 1 s), expired connection tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, nowS, mintJwt, poll, publishBody, assertError, parseHttpResponse, UUID_RE, STORE_CHANGE_WAIT_MS } from './harness.mjs';

let srv;

before(async () => {
  srv = await startServer();
});
after(async () => {
  await srv?.stop();
});

test('CLI: org, plugin and token create print the documented JSON', async () => {
  const org = await srv.cli(['org', 'create', 'acme-cli']);
  assert.match(org.id, UUID_RE);
  assert.equal(org.name, 'acme-cli');
  const plugin = await srv.cli(['plugin', 'create', '--org', 'acme-cli', 'polls']);
  assert.match(plugin.id, UUID_RE);
  assert.equal(plugin.name, 'polls');
  assert.equal(plugin.organization_id, org.id);
  assert.equal(typeof plugin.signing_secret, 'string');
  assert.ok(plugin.signing_secret.length >= 32);
  // ORG and PLUGIN by name, then by UUID.
  const byName = await srv.cli(['token', 'create', '--org', 'acme-cli', '--plugin', 'polls', '--name', 'ci']);
  const byId = await srv.cli(['token', 'create', '--org', org.id, '--plugin', plugin.id]);
  for (const tok of [byName, byId]) {
    assert.match(tok.id, UUID_RE);
    assert.equal(typeof tok.token, 'string');
    assert.equal(tok.organization_id, org.id);
    assert.equal(tok.plugin_id, plugin.id);
  }
  assert.notEqual(byName.token, byId.token);
  // Tokens work immediately against the running server.
  for (const tok of [byName, byId]) {
    const res = await srv.publish(tok.token, publishBody({ type: 'organization' }, 'x', {}));
    assert.equal(res.status, 202, res.text);
  }
});

test('CLI: token list shows tokens without their secret', async () => {
  const t = await srv.tenant();
  const { tokens } = await srv.cli(['token', 'list']);
  assert.ok(Array.isArray(tokens));
  const mine = tokens.find((x) => x.id === t.tokenId);
  assert.ok(mine, 'the new token is listed');
  assert.equal(mine.organization_id, t.org.id);
  assert.equal(mine.plugin_id, t.plugin.id);
  assert.ok(mine.created_at, 'created_at');
  assert.equal(mine.revoked_at, null);
  assert.ok(!JSON.stringify(tokens).includes(t.apiToken), 'the secret token is never listed');
});

test('CLI: errors exit non-zero (unknown org, unknown plugin, unknown token id)', async () => {
  assert.notEqual((await srv.cliRaw(['plugin', 'create', '--org', 'no-such-org', 'p'])).code, 0);
  const t = await srv.tenant();
  assert.notEqual((await srv.cliRaw(['token', 'create', '--org', t.org.id, '--plugin', 'no-such-plugin'])).code, 0);
  assert.notEqual((await srv.cliRaw(['token', 'revoke', '00000000-0000-4000-8000-000000000000'])).code, 0);
});

test('a plugin of one org cannot be used with another org', async () => {
  const a = await srv.tenant();
  const b = await srv.tenant();
  const r = await srv.cliRaw(['token', 'create', '--org', a.org.id, '--plugin', b.plugin.id]);
  assert.notEqual(r.code, 0, 'token for a foreign plugin must be refused');
});

test('a revoked API token is refused by the running server once it reloads the store', async () => {
  const t = await srv.tenant();
  const r = room();
  assert.equal((await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'x', {}))).status, 202);
  const revoked = await srv.cli(['token', 'revoke', t.tokenId]);
  assert.equal(revoked.id, t.tokenId);
  assert.equal(revoked.revoked, true);
  const res = await poll(async () => {
    const x = await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'x', {}));
    return x.status === 401 ? x : null;
  }, STORE_CHANGE_WAIT_MS, 'publish refused after revoke', 50);
  assertError(res, 401, 'invalid_token');
  // Minting connection tokens with it is refused too.
  const ct = await srv.http('POST', '/api/v1/connection_tokens', {
    headers: { Authorization: `Bearer ${t.apiToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(r),
  });
  assertError(ct, 401, 'invalid_token');
  // And the list shows when.
  const { tokens } = await srv.cli(['token', 'list']);
  assert.ok(tokens.find((x) => x.id === t.tokenId).revoked_at, 'revoked_at set');
});

test('revoking one token leaves the plugin\'s other tokens working', async () => {
  const t = await srv.tenant();
  const second = await srv.cli(['token', 'create', '--org', t.org.id, '--plugin', t.plugin.id]);
  await srv.cli(['token', 'revoke', t.tokenId]);
  await poll(async () => (await srv.publish(t.apiToken, publishBody({ type: 'organization' }, 'x', {}))).status === 401, STORE_CHANGE_WAIT_MS, 'revoke');
  assert.equal((await srv.publish(second.token, publishBody({ type: 'organization' }, 'x', {}))).status, 202);
});

test('an expired connection token is refused with 401 token_expired before any 101', async () => {
  const t = await srv.tenant();
  const tok = mintJwt(t.signingSecret, srv.claims(t, room(), { iat: nowS() - 7200, exp: nowS() - 3600 }));
  await assert.rejects(srv.connect(tok), (e) => {
    assert.equal(e.status, 401);
    assert.equal(e.json?.error?.code, 'token_expired');
    return true;
  });
  const raw = await srv.rawHttp(
    `GET /api/v1/ws?token=${tok} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  assert.equal(parseHttpResponse(raw).status, 401);
});

test('nbf in the future (beyond the leeway) is refused', async () => {
  const t = await srv.tenant();
  const tok = mintJwt(t.signingSecret, srv.claims(t, room(), { nbf: nowS() + 600 }));
  await assert.rejects(srv.connect(tok), (e) => e.status === 401);
});

test('an HTTP-minted token with ttl 1 connects right away', async () => {
  const t = await srv.tenant();
  const tok = await srv.connToken(t, { ...room(), user_id: 'short', ttl: 1 });
  const c = await srv.connect(tok);
  await c.close();
});
