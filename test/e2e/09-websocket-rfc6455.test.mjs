// RFC 6455 conformance with hand-made frames: each violation closes the
// connection with the code docs/protocol.md names; legal but unusual framing
// (fragmentation, interleaved control frames, split UTF-8) works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, mintJwt, withTimeout, OP, closePayload, encodeFrame } from './harness.mjs';

let srv, t;

before(async () => {
  srv = await startServer();
  t = await srv.tenant();
});
after(async () => {
  await srv?.stop();
});

async function open() {
  const ws = await srv.rawWs(mintJwt(t.signingSecret, srv.claims(t, room())));
  await ws.waitJson((m) => m.type === 'welcome');
  return ws;
}

/** Expect a close frame with `code` from the server, then the TCP close. */
async function expectClose(ws, code, what) {
  try {
    const c = await withTimeout(ws.closed, 3000, `close ${code} (${what})`);
    assert.equal(c.code, code, `${what}: close code (reason "${c.reason}")`);
    assert.equal(c.masked, false, 'server frames are not masked');
    await withTimeout(ws.ended, 3000, `TCP close after the close frame (${what})`);
  } finally {
    ws.destroy();
  }
}

test('server frames are unmasked text frames with FIN set', async () => {
  const ws = await open();
  try {
    const f = ws.frames[0];
    assert.equal(f.opcode, OP.TEXT);
    assert.equal(f.fin, true);
    assert.equal(f.masked, false);
    assert.equal(f.rsv, 0);
  } finally {
    ws.destroy();
  }
});

test('binary message: close 1003', async () => {
  const ws = await open();
  ws.send({ opcode: OP.BINARY, payload: Buffer.from('{"type":"ping"}') });
  await expectClose(ws, 1003, 'binary');
});

test('invalid UTF-8 in a text message: close 1007', async () => {
  const ws = await open();
  ws.send({ opcode: OP.TEXT, payload: Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]) });
  await expectClose(ws, 1007, 'invalid UTF-8');
});

test('overlong / surrogate UTF-8 encodings: close 1007', async () => {
  for (const bytes of [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xff]]) {
    const ws = await open();
    ws.send({ opcode: OP.TEXT, payload: Buffer.from([0x22, ...bytes, 0x22]) });
    await expectClose(ws, 1007, `bytes ${bytes.map((b) => b.toString(16)).join(' ')}`);
  }
});

test('invalid UTF-8 split over fragments: close 1007', async () => {
  const ws = await open();
  ws.send({ opcode: OP.TEXT, fin: false, payload: Buffer.from([0x22, 0xe2, 0x82]) });
  ws.send({ opcode: OP.CONT, fin: true, payload: Buffer.from([0x28, 0x22]) });
  await expectClose(ws, 1007, 'split invalid UTF-8');
});

test('valid UTF-8 split across fragments is reassembled', async () => {
  const ws = await open();
  try {
    const msg = Buffer.from('{"type":"subscribe","eventName":"frag","id":"é€😀"}', 'utf8');
    const cut1 = msg.indexOf(0xc3) + 1; // inside "é"
    const cut2 = msg.indexOf(0xf0) + 2; // inside the emoji
    ws.send({ opcode: OP.TEXT, fin: false, payload: msg.subarray(0, cut1) });
    ws.send({ opcode: OP.CONT, fin: false, payload: msg.subarray(cut1, cut2) });
    ws.send({ opcode: OP.CONT, fin: true, payload: msg.subarray(cut2) });
    const ack = await ws.waitJson((m) => m.type === 'ack');
    assert.equal(ack.id, 'é€😀');
  } finally {
    ws.destroy();
  }
});

test('a ping between fragments is answered and the message still completes', async () => {
  const ws = await open();
  try {
    const msg = Buffer.from('{"type":"subscribe","eventName":"mid","id":"m1"}');
    ws.send({ opcode: OP.TEXT, fin: false, payload: msg.subarray(0, 10) });
    ws.send({ opcode: OP.PING, payload: Buffer.from('hey') });
    ws.send({ opcode: OP.CONT, fin: true, payload: msg.subarray(10) });
    const pong = await ws.waitFrame((f) => f.opcode === OP.PONG, 3000, 'pong');
    assert.equal(pong.payload.toString(), 'hey');
    await ws.waitJson((m) => m.type === 'ack' && m.id === 'm1');
  } finally {
    ws.destroy();
  }
});

test('ping → pong with the same payload', async () => {
  const ws = await open();
  try {
    const payload = Buffer.from('0123456789abcdef'.repeat(7)); // 112 bytes
    ws.send({ opcode: OP.PING, payload });
    const pong = await ws.waitFrame((f) => f.opcode === OP.PONG, 3000, 'pong');
    assert.deepEqual(pong.payload, payload);
  } finally {
    ws.destroy();
  }
});

test('an unsolicited pong is ignored', async () => {
  const ws = await open();
  try {
    ws.send({ opcode: OP.PONG, payload: Buffer.from('x') });
    ws.sendJson({ type: 'ping', id: 'after-pong' });
    await ws.waitJson((m) => m.type === 'pong' && m.id === 'after-pong');
  } finally {
    ws.destroy();
  }
});

test('message over max_message_bytes (65536): close 1009', async () => {
  const ws = await open();
  ws.send({ opcode: OP.TEXT, payload: Buffer.alloc(70000, 0x20) });
  await expectClose(ws, 1009, 'oversized message');
});

test('fragmented message over max_message_bytes: close 1009', async () => {
  const ws = await open();
  for (let i = 0; i < 3; i++) ws.send({ opcode: i ? OP.CONT : OP.TEXT, fin: false, payload: Buffer.alloc(30000, 0x20) });
  await expectClose(ws, 1009, 'oversized fragmented message');
});

test('a message of exactly 65536 bytes is accepted', async () => {
  const ws = await open();
  try {
    const head = '{"type":"ping","id":"big","pad":"';
    const tail = '"}';
    const text = head + 'p'.repeat(65536 - head.length - tail.length) + tail;
    assert.equal(Buffer.byteLength(text), 65536);
    ws.sendText(text);
    await ws.waitJson((m) => m.type === 'pong' && m.id === 'big');
  } finally {
    ws.destroy();
  }
});

const violations = [
  ['unmasked frame', () => encodeFrame({ opcode: OP.TEXT, payload: '{"type":"ping"}', mask: false })],
  ['RSV1 set (no extension negotiated)', () => encodeFrame({ opcode: OP.TEXT, payload: '{"type":"ping"}', rsv: 4 })],
  ['RSV3 set', () => encodeFrame({ opcode: OP.TEXT, payload: '{}', rsv: 1 })],
  ['unknown data opcode 0x3', () => encodeFrame({ opcode: 0x3, payload: 'x' })],
  ['unknown control opcode 0xB', () => encodeFrame({ opcode: 0xb, payload: '' })],
  ['continuation without a start', () => encodeFrame({ opcode: OP.CONT, payload: 'x' })],
  ['new text frame inside a fragmented message', () => Buffer.concat([encodeFrame({ opcode: OP.TEXT, fin: false, payload: '{"a":' }), encodeFrame({ opcode: OP.TEXT, payload: '{}' })])],
  ['fragmented ping', () => encodeFrame({ opcode: OP.PING, fin: false, payload: 'x' })],
  ['ping with a 126-byte payload', () => encodeFrame({ opcode: OP.PING, payload: Buffer.alloc(126, 0x61) })],
  ['close with a 1-byte payload', () => encodeFrame({ opcode: OP.CLOSE, payload: Buffer.from([0x03]) })],
  ['close with code 1005', () => encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1005) })],
  ['close with code 1006', () => encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1006) })],
  ['close with code 999', () => encodeFrame({ opcode: OP.CLOSE, payload: closePayload(999) })],
  ['close with code 1004', () => encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1004) })],
  ['close with code 5000', () => encodeFrame({ opcode: OP.CLOSE, payload: closePayload(5000) })],
];
for (const [name, frame] of violations) {
  test(`${name}: close 1002`, async () => {
    const ws = await open();
    ws.write(frame());
    await expectClose(ws, 1002, name);
  });
}

test('close reason that is not UTF-8: close 1007', async () => {
  const ws = await open();
  ws.send({ opcode: OP.CLOSE, payload: closePayload(1000, Buffer.from([0xc3, 0x28])) });
  await expectClose(ws, 1007, 'invalid close reason');
});

test('client close 1000 is echoed and the TCP connection ends', async () => {
  const ws = await open();
  ws.sendClose(1000, 'bye');
  await expectClose(ws, 1000, 'normal close');
});

test('client close with an application code (4123) is answered', async () => {
  const ws = await open();
  ws.sendClose(4123, 'app');
  try {
    const c = await withTimeout(ws.closed, 3000, 'close answer');
    assert.notEqual(c.code, 1002, 'a 4xxx code is legal');
    assert.notEqual(c.code, null, 'a close frame answers');
    await withTimeout(ws.ended, 3000, 'TCP close');
  } finally {
    ws.destroy();
  }
});

test('an empty close frame is answered with a close frame', async () => {
  const ws = await open();
  ws.send({ opcode: OP.CLOSE, payload: Buffer.alloc(0) });
  try {
    const c = await withTimeout(ws.closed, 3000, 'close answer');
    assert.ok(c.code === 1005 || c.code === 1000, `code ${c.code}`);
  } finally {
    ws.destroy();
  }
});

test('a frame split across many TCP writes is parsed', async () => {
  const ws = await open();
  try {
    const f = encodeFrame({ opcode: OP.TEXT, payload: '{"type":"ping","id":"slow-bytes"}' });
    for (const b of f) {
      ws.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    await ws.waitJson((m) => m.type === 'pong' && m.id === 'slow-bytes');
  } finally {
    ws.destroy();
  }
});

test('many frames in one TCP write are all handled', async () => {
  const ws = await open();
  try {
    const frames = [];
    for (let i = 0; i < 50; i++) frames.push(encodeFrame({ opcode: OP.TEXT, payload: JSON.stringify({ type: 'ping', id: `b${i}` }) }));
    ws.write(Buffer.concat(frames));
    await ws.waitJson(() => ws.messages.filter((m) => m.type === 'pong').length >= 50, 3000, '50 pongs');
    assert.deepEqual(ws.messages.filter((m) => m.type === 'pong').map((m) => m.id), frames.map((_, i) => `b${i}`));
  } finally {
    ws.destroy();
  }
});

test('the server keeps serving after all those violations', async () => {
  const res = await srv.http('GET', '/healthz');
  assert.equal(res.status, 200);
  const ws = await open();
  ws.destroy();
});
