// Keep-alive and lifecycle: server pings, idle timeout (4001), handshake
// timeout, /healthz, and SIGTERM closing every WebSocket with 1001 and exiting 0.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, room, mintJwt, withTimeout, passTime, OP, parseHttpResponse } from './harness.mjs';

const servers = [];
after(async () => {
  for (const s of servers) await s.stop().catch(() => {});
});
async function start(opts) {
  const s = await startServer(opts);
  servers.push(s);
  return s;
}

test('/healthz: 200 application/json {"status":"ok"}; POST is 405', async () => {
  const srv = await start();
  const res = await srv.http('GET', '/healthz');
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'] || '', /^application\/json/);
  assert.equal(res.json.status, 'ok');
  const post = await srv.http('POST', '/healthz', { body: '{}' });
  assert.equal(post.status, 405);
  assert.equal(post.json?.error?.code, 'method_not_allowed');
  await srv.stop();
});

test('keep-alive: several requests on one connection', async () => {
  const srv = await start();
  const req = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
  const raw = await srv.rawHttp([req + req + 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], { untilClose: true, timeoutMs: 3000 });
  assert.equal((raw.match(/HTTP\/1\.1 200/g) || []).length, 3, raw);
  await srv.stop();
});

test('server pings at ping_interval_ms; a silent client is closed with 4001 after idle_timeout_ms', async () => {
  const srv = await start({ config: { ping_interval_ms: 200, idle_timeout_ms: 1000 } });
  const t = await srv.tenant();
  const ws = await srv.rawWs(mintJwt(t.signingSecret, srv.claims(t, room())));
  try {
    const welcome = await ws.waitJson((m) => m.type === 'welcome');
    assert.equal(welcome.ping_interval_ms, 200);
    await ws.waitFrame((f) => f.opcode === OP.PING, 2000, 'a server ping');
    // This raw client never answers pings and sends nothing.
    const c = await withTimeout(ws.closed, 4000, 'idle close');
    assert.equal(c.code, 4001);
  } finally {
    ws.destroy();
  }
  await srv.stop();
});

test('a client that answers pings (ws library) or sends app pings stays connected', async () => {
  const srv = await start({ config: { ping_interval_ms: 200, idle_timeout_ms: 1000 } });
  const t = await srv.tenant();
  const auto = await srv.connect(mintJwt(t.signingSecret, srv.claims(t, room())));
  const raw = await srv.rawWs(mintJwt(t.signingSecret, srv.claims(t, room())));
  try {
    await raw.waitJson((m) => m.type === 'welcome');
    for (let i = 0; i < 10; i++) {
      raw.sendJson({ type: 'ping', id: `k${i}` });
      // a steady cadence, not paced by the answers: the point is activity
      // more often than the 1000 ms idle timeout, for twice its length
      await passTime(200, 'an app ping every 200 ms, for twice the 1000 ms idle timeout');
    }
    assert.equal(auto.closeInfo, null, 'the ws client answered pings and is still open');
    assert.equal(raw.isEnded, false, 'the raw client sent app pings and is still open');
    assert.ok(raw.messages.filter((m) => m.type === 'pong').length >= 9);
  } finally {
    raw.destroy();
    await auto.close();
  }
  await srv.stop();
});

test('handshake_timeout_ms: a connection that never finishes its request is dropped', async () => {
  const srv = await start({ config: { handshake_timeout_ms: 500 } });
  const sock = net.connect(srv.port, '127.0.0.1');
  const ended = new Promise((r) => {
    sock.on('close', r);
    sock.on('error', r);
  });
  sock.on('data', () => {});
  sock.write('GET /api/v1/ws?token=x HTTP/1.1\r\nHost: x\r\n'); // never finished
  await withTimeout(ended, 5000, 'the server to drop a stalled handshake');
  sock.destroy();
  await srv.stop();
});

test('SIGTERM: every WebSocket is closed with 1001, the process exits 0', async () => {
  const srv = await start({ threads: 2 });
  const t = await srv.tenant();
  const clients = [];
  for (let i = 0; i < 6; i++) clients.push(await srv.join(t, room(), { subscribe: ['x'] }));
  const raw = await srv.rawWs(mintJwt(t.signingSecret, srv.claims(t, room())));
  await raw.waitJson((m) => m.type === 'welcome');
  await srv.stop(); // asserts exit code 0 and no sanitizer report
  for (const c of clients) {
    const info = await withTimeout(c.closed, 3000, 'client close');
    assert.equal(info.code, 1001, `close code ${JSON.stringify(info)}`);
  }
  const rc = await withTimeout(raw.closed, 3000, 'raw close');
  assert.equal(rc.code, 1001);
  raw.destroy();
});

test('SIGTERM with an idle server exits 0 promptly', async () => {
  const srv = await start();
  await srv.stop(); // bounded by the harness (STOP_TIMEOUT_MS); asserts exit code 0
});

test('an HTTP request cut mid-body does not hurt the server', async () => {
  const srv = await start();
  const t = await srv.tenant();
  const probe = srv.metricsProbe();
  const total = await probe.read('connections_total');
  const open = await probe.read('connections_open');
  const sock = net.connect(srv.port, '127.0.0.1');
  await new Promise((r) => sock.on('connect', r));
  sock.write(`POST /api/v1/pub_subs HTTP/1.1\r\nHost: x\r\nAuthorization: ${t.apiToken}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"scope":`);
  sock.destroy();
  await probe.wait('connections_total', (v) => v >= total + 1, 'the cut connection accepted');
  await probe.wait('connections_open', (v) => v <= open, 'the cut connection closed on the server');
  probe.close();
  const res = await srv.http('GET', '/healthz');
  assert.equal(res.status, 200);
  await srv.stop();
});

test('malformed HTTP gets 400 and no crash', async () => {
  const srv = await start();
  for (const bytes of ['GARBAGE\r\n\r\n', 'GET / HTTP/9.9\r\nHost: x\r\n\r\n', 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n', 'GET /healthz HTTP/1.1\r\n\r\n']) {
    const res = parseHttpResponse(await srv.rawHttp(bytes, { timeoutMs: 2000 }));
    assert.ok(res.status === 400 || res.status === 505, `${JSON.stringify(bytes)} → ${res.status}`);
  }
  const res = await srv.http('GET', '/healthz');
  assert.equal(res.status, 200);
  await srv.stop();
});

test('request line over the URL limit: 414; headers over the limit: 431', async () => {
  const srv = await start();
  const long = parseHttpResponse(await srv.rawHttp(`GET /${'a'.repeat(10000)} HTTP/1.1\r\nHost: x\r\n\r\n`));
  assert.equal(long.status, 414);
  const big = parseHttpResponse(await srv.rawHttp(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20000)}\r\n\r\n`));
  assert.equal(big.status, 431);
  await srv.stop();
});

test('pipelined requests in one TCP write are answered in order', async () => {
  const srv = await start();
  const t = await srv.tenant();
  const body = JSON.stringify({ scope: { type: 'organization' }, payload: { event: { eventName: 'pipe', data: {} } } });
  const pub = `POST /api/v1/pub_subs HTTP/1.1\r\nHost: x\r\nAuthorization: ${t.apiToken}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const raw = await srv.rawHttp([pub + pub + 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], { untilClose: true, timeoutMs: 3000 });
  const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [202, 202, 200], raw.slice(0, 600));
  await srv.stop();
});
