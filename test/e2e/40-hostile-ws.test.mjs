// Hostile catalogue, WebSocket framing (RFC 6455): H23-H50. Each case opens
// a raw WebSocket, sends the violation, asserts the server's close code,
// then that the server still serves and the observer lost nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OP, encodeFrame, closePayload, startServer } from './harness.mjs';
import { hostileSuite, rawJoin, closeCode, HOSTILE_CONFIG } from './hostile-lib.mjs';

const ctx = hostileSuite();
const MAX_MSG = ctx.config.max_message_bytes;

async function violation(frames, want) {
  const ws = await rawJoin(ctx);
  for (const f of frames) ws.write(Buffer.isBuffer(f) ? f : encodeFrame(f));
  const code = await closeCode(ws);
  assert.equal(code, want, `close code`);
  await ws.ended;
  await ctx.alive();
  return ws;
}

test('H23 reserved bit RSV1 set: 1002', async () => {
  await violation([{ payload: '{"type":"ping"}', rsv: 4 }], 1002);
});

test('H24 reserved bits RSV2|RSV3 on a ping: 1002', async () => {
  await violation([{ opcode: OP.PING, payload: 'x', rsv: 3 }], 1002);
});

test('H25 unknown data opcode 0x3: 1002', async () => {
  await violation([{ opcode: 0x3, payload: 'x' }], 1002);
});

test('H26 unknown control opcode 0xB: 1002', async () => {
  await violation([{ opcode: 0xb, payload: '' }], 1002);
});

test('H27 fragmented control frame (ping without FIN): 1002', async () => {
  await violation([{ opcode: OP.PING, payload: 'x', fin: false }], 1002);
});

test('H28 control frame payload over 125 bytes: 1002', async () => {
  await violation([{ opcode: OP.PING, payload: Buffer.alloc(126, 0x61) }], 1002);
});

test('H29 unmasked client frame: 1002', async () => {
  await violation([{ payload: '{"type":"ping","id":"u"}', mask: false }], 1002);
});

test('H30 invalid UTF-8 in a text message: 1007', async () => {
  await violation([{ payload: Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]) }], 1007);
});

test('H31 UTF-8 encoded surrogate (ED A0 80) in a text message: 1007', async () => {
  await violation([{ payload: Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]) }], 1007);
});

test('H32 invalid UTF-8 split across fragments: 1007', async () => {
  await violation([{ payload: Buffer.from([0x22, 0xf0, 0x9f]), fin: false }, { opcode: OP.CONT, payload: Buffer.from([0x28, 0x22]) }], 1007);
});

test('H33 invalid UTF-8 in a close reason: 1007', async () => {
  await violation([{ opcode: OP.CLOSE, payload: closePayload(1000, Buffer.from([0xff, 0xfe])) }], 1007);
});

let n = 34;
for (const bad of [0, 999, 1004, 1005, 1006, 1015, 5000]) {
  test(`H${n++} invalid close code ${bad}: 1002`, async () => {
    await violation([{ opcode: OP.CLOSE, payload: closePayload(bad, 'x') }], 1002);
  });
}

test('H41 close frame with a 1-byte body: 1002', async () => {
  await violation([{ opcode: OP.CLOSE, payload: Buffer.from([0x03]) }], 1002);
});

test('H42 continuation frame without a start: 1002', async () => {
  await violation([{ opcode: OP.CONT, payload: 'abc' }], 1002);
});

test('H43 a new text frame inside a fragmented message: 1002', async () => {
  await violation([{ payload: '{"type":', fin: false }, { payload: '"ping"}' }], 1002);
});

test('H44 binary message: 1003', async () => {
  await violation([{ opcode: OP.BINARY, payload: Buffer.from([1, 2, 3]) }], 1003);
});

test('H45 one frame over max_message_bytes: 1009', async () => {
  const pad = 'x'.repeat(MAX_MSG + 10);
  await violation([{ payload: `{"type":"ping","pad":"${pad}"}` }], 1009);
});

test('H46 fragments that add up to over max_message_bytes: 1009', async () => {
  const part = 'x'.repeat(Math.ceil(MAX_MSG / 3) + 10);
  await violation(
    [{ payload: '"' + part, fin: false }, { opcode: OP.CONT, payload: part, fin: false }, { opcode: OP.CONT, payload: part, fin: false }, { opcode: OP.CONT, payload: part + '"' }],
    1009,
  );
});

test('H47 frame header announcing 2^40 bytes: 1009 without waiting for them', async () => {
  const head = Buffer.from([0x81, 0xff, 0, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
  await violation([head], 1009);
});

test('H48 64-bit length with the most significant bit set: 1002', async () => {
  const head = Buffer.from([0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4]);
  await violation([head], 1002);
});

test('H49 a 1000-byte message in 10 fragments, a ping in between: reassembled fine', async () => {
  const ws = await rawJoin(ctx);
  const msg = JSON.stringify({ type: 'publish', eventName: 'frag', scope: 'session', id: 'f1', data: { pad: 'p'.repeat(940) } });
  assert.ok(msg.length >= 1000);
  ws.write(encodeFrame({ payload: '{"type":"subscribe","eventName":"frag","id":"s1"}' }));
  await ws.waitJson((m) => m.id === 's1');
  const step = Math.ceil(msg.length / 10);
  for (let i = 0; i < 10; i++) {
    const part = msg.slice(i * step, (i + 1) * step);
    ws.write(encodeFrame({ opcode: i === 0 ? OP.TEXT : OP.CONT, payload: part, fin: i === 9 }));
    if (i === 4) ws.write(encodeFrame({ opcode: OP.PING, payload: 'mid' }));
  }
  const ack = await ws.waitJson((m) => m.id === 'f1');
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  const ev = await ws.waitJson((m) => m.type === 'event' && m.eventName === 'frag');
  assert.equal(ev.data.pad.length, 940);
  const pong = await ws.waitFrame((f) => f.opcode === OP.PONG);
  assert.equal(pong.payload.toString(), 'mid');
  ws.write(encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1000) }));
  assert.equal(await closeCode(ws), 1000);
  await ctx.alive();
});

test('H50 client vanishes mid-frame and mid-handshake (20 times): server unaffected', async () => {
  const probe = ctx.srv.metricsProbe();
  const total = await probe.read('connections_total');
  const open = await probe.read('connections_open');
  for (let i = 0; i < 10; i++) {
    const ws = await rawJoin(ctx);
    ws.write(encodeFrame({ payload: 'x'.repeat(1000) }).subarray(0, 300));
    ws.destroy();
  }
  const net = await import('node:net');
  for (let i = 0; i < 10; i++) {
    const s = net.connect(ctx.srv.port, '127.0.0.1');
    await new Promise((r) => s.on('connect', r));
    s.write('GET /api/v1/ws?token=abc HTTP/1.1\r\nHost: a\r\nUpgr');
    s.destroy();
  }
  // every one of them accepted, then closed by the server
  await probe.wait('connections_total', (v) => v >= total + 20, 'the 20 connections accepted');
  await probe.wait('connections_open', (v) => v <= open, 'the 20 connections closed on the server');
  probe.close();
  await ctx.alive();
});

test('H51 valid close 1000 with a reason: echoed 1000, TCP closed by the server', async () => {
  const ws = await rawJoin(ctx);
  ws.write(encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1000, 'bye') }));
  assert.equal(await closeCode(ws), 1000);
  await ws.ended;
  await ctx.alive();
});

test('H52 a flood of 500 pings in one write: 500 pongs, connection stays open', async () => {
  const ws = await rawJoin(ctx);
  const frames = [];
  for (let i = 0; i < 500; i++) frames.push(encodeFrame({ opcode: OP.PING, payload: String(i) }));
  ws.write(Buffer.concat(frames));
  await ws.waitFrame(() => ws.frames.filter((f) => f.opcode === OP.PONG).length >= 500, 5000, '500 pongs');
  assert.equal(ws.isEnded, false);
  ws.destroy();
  await ctx.alive();
});

test('H118 non-minimal 16-bit length (126 for a 25-byte payload): 1002', async () => {
  const payload = Buffer.from('{"type":"ping","id":"nm"}');
  await violation([Buffer.concat([Buffer.from([0x81, 0xfe, 0, payload.length, 0, 0, 0, 0]), payload])], 1002);
});

test('H119 non-minimal 64-bit length (127 for a 25-byte payload): 1002', async () => {
  const payload = Buffer.from('{"type":"ping","id":"nm"}');
  await violation([Buffer.concat([Buffer.from([0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, payload.length, 0, 0, 0, 0]), payload])], 1002);
});

test('H120 a message of exactly max_message_bytes is accepted; one byte more is 1009', async () => {
  const ws = await rawJoin(ctx);
  const head = '{"type":"ping","id":"edge","pad":"';
  const exact = head + 'x'.repeat(MAX_MSG - head.length - 2) + '"}';
  assert.equal(Buffer.byteLength(exact), MAX_MSG);
  ws.write(encodeFrame({ payload: exact }));
  const m = await ws.waitJson((x) => x.id === 'edge');
  assert.equal(m.type, 'pong');
  const over = head + 'x'.repeat(MAX_MSG - head.length - 1) + '"}';
  ws.write(encodeFrame({ payload: over }));
  assert.equal(await closeCode(ws), 1009);
  await ctx.alive();
});

test('H126 a ping announcing 2^20 bytes: 1002 from its header, without waiting for them', async () => {
  const head = Buffer.from([0x89, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4]);
  await violation([head], 1002);
});

test('H127 the bytes after a refused frame header are not read as frames (one write: 1009, not 1002)', async () => {
  // The payload of an oversized frame (masked with a zero key, so it is on
  // the wire as written) looks like headers of huge pings; the close code
  // must come from the first header alone.
  const fake = Buffer.from([0x89, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0]);
  const payload = Buffer.alloc(MAX_MSG + fake.length * 4, fake);
  await violation([encodeFrame({ payload, maskKey: Buffer.alloc(4) })], 1009);
});

// H128-H131: a read that is exactly one small, complete text frame is handled
// without wslay (ws.c, hb_ws_direct_text). Each case here sends its frame in a
// write of its own, so it reaches that path, and must get exactly what wslay
// would say.

test('H128 UTF-8 violations alone in one small frame (overlong, above U+10FFFF, cut short, stray continuation, F5 lead): 1007', async () => {
  for (const bad of [[0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x80], [0xf5, 0x80, 0x80, 0x80]]) {
    await violation([{ payload: Buffer.concat([Buffer.from('{"type":"ping","id":"'), Buffer.from(bad)]) }], 1007);
  }
});

test('H129 publishes arriving one per read are rate limited like any others: burst, rate_limited, then 4008', async () => {
  // A slow refill (one token per 100 s) so that no token comes back during
  // the test whatever the machine's speed: 2 acks, then only strikes.
  const srv = await startServer({ config: { ...HOSTILE_CONFIG, conn_publish_rate: 0.01, conn_publish_burst: 2 } });
  try {
    const ws = await rawJoin({ srv, t: await srv.tenant() });
    // One frame per write, each after the previous reply: every read holds
    // exactly one frame. 500 strikes in a row (HB_RATE_STRIKES_BEFORE_CLOSE) close it.
    for (let i = 0; i < 502 && !ws.isEnded; i++) {
      ws.write(encodeFrame({ payload: JSON.stringify({ type: 'publish', eventName: 'rl1', data: { i }, id: `q${i}` }) }));
      await ws.waitFrame((f) => f.opcode === OP.CLOSE || ws.texts.length >= i + 2, 3000, `reply q${i}`); // +1: the welcome
    }
    const replies = ws.messages.filter((m) => /^q\d+$/.test(m.id ?? ''));
    assert.deepEqual(replies.slice(0, 2).map((m) => m.type), ['ack', 'ack']);
    assert.equal(replies.length, 502);
    assert.ok(replies.slice(2).every((m) => m.type === 'error' && m.code === 'rate_limited'), 'all after the burst are rate_limited');
    assert.equal(await closeCode(ws), 4008);
  } finally {
    await srv.stop();
  }
});

test('H130 max_message_bytes below the direct path size: exactly the limit in one read is served, one byte more is 1009', async () => {
  const limit = 1000;
  const srv = await startServer({ config: { ...HOSTILE_CONFIG, max_message_bytes: limit, max_data_bytes: 512 } });
  try {
    const small = { srv, t: await srv.tenant() };
    const head = '{"type":"ping","id":"edge","pad":"';
    for (const [len, want] of [[limit, 'pong'], [limit + 1, 1009]]) {
      const ws = await rawJoin(small);
      const msg = head + 'x'.repeat(len - head.length - 2) + '"}';
      assert.equal(Buffer.byteLength(msg), len);
      ws.write(encodeFrame({ payload: msg }));
      if (want === 'pong') {
        assert.equal((await ws.waitJson((m) => m.id === 'edge')).type, 'pong');
        ws.destroy();
      } else {
        assert.equal(await closeCode(ws), want);
      }
    }
  } finally {
    await srv.stop();
  }
});

test('H131 an empty text frame, and a text frame with a ping behind it in the same read: answered, connection open', async () => {
  const ws = await rawJoin(ctx);
  ws.write(encodeFrame({ payload: '' }));
  const err = await ws.waitJson((m) => m.type === 'error', 3000, 'error for the empty message');
  // (wslay hands over an empty message as NULL; the JSON front door says
  // so in words of its own, whichever path the frame took)
  assert.deepEqual(err, { type: 'error', code: 'invalid_json', message: 'invalid JSON: the text is empty' });
  ws.write(Buffer.concat([encodeFrame({ payload: '{"type":"ping","id":"two"}' }), encodeFrame({ opcode: OP.PING, payload: 'p2' })]));
  assert.equal((await ws.waitJson((m) => m.id === 'two')).type, 'pong');
  assert.equal((await ws.waitFrame((f) => f.opcode === OP.PONG)).payload.toString(), 'p2');
  assert.equal(ws.isEnded, false);
  ws.destroy();
  await ctx.alive();
});
