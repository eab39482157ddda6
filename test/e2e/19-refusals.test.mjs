// Refusals a browser can read (docs/protocol.md §2): a client that offers the
// hubbub.v1 subprotocol is refused in band — 101 selecting hubbub.v1, one
// error message without an id, a close with 4000 + the HTTP status (1013 for
// shutting_down) and the code as reason — and never enters a room. The token
// travels as a subprotocol entry hubbub.token.<jwt>. Clients that do not offer
// hubbub.v1 keep the HTTP status and JSON body. Each case with a raw socket
// (exact wire bytes) and with the `ws` package (what the SDK runs on in Node).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import {
  startServer, room, mintJwt, nowS, rawWs, parseHttpResponse, encodeFrame, closePayload, OP, WebSocket,
  withTimeout, poll,
} from './harness.mjs';

let srv;
let t; // a tenant whose plugin takes any Origin
let guarded; // a plugin that only takes https://good.example

before(async () => {
  srv = await startServer({ threads: 2 });
  t = await srv.tenant();
  const plugin = await srv.cli(['plugin', 'create', '--org', t.org.id, 'guarded-' + crypto.randomUUID().slice(0, 6), '--origins', 'https://good.example']);
  guarded = { ...t, plugin, pluginId: plugin.id, signingSecret: plugin.signing_secret };
});
after(async () => srv && (await srv.stop()));

const token = (tenant = t, extra = {}) => mintJwt(tenant.signingSecret, srv.claims(tenant, room(), extra));
const expired = () => token(t, { iat: nowS() - 7200, exp: nowS() - 3600 });
const protocols = (tok) => (tok === undefined ? ['hubbub.v1'] : ['hubbub.v1', 'hubbub.token.' + tok]);

/** Raw socket: offer `protocols` (a header value), expect the in-band refusal. */
async function rawRefusal({ path = '/api/v1/ws', protocol, headers = {} }) {
  const ws = await rawWs(srv.port, null, { path, headers: { 'Sec-WebSocket-Protocol': protocol, ...headers } });
  assert.equal(ws.response.status, 101);
  assert.ok(ws.acceptOk, 'Sec-WebSocket-Accept');
  assert.equal(ws.response.headers['sec-websocket-protocol'], 'hubbub.v1', 'the 101 selects hubbub.v1, never the token entry');
  const close = await withTimeout(ws.closed, 3000, 'the close frame');
  ws.sendClose(close.code, ''); // the server waits for ours
  await withTimeout(ws.ended, 3000, 'the end of the connection');
  // Exactly one text message, then the close: nothing of the room.
  const data = ws.frames.filter((f) => f.opcode !== OP.CLOSE);
  assert.equal(data.length, 1, `one message before the close: ${ws.texts.join(' | ')}`);
  assert.equal(data[0].opcode, OP.TEXT);
  assert.equal(data[0].fin, true);
  assert.equal(data[0].masked, false);
  const msg = JSON.parse(ws.texts[0]);
  assert.deepEqual(Object.keys(msg), ['type', 'code', 'message'], 'no id, no pointer');
  assert.equal(msg.type, 'error');
  assert.equal(typeof msg.message, 'string');
  assert.equal(close.reason, msg.code, 'the close reason is the code');
  return { msg, close };
}

/** The `ws` package, offering the subprotocols as the SDK does. */
function wsRefusal({ query = '', tok, offered, origin }) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const sock = new WebSocket(`${srv.wsUrl}/api/v1/ws${query}`, offered ?? protocols(tok), { origin, perMessageDeflate: false });
      const messages = [];
      let protocol = null;
      sock.on('open', () => (protocol = sock.protocol));
      sock.on('message', (d) => messages.push(JSON.parse(d.toString())));
      sock.on('close', (code, reason) => resolve({ code, reason: reason.toString(), messages, protocol }));
      sock.on('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      sock.on('error', reject);
    }),
    5000,
    'a refusal over ws',
  );
}

const cases = [
  { name: 'missing_token', code: 4401, setup: () => ({ protocol: 'hubbub.v1', tok: undefined }) },
  { name: 'invalid_token', code: 4401, setup: () => ({ tok: 'not.a.jwt' }) },
  { name: 'invalid_token (forged)', err: 'invalid_token', code: 4401, setup: () => ({ tok: mintJwt('wrong-secret', srv.claims(t, room())) }) },
  { name: 'token_expired', code: 4401, setup: () => ({ tok: expired() }) },
  { name: 'origin_forbidden', code: 4403, setup: () => ({ tok: token(guarded), origin: 'https://evil.example' }) },
  { name: 'invalid_event_name', code: 4422, setup: () => ({ tok: token(), query: '?subscribe=ok,not%20ok' }) },
  {
    name: 'too_many_subscriptions', code: 4422,
    setup: () => ({ tok: token(), query: '?subscribe=' + Array.from({ length: 257 }, (_, i) => 'n' + i).join(',') }),
  },
  { name: 'bad_request (malformed subscribe)', err: 'bad_request', code: 4400, setup: () => ({ tok: token(), query: '?subscribe=a%zz' }) },
  { name: 'bad_request (token as subprotocol and ?token=)', err: 'bad_request', code: 4400, setup: () => { const k = token(); return { tok: k, query: '?token=' + k }; } },
  {
    name: 'bad_request (two token entries)', err: 'bad_request', code: 4400,
    setup: () => ({ offered: ['hubbub.v1', 'hubbub.token.' + token(), 'hubbub.token.' + token()] }),
  },
];

for (const c of cases) {
  const err = c.err ?? c.name;
  test(`in band, raw socket: ${c.name} -> 101, error, close ${c.code} ${err}`, async () => {
    const s = c.setup();
    const protocol = s.protocol ?? (s.offered ?? protocols(s.tok)).join(', ');
    const { msg, close } = await rawRefusal({ path: '/api/v1/ws' + (s.query ?? ''), protocol, headers: s.origin ? { Origin: s.origin } : {} });
    assert.equal(msg.code, err);
    assert.equal(close.code, c.code);
  });
  test(`in band, ws package: ${c.name} -> close ${c.code} ${err}`, async () => {
    const s = c.setup();
    const r = await wsRefusal(s);
    assert.equal(r.protocol, 'hubbub.v1');
    assert.equal(r.messages.length, 1, JSON.stringify(r.messages));
    assert.equal(r.messages[0].type, 'error');
    assert.equal(r.messages[0].code, err);
    assert.equal(r.messages[0].id, undefined);
    assert.equal(r.code, c.code);
    assert.equal(r.reason, err);
  });
}

test('without hubbub.v1 the same refusals are HTTP answers, as before', async () => {
  for (const [status, code, tok, extra] of [
    [401, 'missing_token', undefined, ''],
    [401, 'invalid_token', 'garbage', ''],
    [401, 'token_expired', expired(), ''],
    [422, 'invalid_event_name', token(), '&subscribe=no%20way'],
  ]) {
    // Token in the query, no subprotocol: the curl way.
    const q = tok === undefined ? '' : '?token=' + encodeURIComponent(tok) + extra;
    await assert.rejects(rawWs(srv.port, null, { path: '/api/v1/ws' + (q || extra.replace('&', '?')) }), (e) => {
      assert.equal(e.response.status, status, code);
      assert.equal(e.response.json.error.code, code);
      return true;
    });
    // A token entry alone (no hubbub.v1) is read, but refusals stay HTTP.
    if (tok !== undefined) {
      await assert.rejects(
        rawWs(srv.port, null, { path: '/api/v1/ws' + extra.replace('&', '?'), headers: { 'Sec-WebSocket-Protocol': 'hubbub.token.' + tok } }),
        (e) => e.response.status === status && e.response.json.error.code === code,
      );
    }
  }
  // The ws package without subprotocols: the status, as the existing suites expect.
  await assert.rejects(srv.connect('garbage'), (e) => e.status === 401 && e.json.error.code === 'invalid_token');
});

test('a valid token as a subprotocol: 101 selects hubbub.v1 (never the token entry), welcome, subscribe= works', async () => {
  const tok = token();
  const ws = await rawWs(srv.port, null, {
    path: '/api/v1/ws?subscribe=a,b',
    headers: { 'Sec-WebSocket-Protocol': `hubbub.v1, hubbub.token.${tok}` },
  });
  assert.equal(ws.response.headers['sec-websocket-protocol'], 'hubbub.v1');
  assert.ok(!ws.response.raw.includes(tok), 'the token is not echoed');
  const welcome = await ws.waitJson((m) => m.type === 'welcome');
  assert.deepEqual(welcome.subscribed, ['a', 'b']);
  ws.destroy();

  // The ws package, as the SDK opens it; browsers send "a, b", ws "a,b": both parse.
  const sock = new WebSocket(`${srv.wsUrl}/api/v1/ws`, protocols(token()), { perMessageDeflate: false });
  const first = await withTimeout(new Promise((res, rej) => { sock.once('message', (d) => res(JSON.parse(d.toString()))); sock.once('error', rej); }), 5000, 'welcome');
  assert.equal(sock.protocol, 'hubbub.v1');
  assert.equal(first.type, 'welcome');
  sock.close();

  // The token entry without hubbub.v1: accepted, and the 101 selects nothing.
  const bare = await rawWs(srv.port, null, { path: '/api/v1/ws', headers: { 'Sec-WebSocket-Protocol': 'hubbub.token.' + token() } });
  assert.equal(bare.response.headers['sec-websocket-protocol'], undefined);
  await bare.waitJson((m) => m.type === 'welcome');
  bare.destroy();

  // The header given on two lines is one list (RFC 9110 5.3).
  const split = await rawWs(srv.port, null, {
    path: '/api/v1/ws',
    headers: { 'Sec-WebSocket-Protocol': 'hubbub.v1', 'sec-websocket-protocol': 'hubbub.token.' + token() },
  });
  assert.equal(split.response.headers['sec-websocket-protocol'], 'hubbub.v1');
  await split.waitJson((m) => m.type === 'welcome');
  split.destroy();
});

test('a maximal token (4096 bytes) fits in Sec-WebSocket-Protocol; one byte more is invalid_token in band, never 431', async () => {
  // A valid token padded with a claim the server ignores. base64url grows by
  // 4 characters per 3 bytes, so some lengths are skipped: vary two fields.
  const base = srv.claims(t, room());
  let tok = '';
  for (let extra = 0; extra < 3 && tok.length !== 4096; extra++) {
    const claims = { ...base, sub: base.sub + 'x'.repeat(extra), pad: '' };
    const size = () => mintJwt(t.signingSecret, claims).length;
    while (size() < 4096) claims.pad += 'p';
    tok = mintJwt(t.signingSecret, claims);
  }
  assert.equal(tok.length, 4096);
  const ws = await rawWs(srv.port, null, { path: '/api/v1/ws', headers: { 'Sec-WebSocket-Protocol': 'hubbub.v1, hubbub.token.' + tok } });
  assert.equal(ws.response.status, 101);
  await ws.waitJson((m) => m.type === 'welcome');
  ws.destroy();
  const big = 'a'.repeat(4097);
  const { msg, close } = await rawRefusal({ protocol: 'hubbub.v1, hubbub.token.' + big });
  assert.equal(msg.code, 'invalid_token');
  assert.equal(close.code, 4401);
  // The cap is for this header only: any other value over 4096 bytes is still 431.
  const r = parseHttpResponse(await srv.rawHttp(`GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: ${'v'.repeat(4097)}\r\n\r\n`));
  assert.equal(r.status, 431);
});

test('the exact wire bytes of an in-band refusal', async () => {
  const key = 'dGhlIHNhbXBsZSBub25jZQ=='; // RFC 6455 1.3's example key
  const req = 'GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: hubbub.v1, hubbub.token.x.y.z\r\n\r\n`;
  const body = '{"type":"error","code":"invalid_token","message":"connection token is malformed"}';
  const expected = Buffer.concat([
    Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: hubbub.v1\r\n\r\n', 'latin1'),
    Buffer.from([0x81, body.length]), Buffer.from(body, 'latin1'),
    Buffer.from([0x88, 2 + 'invalid_token'.length, 0x11, 0x31]), Buffer.from('invalid_token', 'latin1'),
  ]);
  const got = await withTimeout(new Promise((resolve) => {
    const s = net.connect(srv.port, '127.0.0.1', () => s.write(req));
    let buf = Buffer.alloc(0);
    let answered = false;
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!answered && buf.length >= expected.length) {
        answered = true; // our close: the server waits for it
        s.write(encodeFrame({ opcode: OP.CLOSE, payload: closePayload(4401) }));
      }
    });
    s.on('close', () => resolve(buf));
    s.on('error', () => {});
  }), 5000, 'the refusal and the end of the connection');
  assert.equal(got.toString('latin1'), expected.toString('latin1'));
});

test('shutting_down in band: an upgrade that completes during the shutdown grace gets 1013 shutting_down', async () => {
  const s2 = await startServer({ threads: 1 });
  const t2 = await s2.tenant();
  const tok = mintJwt(t2.signingSecret, s2.claims(t2, room()));
  const sock = net.connect(s2.port, '127.0.0.1');
  await new Promise((res) => sock.on('connect', res));
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => (buf = Buffer.concat([buf, d])));
  const ended = new Promise((res) => sock.on('close', res));
  const key = crypto.randomBytes(16).toString('base64');
  sock.write(`GET /api/v1/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n`);
  const stopping = s2.stop();
  await poll(() => /shutting down/.test(s2.stderr), 5000, 'the shutdown log line');
  sock.write(`Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: hubbub.v1, hubbub.token.${tok}\r\n\r\n`);
  await poll(() => buf.includes(Buffer.from('shutting_down')) && buf.lastIndexOf(0x88) > 0, 5000, 'the refusal');
  sock.write(encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1013) }));
  await withTimeout(ended, 5000, 'the end of the connection');
  const head = parseHttpResponse(buf.subarray(0, buf.indexOf('\r\n\r\n') + 4));
  assert.equal(head.status, 101);
  const rest = buf.subarray(buf.indexOf('\r\n\r\n') + 4);
  assert.equal(rest[0], 0x81);
  const msg = JSON.parse(rest.subarray(2, 2 + rest[1]).toString());
  assert.equal(msg.code, 'shutting_down');
  const close = rest.subarray(2 + rest[1]);
  assert.equal(close[0], 0x88);
  assert.equal(close.readUInt16BE(2), 1013);
  assert.equal(close.subarray(4, 2 + close[1]).toString(), 'shutting_down');
  await stopping;
});
