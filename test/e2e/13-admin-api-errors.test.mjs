// The admin HTTP API follows the same error contract as the rest of the API
// (docs/http-api.md): the check order, one error shape, pointers in RFC 6901
// form ("" for the whole body). 15-admin-api covers the happy paths.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { BIN, startServer, assertError, uuid } from './harness.mjs';

let srv, admin;
const auth = (extra = {}) => ({ Authorization: `Bearer ${admin.token}`, 'Content-Type': 'application/json', ...extra });
const post = (p, body, headers = auth()) => srv.http('POST', p, { headers, body: typeof body === 'string' ? body : JSON.stringify(body) });

before(async () => {
  admin = JSON.parse(execFileSync(BIN, ['admin-token', 'create', '--json'], { encoding: 'utf8', timeout: 10000 }));
  srv = await startServer({ config: { admin_token_sha256: admin.admin_token_sha256 } });
});
after(async () => {
  await srv?.stop();
});

test('admin API is 404 when admin_token_sha256 is not configured', async () => {
  const off = await startServer();
  try {
    assertError(await off.http('GET', '/api/v1/admin/organizations', { headers: auth() }), 404, 'not_found');
  } finally {
    await off.stop();
  }
});

test('credentials: none → 401 missing_token; wrong or an API token → 401 invalid_token', async () => {
  assertError(await srv.http('GET', '/api/v1/admin/organizations'), 401, 'missing_token');
  assertError(await srv.http('GET', '/api/v1/admin/organizations', { headers: { Authorization: 'Bearer nope' } }), 401, 'invalid_token');
  const t = await srv.tenant();
  assertError(await srv.http('GET', '/api/v1/admin/tokens', { headers: { Authorization: `Bearer ${t.apiToken}` } }), 401, 'invalid_token');
});

test('method: PUT → 405 with Allow', async () => {
  const res = await srv.http('PUT', '/api/v1/admin/organizations', { headers: auth(), body: '{}' });
  assertError(res, 405, 'method_not_allowed');
  assert.match(res.headers.allow || '', /POST/);
});

test('Content-Type, JSON and top-level errors', async () => {
  assertError(await post('/api/v1/admin/organizations', { name: 'x' }, auth({ 'Content-Type': 'text/plain' })), 415, 'unsupported_media_type');
  assertError(await post('/api/v1/admin/organizations', '{"name":'), 400, 'invalid_json');
  assertError(await post('/api/v1/admin/organizations', '{"name":"a","name":"b"}'), 400, 'invalid_json');
  assertError(await post('/api/v1/admin/organizations', '[]'), 422, 'invalid_type', '');
});

test('field errors carry pointers', async () => {
  assertError(await post('/api/v1/admin/organizations', {}), 422, 'missing_field', '/name');
  assertError(await post('/api/v1/admin/organizations', { name: 5 }), 422, 'invalid_type', '/name');
  assertError(await post('/api/v1/admin/organizations', { name: '' }), 422, 'invalid_value', '/name');
  assertError(await post('/api/v1/admin/organizations', { name: uuid() }), 422, 'invalid_value', '/name');
  assertError(await post('/api/v1/admin/organizations', { name: 'n'.repeat(129) }), 422, 'invalid_value', '/name');
});

test('a taken name → 409 already_exists /name; unknown organization → 404', async () => {
  const name = `adm-${uuid().slice(0, 8)}`;
  assert.equal((await post('/api/v1/admin/organizations', { name })).status, 201);
  assertError(await post('/api/v1/admin/organizations', { name }), 409, 'already_exists', '/name');
  const res = await post('/api/v1/admin/plugins', { organization: `missing-${uuid().slice(0, 8)}`, name: 'p' });
  assert.equal(res.status, 404, res.text);
  assert.equal(res.json.error.code, 'not_found');
});

test('revoking: malformed id → 422 invalid_uuid; unknown id → 404', async () => {
  assertError(await srv.http('DELETE', '/api/v1/admin/tokens/not-a-uuid', { headers: auth() }), 422, 'invalid_uuid');
  assertError(await srv.http('DELETE', `/api/v1/admin/tokens/${uuid()}`, { headers: auth() }), 404, 'not_found');
});
