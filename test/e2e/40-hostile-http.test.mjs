// Hostile catalogue, HTTP parsing: H01-H22 (H132-H137: 40-hostile-linger, -conformance). Every case asserts the exact
// answer, then that the server still serves and the observer lost nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostileSuite, rawExchange, assertOneError, publishBody, room } from './hostile-lib.mjs';

const ctx = hostileSuite();
const CRLF = '\r\n';
const req = (lines, body = '') => lines.join(CRLF) + CRLF + CRLF + body;

async function expectError(bytes, status, code, opts) {
  const ex = await rawExchange(ctx.srv.port, bytes, opts);
  assertOneError(ex, status, code);
  // Every error of the parser ends the connection (Connection: close).
  assert.equal(ex.responses.length, 1, `one answer only: ${ex.raw.slice(0, 400)}`);
  assert.match(ex.responses[0].headers.connection || '', /close/i);
  assert.ok(ex.closed, 'the server closed the connection');
  await ctx.alive();
  return ex;
}

test('H01 bare LF line endings: 400 bad_request', async () => {
  await expectError('GET /healthz HTTP/1.1\nHost: a\n\n', 400, 'bad_request');
});

test('H01 bare LF in the middle of a head, in the line after one split across reads: 400 bad_request', async () => {
  // The line checker jumps from a line's start to its CR; an LF before the
  // CR is a bare LF wherever the reads happen to split the line.
  await expectError('GET /healthz HTTP/1.1\r\nHost: a\r\nX-A: one\ntwo\r\n\r\n', 400, 'bad_request');
  await expectError(['GET /healthz HTTP/1.1\r\nHo', 'st: a\r\nX-A: o', 'ne\ntwo\r\n\r\n'], 400, 'bad_request', { gapMs: 30 });
  await expectError(['GET /healthz HTTP/1.1\r\nHost: a', '\nX-A: b\r\n\r\n'], 400, 'bad_request', { gapMs: 30 });
  // and a head split inside a line is still fine when it is well formed
  const ex = await rawExchange(ctx.srv.port, ['GET /healthz HTTP/1.1\r\nHo', 'st: a\r\nConnection: cl', 'ose\r', '\n\r\n'], { gapMs: 30 });
  assert.equal(ex.responses.length, 1, ex.raw.slice(0, 400));
  assert.equal(ex.responses[0].status, 200);
});

test('H02 folded header line (obs-fold): 400 bad_request', async () => {
  await expectError(req(['GET /healthz HTTP/1.1', 'Host: a', 'X-A: one', ' two']), 400, 'bad_request');
});

test('H03 space before the colon: 400 bad_request', async () => {
  await expectError(req(['GET /healthz HTTP/1.1', 'Host : a']), 400, 'bad_request');
});

test('H04 HTTP/1.1 without Host: 400 bad_request', async () => {
  await expectError(req(['GET /healthz HTTP/1.1', 'Accept: */*']), 400, 'bad_request');
});

test('H05 duplicate Host: 400 bad_request', async () => {
  await expectError(req(['GET /healthz HTTP/1.1', 'Host: a', 'Host: b']), 400, 'bad_request');
});

test('H06 HTTP/9.9: 400 bad_request', async () => {
  await expectError(req(['GET /healthz HTTP/9.9', 'Host: a']), 400, 'bad_request');
});

test('H07 one header value over 4096 bytes: 431 headers_too_large', async () => {
  await expectError(req(['GET /healthz HTTP/1.1', 'Host: a', 'X-Big: ' + 'v'.repeat(5000)]), 431, 'headers_too_large');
});

test('H08 headers over 16 KiB in total: 431 headers_too_large', async () => {
  const lines = ['GET /healthz HTTP/1.1', 'Host: a'];
  for (let i = 0; i < 20; i++) lines.push(`X-H${i}: ${'v'.repeat(1000)}`);
  await expectError(req(lines), 431, 'headers_too_large');
});

test('H09 more than 64 header fields: 431 headers_too_large', async () => {
  const lines = ['GET /healthz HTTP/1.1', 'Host: a'];
  for (let i = 0; i < 70; i++) lines.push(`X-${i}: v`);
  await expectError(req(lines), 431, 'headers_too_large');
});

test('H10 request target over 6144 bytes: 414 uri_too_long', async () => {
  await expectError(req([`GET /healthz?${'q'.repeat(7000)} HTTP/1.1`, 'Host: a']), 414, 'uri_too_long');
});

test('H11 Content-Length over max_body_bytes (body sent): 413 payload_too_large', async () => {
  const body = '{"x":"' + 'a'.repeat(5000) + '"}';
  await expectError(
    req(['POST /api/v1/pub_subs HTTP/1.1', 'Host: a', `Authorization: Bearer ${ctx.t.apiToken}`, 'Content-Type: application/json', `Content-Length: ${body.length}`], body),
    413,
    'payload_too_large',
  );
});

test('H12 Content-Length over the limit, body never sent: 413 at once, not after a timeout', async () => {
  // The timeout would close the connection without a 413: the answer
  // itself shows it came from the declared size, not from a timeout.
  await expectError(
    req(['POST /api/v1/pub_subs HTTP/1.1', 'Host: a', `Authorization: Bearer ${ctx.t.apiToken}`, 'Content-Type: application/json', 'Content-Length: 1000000000']),
    413,
    'payload_too_large',
    { timeoutMs: 3000 },
  );
});

test('H13 chunked body over max_body_bytes: 413 payload_too_large', async () => {
  const chunk = 'a'.repeat(1000);
  let body = '';
  for (let i = 0; i < 6; i++) body += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
  body += '0\r\n\r\n';
  await expectError(
    req(['POST /api/v1/pub_subs HTTP/1.1', 'Host: a', `Authorization: Bearer ${ctx.t.apiToken}`, 'Content-Type: application/json', 'Transfer-Encoding: chunked'], body),
    413,
    'payload_too_large',
  );
});

test('H14 Content-Length and Transfer-Encoding together (smuggling): 400 bad_request', async () => {
  await expectError(
    req(['POST /api/v1/pub_subs HTTP/1.1', 'Host: a', 'Content-Length: 5', 'Transfer-Encoding: chunked'], '0\r\n\r\n'),
    400,
    'bad_request',
  );
});

test('H15 duplicate Content-Length: 400 bad_request', async () => {
  await expectError(req(['POST /api/v1/pub_subs HTTP/1.1', 'Host: a', 'Content-Length: 2', 'Content-Length: 2'], '{}'), 400, 'bad_request');
});

test('H16 non-numeric Content-Length: 400 bad_request', async () => {
  await expectError(req(['POST /api/v1/pub_subs HTTP/1.1', 'Host: a', 'Content-Length: 12abc'], '{}'), 400, 'bad_request');
});

test('H17 bad chunk size: 400 bad_request', async () => {
  await expectError(
    req(['POST /api/v1/pub_subs HTTP/1.1', 'Host: a', `Authorization: Bearer ${ctx.t.apiToken}`, 'Content-Type: application/json', 'Transfer-Encoding: chunked'], 'zz\r\n{}\r\n0\r\n\r\n'),
    400,
    'bad_request',
  );
});

test('H18 NUL byte in the request line: 400 bad_request', async () => {
  await expectError('GET /heal\0thz HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'bad_request');
});

test('H19 three pipelined requests in one write: three answers, in order', async () => {
  const r1 = 'GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n';
  const body = JSON.stringify(publishBody({ type: 'session', ...ctx.obsRoom }, 'not-obs', { p: 1 }));
  const r2 = req(['POST /api/v1/pub_subs HTTP/1.1', 'Host: a', `Authorization: Bearer ${ctx.t.apiToken}`, 'Content-Type: application/json', `Content-Length: ${body.length}`], body);
  const r3 = 'GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';
  const ex = await rawExchange(ctx.srv.port, r1 + r2 + r3, { timeoutMs: 3000 });
  assert.deepEqual(ex.responses.map((r) => r.status), [200, 202, 404], ex.raw.slice(0, 600));
  assert.ok(ex.closed);
  await ctx.alive();
});

test('H20 slowloris headers: 408 request_timeout at the request/handshake timeout, then closed', async () => {
  const parts = ['GET /healthz HTTP/1.1\r\n'];
  for (let i = 0; i < 40; i++) parts.push(`X-${i}: v\r\n`);
  const ex = await rawExchange(ctx.srv.port, parts, { timeoutMs: 6000, gapMs: 100 });
  // still trickling when it was closed: the client sends for 4 s and watches for 6 s
  assert.ok(ex.closed, 'the server closed the slow connection');
  // A request that started gets its answer (RFC 9110 15.5.9), never a 200.
  assertOneError(ex, 408, 'request_timeout');
  assert.equal(ex.responses.length, 1, ex.raw.slice(0, 300));
  assert.match(ex.responses[0].headers.connection || '', /close/i);
  await ctx.alive();
});

test('H21 slowloris body: closed by the timeout, nothing published', async () => {
  const r = room();
  const sub = await ctx.srv.join(ctx.t, r, { subscribe: ['slow'] });
  const body = JSON.stringify(publishBody({ type: 'session', ...r }, 'slow', { x: 'y'.repeat(200) }));
  const head = req(['POST /api/v1/pub_subs HTTP/1.1', 'Host: a', `Authorization: Bearer ${ctx.t.apiToken}`, 'Content-Type: application/json', `Content-Length: ${body.length}`]);
  const parts = [head];
  for (let i = 0; i < body.length - 1; i += 4) parts.push(body.slice(i, Math.min(i + 4, body.length - 1)));
  const ex = await rawExchange(ctx.srv.port, parts, { timeoutMs: 6000, gapMs: 100 });
  assert.ok(ex.closed, 'the server closed the slow connection');
  assertOneError(ex, 408, 'request_timeout');
  assert.equal(ex.responses.length, 1, ex.raw.slice(0, 300));
  await sub.expectNone((m) => m.type === 'event', 200, 'event from a cut-off body');
  await sub.close();
  await ctx.alive();
});

test('H22 a connection that sends nothing: closed after handshake_timeout_ms, without a byte', async () => {
  const ex = await rawExchange(ctx.srv.port, [], { timeoutMs: 5000 });
  assert.ok(ex.closed, 'closed');
  assert.ok(ex.ms >= 900, `closed after ${ex.ms} ms (handshake_timeout_ms is 1000)`);
  assert.equal(ex.raw, '', 'no request started: nothing to answer');
  await ctx.alive();
});
