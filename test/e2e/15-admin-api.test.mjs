// The admin HTTP API: organizations, plugins and API tokens over HTTP,
// guarded by an admin token whose SHA-256 is in the config.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { BIN, startServer, assertError, publishBody, room, poll, UUID_RE, STORE_CHANGE_WAIT_MS } from './harness.mjs';

let srv;
let admin;
const auth = () => ({ Authorization: `Bearer ${admin.token}`, 'Content-Type': 'application/json' });

before(async () => {
  admin = JSON.parse(execFileSync(BIN, ['admin-token', 'create', '--json'], { encoding: 'utf8' }));
  srv = await startServer({ config: { admin_token_sha256: admin.admin_token_sha256 } });
});
after(async () => srv && (await srv.stop()));

test('admin: create an organization, a plugin and a token that publishes, then revoke it', async () => {
  let r = await srv.http('POST', '/api/v1/admin/organizations', { headers: auth(), body: JSON.stringify({ name: 'adm-org' }) });
  assert.equal(r.status, 201, r.text);
  assert.match(r.json.id, UUID_RE);
  assert.equal(r.json.name, 'adm-org');

  r = await srv.http('POST', '/api/v1/admin/organizations', { headers: auth(), body: JSON.stringify({ name: 'adm-org' }) });
  assertError(r, 409, 'already_exists', '/name');

  r = await srv.http('POST', '/api/v1/admin/plugins', {
    headers: auth(),
    body: JSON.stringify({ organization: 'adm-org', name: 'adm-plugin' }),
  });
  assert.equal(r.status, 201, r.text);
  assert.match(r.json.signing_secret, /^hbs_/);

  r = await srv.http('GET', '/api/v1/admin/plugins', { headers: auth() });
  assert.equal(r.status, 200);
  const listed = r.json.plugins.find((p) => p.name === 'adm-plugin');
  assert.ok(listed, 'plugin listed');
  assert.equal(listed.signing_secret, undefined, 'the secret is never listed');

  r = await srv.http('POST', '/api/v1/admin/tokens', {
    headers: auth(),
    body: JSON.stringify({ organization: 'adm-org', plugin: 'adm-plugin', name: 'ci' }),
  });
  assert.equal(r.status, 201, r.text);
  const tok = r.json;
  assert.match(tok.token, /^hbk_/);

  const body = publishBody({ type: 'session', ...room() }, 'x', { a: 1 });
  await poll(async () => (await srv.publish(tok.token, body)).status === 202, STORE_CHANGE_WAIT_MS, 'new token accepted');

  r = await srv.http('GET', '/api/v1/admin/tokens', { headers: auth() });
  assert.equal(r.status, 200);
  assert.ok(r.json.tokens.some((t) => t.id === tok.id && t.revoked_at === null));
  assert.ok(!JSON.stringify(r.json).includes(tok.token), 'the token itself is never listed');

  r = await srv.http('DELETE', `/api/v1/admin/tokens/${tok.id}`, { headers: auth() });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { id: tok.id, revoked: true });
  await poll(async () => (await srv.publish(tok.token, body)).status === 401, STORE_CHANGE_WAIT_MS, 'revoked once the store is reloaded');

  r = await srv.http('DELETE', `/api/v1/admin/tokens/${tok.id.replace(/.$/, '0')}0`, { headers: auth() });
  assertError(r, 422, 'invalid_uuid');
});

test('admin: refused without the admin token, with an API token, and with bad bodies', async () => {
  let r = await srv.http('GET', '/api/v1/admin/organizations');
  assertError(r, 401, 'missing_token');
  r = await srv.http('GET', '/api/v1/admin/organizations', { headers: { Authorization: 'Bearer hba_wrong' } });
  assertError(r, 401, 'invalid_token');
  const t = await srv.tenant();
  r = await srv.http('GET', '/api/v1/admin/tokens', { headers: { Authorization: `Bearer ${t.apiToken}` } });
  assertError(r, 401, 'invalid_token');
  r = await srv.http('POST', '/api/v1/admin/organizations', { headers: auth(), body: '{"name":' });
  assertError(r, 400, 'invalid_json');
  r = await srv.http('POST', '/api/v1/admin/organizations', { headers: auth(), body: '{}' });
  assertError(r, 422, 'missing_field', '/name');
  r = await srv.http('POST', '/api/v1/admin/plugins', { headers: auth(), body: JSON.stringify({ organization: 'nope', name: 'p' }) });
  assertError(r, 404, 'not_found', '/organization');
  r = await srv.http('PUT', '/api/v1/admin/organizations', { headers: auth(), body: '{}' });
  assertError(r, 405, 'method_not_allowed');
});

test('admin: the API does not exist when no admin token is configured', async () => {
  const plain = await startServer();
  try {
    const r = await plain.http('GET', '/api/v1/admin/organizations', { headers: { Authorization: 'Bearer x' } });
    assertError(r, 404, 'not_found');
  } finally {
    await plain.stop();
  }
});
