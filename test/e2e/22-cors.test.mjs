// CORS for the HTTP API (docs/http-api.md, "CORS"): with cors_allowed_origins
// set, a preflight from a listed origin gets the methods and headers the
// route takes, responses to it carry Access-Control-Allow-Origin and
// Vary: Origin; any other origin gets no CORS header (the browser keeps the
// answer from the page) and a debug line. Unset: the API answers as before.
// The browser side is test/browser/cors.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, publishBody, parseHttpResponse, poll } from './harness.mjs';

const APP = 'http://app.example:3000';
let srv;
let t;

before(async () => {
  srv = await startServer({ threads: 1, config: { cors_allowed_origins: `${APP}  https://other.example`, log_level: 'debug' } });
  t = await srv.tenant();
});
after(async () => srv && (await srv.stop()));

const raw = async (lines) => parseHttpResponse(await srv.rawHttp(lines.join('\r\n') + '\r\n\r\n'));

test('a preflight from an allowed origin: 204 with the route\'s methods, the API\'s headers, a max age', async () => {
  const r = await raw(['OPTIONS /api/v1/pub_subs HTTP/1.1', 'Host: a', `Origin: ${APP}`,
    'Access-Control-Request-Method: POST', 'Access-Control-Request-Headers: authorization, content-type']);
  assert.equal(r.status, 204);
  assert.equal(r.headers['access-control-allow-origin'], APP);
  assert.equal(r.headers['access-control-allow-methods'], 'POST');
  assert.equal(r.headers['access-control-allow-headers'], 'Authorization, Content-Type, Idempotency-Key');
  assert.equal(r.headers['access-control-max-age'], '600');
  assert.equal(r.headers.vary, 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
  assert.equal(r.headers.connection, undefined, 'keep-alive: the actual request may follow on it');
  // Origins compare case-insensitively (origin.h), the answer names the request's.
  const upper = await raw(['OPTIONS /api/v1/connection_tokens HTTP/1.1', 'Host: a', 'Origin: HTTPS://Other.Example', 'Access-Control-Request-Method: POST']);
  assert.equal(upper.headers['access-control-allow-origin'], 'HTTPS://Other.Example');
  const admin = await raw(['OPTIONS /healthz HTTP/1.1', 'Host: a', `Origin: ${APP}`, 'Access-Control-Request-Method: GET']);
  assert.equal(admin.headers['access-control-allow-methods'], 'GET, HEAD');
});

test('a preflight from another origin, or a plain OPTIONS: 204 without any CORS permission', async () => {
  for (const origin of ['https://evil.example', 'http://app.example:3001', 'null']) {
    const r = await raw(['OPTIONS /api/v1/pub_subs HTTP/1.1', 'Host: a', `Origin: ${origin}`, 'Access-Control-Request-Method: POST']);
    assert.equal(r.status, 204, origin);
    assert.equal(r.headers['access-control-allow-origin'], undefined, origin);
    assert.equal(r.headers['access-control-allow-methods'], undefined, origin);
    assert.equal(r.headers.allow, 'OPTIONS, POST');
  }
  await poll(() => /debug cors: origin not allowed origin=https:\/\/evil\.example path=\/api\/v1\/pub_subs/.test(srv.stderr), 3000, 'the debug line');
  const plain = await raw(['OPTIONS /api/v1/pub_subs HTTP/1.1', 'Host: a']);
  assert.equal(plain.status, 204);
  assert.equal(plain.headers.allow, 'OPTIONS, POST');
  const unknown = await raw(['OPTIONS /nowhere HTTP/1.1', 'Host: a', `Origin: ${APP}`]);
  assert.equal(unknown.status, 404);
});

test('actual responses: the allowed origin can read them (errors too), another cannot; Vary: Origin on both', async () => {
  const body = publishBody({ type: 'session', ...room() }, 'x', {});
  let r = await srv.publish(t.apiToken, body, { headers: { Origin: APP } });
  assert.equal(r.status, 202);
  assert.equal(r.headers['access-control-allow-origin'], APP);
  assert.equal(r.headers['access-control-expose-headers'], 'Retry-After, Idempotent-Replayed');
  assert.equal(r.headers.vary, 'Origin');
  r = await srv.publish('hbk_wrong', body, { headers: { Origin: APP } });
  assert.equal(r.status, 401);
  assert.equal(r.headers['access-control-allow-origin'], APP, 'a page can read why it was refused');
  r = await srv.publish(t.apiToken, body, { headers: { Origin: 'https://evil.example' } });
  assert.equal(r.status, 202);
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  assert.equal(r.headers.vary, 'Origin');
  r = await srv.http('GET', '/healthz', { headers: { Origin: APP } });
  assert.equal(r.headers['access-control-allow-origin'], APP);
  r = await srv.http('GET', '/metrics', { headers: { Origin: 'https://evil.example' } });
  assert.equal(r.headers['access-control-allow-origin'], undefined, 'no page elsewhere reads /metrics');
  // The static files stay open to any origin (a module import needs it); the
  // WebSocket has its own Origin allowlists, no CORS.
  r = await srv.http('GET', '/sdk/hubbub.js', { headers: { Origin: 'https://evil.example' } });
  assert.equal(r.headers['access-control-allow-origin'], '*');
});

test('without cors_allowed_origins: no CORS header, OPTIONS is 405 as before; "*" and paths are refused at start', async () => {
  const plain = await startServer({ threads: 1 });
  try {
    const r = await plain.http('GET', '/healthz', { headers: { Origin: APP } });
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    assert.equal(r.headers.vary, undefined);
    const o = parseHttpResponse(await plain.rawHttp(`OPTIONS /api/v1/pub_subs HTTP/1.1\r\nHost: a\r\nOrigin: ${APP}\r\nAccess-Control-Request-Method: POST\r\n\r\n`));
    assert.equal(o.status, 405);
  } finally {
    await plain.stop();
  }
  for (const [value, want] of [['*', /"\*" is not allowed/], ['https://app.example/', /no path/], ['app.example', /scheme:\/\/host/]]) {
    await assert.rejects(startServer({ threads: 1, config: { cors_allowed_origins: value } }), (e) => want.test(e.message), value);
  }
});
