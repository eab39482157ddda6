// Hostile catalogue, conformance with what clients expect of reference
// servers: H136-H138 (H132-H135, early answers, are in 40-hostile-linger).
//
// * A header name over HB_MAX_HEADER_NAME_BYTES is 431 like the other header limits.
// * A request that started and stalled gets 408 request_timeout; a connection
//   that never started one is closed without a byte.
// * A fragmented WebSocket message of more than max_message_fragments frames is closed with 1008.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { OP, encodeFrame, limit, withTimeout, startServer, poll } from './harness.mjs';
import { hostileSuite, rawExchange, rawJoin, closeCode, assertOneError, splitResponses, sleep } from './hostile-lib.mjs';

const ctx = hostileSuite();

/** The head of a POST to the publish endpoint. */
function postHead(length) {
  return `POST /api/v1/pub_subs HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${ctx.t.apiToken}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
}

test('H136 a header name over HB_MAX_HEADER_NAME_BYTES (and one of 9,000 bytes): 431 headers_too_large', async () => {
  const max = limit('HB_MAX_HEADER_NAME_BYTES');
  const get = (name) => `GET /healthz HTTP/1.1\r\nHost: a\r\n${name}: v\r\nConnection: close\r\n\r\n`;
  let ex = await rawExchange(ctx.srv.port, get('X' + 'n'.repeat(max - 1)));
  assert.equal(ex.responses[0]?.status, 200, `a name of exactly ${max} bytes is fine: ${ex.raw.slice(0, 200)}`);
  for (const n of [max + 1, 9000]) {
    ex = await rawExchange(ctx.srv.port, get('X' + 'n'.repeat(n - 1)));
    assertOneError(ex, 431, 'headers_too_large');
    assert.ok(ex.closed);
  }
  // split across reads, too
  const name = 'X' + 'n'.repeat(max);
  ex = await rawExchange(ctx.srv.port, ['GET /healthz HTTP/1.1\r\nHost: a\r\n' + name.slice(0, 100), name.slice(100) + ': v\r\n\r\n'], { gapMs: 30 });
  assertOneError(ex, 431, 'headers_too_large');
  await ctx.alive();
});

test('H137 a request that started and stalled: 408 request_timeout with Connection: close; one never started: closed without a byte', async () => {
  // headers never finished
  let ex = await rawExchange(ctx.srv.port, 'POST /api/v1/pub_subs HTTP/1.1\r\nHost: a\r\n', { timeoutMs: 6000 });
  let r = assertOneError(ex, 408, 'request_timeout');
  assert.match(r.headers.connection || '', /close/i);
  assert.match(r.headers['content-type'] || '', /application\/json/);
  assert.ok(ex.closed, 'closed after the 408');
  // body never finished
  ex = await rawExchange(ctx.srv.port, postHead(100) + '{"scope":', { timeoutMs: 6000 });
  r = assertOneError(ex, 408, 'request_timeout');
  assert.ok(ex.closed);
  // nothing sent at all: closed silently, as every server does
  ex = await rawExchange(ctx.srv.port, [], { timeoutMs: 6000 });
  assert.ok(ex.closed, 'closed');
  assert.equal(ex.raw, '', 'no bytes for a connection that never started a request');
  await ctx.alive();
});

test('H137 a request that arrived while the server was held up past the deadline is answered, not closed as idle', async () => {
  // A loop turn runs the sweep before it reads: after a stall (here SIGSTOP,
  // on a loaded machine a slow turn) a connection whose request waits in the
  // kernel must not be taken for one that never sent anything.
  const srv = await startServer({ threads: 1, config: { handshake_timeout_ms: 1000 } });
  try {
    const total = async () => Number(/^hubbub_connections_total (\d+)$/m.exec((await srv.http('GET', '/metrics')).text)[1]);
    const m0 = await total();
    const sock = net.connect(srv.port, '127.0.0.1');
    const chunks = [];
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => {});
    const ended = new Promise((r) => sock.on('close', r));
    let polls = 0; // each /metrics request is a connection too
    await poll(async () => (await total()) >= m0 + ++polls + 1, 5000, 'the server to accept the connection');
    process.kill(srv.pid, 'SIGSTOP');
    try {
      sock.write('GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      await sleep(1000 + 2 * limit('HB_SWEEP_INTERVAL_MS')); // past handshake_timeout_ms while held
    } finally {
      process.kill(srv.pid, 'SIGCONT');
    }
    await withTimeout(ended, 5000, 'the answer and the close');
    const res = splitResponses(Buffer.concat(chunks));
    assert.equal(res[0]?.status, 200, `answered: ${Buffer.concat(chunks).toString('latin1').slice(0, 200)}`);
  } finally {
    await srv.stop();
  }
});

test('H138 fragments per message: max_message_fragments frames are one message; one more frame is 1008', async () => {
  const max = limit('HB_DEFAULT_MAX_MESSAGE_FRAGMENTS');
  const text = Buffer.from('{"type":"ping","id":"frag-ok"}');
  const ok = await rawJoin(ctx);
  const frames = [encodeFrame({ opcode: OP.TEXT, fin: false, payload: text })];
  for (let i = 1; i < max - 1; i++) frames.push(encodeFrame({ opcode: OP.CONT, fin: false }));
  frames.push(encodeFrame({ opcode: OP.CONT, fin: true }));
  ok.write(Buffer.concat(frames));
  await ok.waitJson((m) => m.type === 'pong' && m.id === 'frag-ok', 5000, `the pong of a ${max}-frame message`);
  ok.destroy();

  const over = await rawJoin(ctx);
  frames.splice(frames.length - 1, 0, encodeFrame({ opcode: OP.CONT, fin: false }));
  over.write(Buffer.concat(frames));
  assert.equal(await closeCode(over, 5000), 1008);
  await withTimeout(over.ended, 3000, 'TCP close after 1008');
  await ctx.alive();
});

test('H138 FIN=0 then 100,000 empty continuation frames: 1008 without waiting for the rest', async () => {
  const ws = await rawJoin(ctx);
  ws.send({ opcode: OP.TEXT, fin: false, payload: '{"type":' });
  const cont = encodeFrame({ opcode: OP.CONT, fin: false });
  ws.write(Buffer.concat(Array.from({ length: 100000 }, () => cont)));
  assert.equal(await closeCode(ws, 5000), 1008);
  const c = await ws.closed;
  assert.match(c.reason, /fragment/i);
  await withTimeout(ws.ended, 3000, 'TCP close after 1008');
  await ctx.alive();
});
