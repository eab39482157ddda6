// RFC 6455 against the echo target (build/hb_wsecho, test/wsecho/README.md):
// the server's own connection, HTTP and WebSocket layers with an echo on
// top, which external suites (Autobahn's fuzzingclient) are pointed at.
// Hand-made frames, as in 09-websocket-rfc6455: framing, fragmentation with
// interleaved control frames, UTF-8 fail-fast, the close handshake, ping and
// pong payloads, and the limits the echo applies.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, OP, rawWs, rawHttp, parseHttpResponse, encodeFrame, closePayload, withTimeout, sleep } from './harness.mjs';

const ECHO = process.env.HB_WSECHO_BIN || path.join(path.dirname(BIN), 'hb_wsecho');
const MAX_BYTES = 65536;
const MAX_FRAGMENTS = 64; // small, so that crossing it is quick
let echo;

/** Start hb_wsecho on a free port; { port, stderr, stop() }. */
async function startEcho(args) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hb-wsecho-'));
  const config = path.join(dir, 'echo.json');
  writeFileSync(config, JSON.stringify({ max_message_fragments: MAX_FRAGMENTS }));
  const child = spawn(ECHO, ['--listen', '127.0.0.1:0', '--config', config, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise((r) => child.on('close', (code, signal) => r({ code, signal })));
  const port = await withTimeout(
    new Promise((resolve, reject) => {
      child.stderr.on('data', (d) => {
        stderr += d;
        const m = /hb_wsecho listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
        if (m) resolve(Number(m[1]));
      });
      child.on('error', (e) => reject(new Error(`cannot start ${ECHO}: ${e.message}`)));
      exited.then((e) => reject(new Error(`hb_wsecho exited (${JSON.stringify(e)}): ${stderr}`)));
    }),
    10000,
    'the hb_wsecho listening line',
  );
  return {
    port,
    get stderr() {
      return stderr;
    },
    async stop() {
      child.kill('SIGTERM');
      const info = await withTimeout(exited, 8000, 'hb_wsecho exit after SIGTERM');
      rmSync(dir, { recursive: true, force: true });
      assert.ok(!/AddressSanitizer|LeakSanitizer|runtime error:/.test(stderr), `sanitizer report:\n${stderr.slice(-4000)}`);
      assert.deepEqual(info, { code: 0, signal: null }, stderr.slice(-2000));
    },
  };
}

before(async () => {
  echo = await startEcho(['--max-message-bytes', String(MAX_BYTES)]);
});
after(async () => {
  await echo?.stop();
});

const open = () => rawWs(echo.port, null, { path: '/any/path?x=1' });

/** The next `n` data frames the echo sent (bounded wait). */
async function dataFrames(ws, n, what) {
  const isData = (f) => f.opcode === OP.TEXT || f.opcode === OP.BINARY;
  await ws.waitFrame(() => ws.frames.filter(isData).length >= n, 5000, what);
  return ws.frames.filter(isData);
}

/** Expect the echo's close frame with `code`, then the end of TCP. */
async function expectClose(ws, code, what) {
  try {
    const c = await withTimeout(ws.closed, 3000, `close ${code} (${what})`);
    assert.equal(c.code, code, `${what}: close code (reason "${c.reason}")`);
    assert.equal(c.masked, false);
    await withTimeout(ws.ended, 3000, `TCP close after the close frame (${what})`);
    return c;
  } finally {
    ws.destroy();
  }
}

test('the handshake: any path upgrades; the accept key is right; no upgrade is 400; POST is 405; version 12 is 426', async () => {
  const ws = await open();
  assert.equal(ws.acceptOk, true);
  ws.destroy();
  let r = parseHttpResponse(await rawHttp(echo.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
  assert.equal(r.status, 400);
  r = parseHttpResponse(await rawHttp(echo.port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n'));
  assert.equal(r.status, 405);
  await assert.rejects(rawWs(echo.port, null, { path: '/', headers: { 'Sec-WebSocket-Version': '12' } }), (e) => e.response.status === 426 && e.response.headers['sec-websocket-version'] === '13');
});

test('framing: text and binary of 0, 1, 125, 126, 65535 and 65536 bytes come back whole, unmasked, in one frame', async () => {
  const ws = await open();
  try {
    const sizes = [0, 1, 125, 126, 65535, 65536];
    const sent = [];
    for (const n of sizes) {
      const text = Buffer.alloc(n, 0x61);
      const bin = Buffer.alloc(n);
      for (let i = 0; i < n; i++) bin[i] = (i * 7) & 0xff;
      ws.send({ opcode: OP.TEXT, payload: text });
      ws.send({ opcode: OP.BINARY, payload: bin });
      sent.push([OP.TEXT, text], [OP.BINARY, bin]);
    }
    const got = await dataFrames(ws, sent.length, 'the echoes');
    sent.forEach(([op, payload], i) => {
      const f = got[i];
      assert.equal(f.opcode, op, `frame ${i}: opcode`);
      assert.equal(f.fin, true);
      assert.equal(f.masked, false, 'server frames are not masked');
      assert.equal(f.rsv, 0);
      assert.ok(f.payload.equals(payload), `frame ${i}: ${payload.length} bytes echoed`);
    });
  } finally {
    ws.destroy();
  }
});

test('framing: many frames in one write, and one frame a byte at a time, are all echoed in order', async () => {
  const ws = await open();
  try {
    const frames = [];
    for (let i = 0; i < 100; i++) frames.push(encodeFrame({ opcode: i % 2 ? OP.BINARY : OP.TEXT, payload: `m${i}` }));
    ws.write(Buffer.concat(frames));
    const slow = encodeFrame({ opcode: OP.TEXT, payload: 'byte by byte ✓' });
    for (const b of slow) {
      ws.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    const got = await dataFrames(ws, 101, '101 echoes');
    assert.deepEqual(got.slice(0, 100).map((f) => f.payload.toString()), frames.map((_, i) => `m${i}`));
    assert.equal(got[100].payload.toString(), 'byte by byte ✓');
  } finally {
    ws.destroy();
  }
});

test('fragmentation: text split inside UTF-8 sequences, binary in 3 fragments, pings between fragments: one message each, pongs first', async () => {
  const ws = await open();
  try {
    const text = Buffer.from('κόσμε € 😀 end', 'utf8');
    const cut1 = text.indexOf(0xe2) + 1; // inside "€"
    const cut2 = text.indexOf(0xf0) + 3; // inside the emoji
    const bin = Buffer.from([0, 1, 2, 3, 4, 5, 250, 251, 252]);
    // One write, so that the pings and the ends of the messages they
    // interrupt are handled in one read: the pong must still go first.
    ws.write(
      Buffer.concat(
        [
          { opcode: OP.TEXT, fin: false, payload: text.subarray(0, cut1) },
          { opcode: OP.PING, payload: 'p1' },
          { opcode: OP.CONT, fin: false, payload: text.subarray(cut1, cut2) },
          { opcode: OP.PONG, payload: 'unsolicited' },
          { opcode: OP.CONT, fin: true, payload: text.subarray(cut2) },
          { opcode: OP.BINARY, fin: false, payload: bin.subarray(0, 3) },
          { opcode: OP.CONT, fin: false, payload: bin.subarray(3, 6) },
          { opcode: OP.PING, payload: 'p2' },
          { opcode: OP.CONT, fin: true, payload: bin.subarray(6) },
          // empty fragments are legal too
          { opcode: OP.TEXT, fin: false, payload: '' },
          { opcode: OP.CONT, fin: false, payload: 'x' },
          { opcode: OP.CONT, fin: true, payload: '' },
        ].map(encodeFrame),
      ),
    );
    const got = await dataFrames(ws, 3, 'three reassembled echoes');
    assert.ok(got[0].payload.equals(text));
    assert.equal(got[0].opcode, OP.TEXT);
    assert.ok(got[1].payload.equals(bin));
    assert.equal(got[1].opcode, OP.BINARY);
    assert.equal(got[2].payload.toString(), 'x');
    const order = ws.frames.map((f) => (f.opcode === OP.PONG ? `pong:${f.payload}` : f.opcode === OP.TEXT ? 'text' : 'binary'));
    assert.deepEqual(order.slice(0, 5), ['pong:p1', 'text', 'pong:p2', 'binary', 'text'], 'a control frame is answered before the message it interrupts completes');
  } finally {
    ws.destroy();
  }
});

test('UTF-8 fail-fast: an invalid sequence closes 1007 at once, mid-message and mid-frame, without waiting for the rest', async () => {
  // the first fragment already invalid; the rest never comes
  let ws = await open();
  ws.send({ opcode: OP.TEXT, fin: false, payload: Buffer.from([0xce, 0xba, 0xed, 0xa0, 0x80]) });
  await expectClose(ws, 1007, 'invalid first fragment');
  // a valid first fragment, an invalid second one, no third
  ws = await open();
  ws.send({ opcode: OP.TEXT, fin: false, payload: 'hello' });
  ws.send({ opcode: OP.CONT, fin: false, payload: Buffer.from([0xf4, 0x90, 0x80, 0x80]) });
  await expectClose(ws, 1007, 'invalid second fragment');
  // inside one frame whose end never comes
  ws = await open();
  const f = encodeFrame({ opcode: OP.TEXT, payload: Buffer.concat([Buffer.from('κόσμε'), Buffer.from([0xc0, 0xaf]), Buffer.alloc(50, 0x61)]) });
  ws.write(f.subarray(0, 6 + 14));
  await expectClose(ws, 1007, 'invalid bytes in the first part of a frame');
  // a sequence cut short at the end of the message
  ws = await open();
  ws.send({ opcode: OP.TEXT, fin: false, payload: Buffer.from([0x61, 0xe2, 0x82]) });
  await sleep(100);
  assert.equal(ws.isEnded, false, 'a sequence split across fragments is fine so far');
  ws.send({ opcode: OP.CONT, fin: true, payload: Buffer.alloc(0) });
  await expectClose(ws, 1007, 'a message ending inside a sequence');
});

test('close handshake: the code and reason are echoed; legal codes are answered; an empty close gets an empty close', async () => {
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]) {
    const ws = await open();
    ws.sendClose(code, `reason ${code} ✓`);
    const c = await expectClose(ws, code, `close ${code}`);
    assert.equal(c.reason, `reason ${code} ✓`);
  }
  const ws = await open();
  ws.send({ opcode: OP.CLOSE });
  const c = await withTimeout(ws.closed, 3000, 'the answer to an empty close');
  assert.equal(c.code, 1005, 'an empty close frame answers an empty one');
  await withTimeout(ws.ended, 3000, 'TCP close');
  ws.destroy();
});

test('close handshake: data after the client close is not echoed; the server ends TCP', async () => {
  const ws = await open();
  ws.write(Buffer.concat([encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1000) }), encodeFrame({ opcode: OP.TEXT, payload: 'late' })]));
  await expectClose(ws, 1000, 'close then text');
  assert.equal(ws.frames.filter((f) => f.opcode === OP.TEXT).length, 0);
});

test('close violations: 1-byte body, codes 0-999, 1004-1006, 1015, 1016-2999, 5000+, a non-UTF-8 reason, 126-byte body', async () => {
  const cases = [
    ['1-byte body', encodeFrame({ opcode: OP.CLOSE, payload: Buffer.from([0x03]) }), 1002],
    ...[0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535].map((c) => [`code ${c}`, encodeFrame({ opcode: OP.CLOSE, payload: closePayload(c) }), 1002]),
    ['reason not UTF-8', encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1000, Buffer.from([0xc3, 0x28])) }), 1007],
    ['126-byte close', encodeFrame({ opcode: OP.CLOSE, payload: closePayload(1000, Buffer.alloc(124, 0x61)) }), 1002],
  ];
  for (const [name, frame, code] of cases) {
    const ws = await open();
    ws.write(frame);
    await expectClose(ws, code, name);
  }
});

test('ping/pong: pongs carry the ping payload (0 and 125 bytes, binary); a 126-byte or fragmented ping is 1002', async () => {
  const ws = await open();
  try {
    const payloads = [Buffer.alloc(0), Buffer.alloc(125, 0xfe), Buffer.from([0, 255, 1, 254])];
    for (const p of payloads) ws.send({ opcode: OP.PING, payload: p });
    await ws.waitFrame(() => ws.frames.filter((f) => f.opcode === OP.PONG).length >= 3, 3000, 'three pongs');
    const pongs = ws.frames.filter((f) => f.opcode === OP.PONG);
    payloads.forEach((p, i) => assert.ok(pongs[i].payload.equals(p), `pong ${i}`));
    assert.ok(pongs.every((f) => f.fin && !f.masked));
  } finally {
    ws.destroy();
  }
  let ws2 = await open();
  ws2.send({ opcode: OP.PING, payload: Buffer.alloc(126) });
  await expectClose(ws2, 1002, '126-byte ping');
  ws2 = await open();
  ws2.send({ opcode: OP.PING, fin: false, payload: 'x' });
  await expectClose(ws2, 1002, 'fragmented ping');
});

test('protocol violations: 1002 for reserved bits, opcodes, unmasked frames, stray or interleaved continuations', async () => {
  const cases = [
    ['RSV1', { opcode: OP.TEXT, payload: 'x', rsv: 4 }],
    ['RSV2 on a ping', { opcode: OP.PING, payload: 'x', rsv: 2 }],
    ['opcode 0x3', { opcode: 0x3, payload: 'x' }],
    ['opcode 0x7', { opcode: 0x7 }],
    ['opcode 0xB', { opcode: 0xb }],
    ['opcode 0xF', { opcode: 0xf, payload: 'x' }],
    ['unmasked', { opcode: OP.TEXT, payload: 'x', mask: false }],
    ['continuation without a start', { opcode: OP.CONT, payload: 'x' }],
  ];
  for (const [name, frame] of cases) {
    const ws = await open();
    ws.send(frame);
    await expectClose(ws, 1002, name);
  }
  const ws = await open();
  ws.send({ opcode: OP.TEXT, fin: false, payload: 'a' });
  ws.send({ opcode: OP.BINARY, payload: 'b' });
  await expectClose(ws, 1002, 'a new message inside a fragmented one');
});

test(`limits: max_message_bytes (${MAX_BYTES}) whole and fragmented: exactly is echoed, one more byte is 1009`, async () => {
  let ws = await open();
  ws.send({ opcode: OP.BINARY, payload: Buffer.alloc(MAX_BYTES, 1) });
  const [f] = await dataFrames(ws, 1, 'the echo of a maximal message');
  assert.equal(f.payload.length, MAX_BYTES);
  ws.destroy();
  ws = await open();
  ws.send({ opcode: OP.TEXT, payload: Buffer.alloc(MAX_BYTES + 1, 0x61) });
  await expectClose(ws, 1009, 'one frame over the limit');
  ws = await open();
  ws.send({ opcode: OP.BINARY, fin: false, payload: Buffer.alloc(MAX_BYTES / 2) });
  ws.send({ opcode: OP.CONT, fin: true, payload: Buffer.alloc(MAX_BYTES / 2 + 1) });
  await expectClose(ws, 1009, 'fragments over the limit');
});

test(`limits: max_message_fragments (${MAX_FRAGMENTS}): exactly is echoed, one more frame is 1008`, async () => {
  const frames = (n) => {
    const out = [encodeFrame({ opcode: OP.TEXT, fin: false, payload: 'f0' })];
    for (let i = 1; i < n - 1; i++) out.push(encodeFrame({ opcode: OP.CONT, fin: false, payload: i % 2 ? '' : `f${i}` }));
    out.push(encodeFrame({ opcode: OP.CONT, fin: true, payload: 'end' }));
    return Buffer.concat(out);
  };
  let ws = await open();
  ws.write(frames(MAX_FRAGMENTS));
  const [f] = await dataFrames(ws, 1, `the echo of a ${MAX_FRAGMENTS}-frame message`);
  assert.match(f.payload.toString(), /^f0f2.*end$/);
  ws.destroy();
  ws = await open();
  ws.write(frames(MAX_FRAGMENTS + 1));
  const c = await expectClose(ws, 1008, 'one frame too many');
  assert.match(c.reason, /fragments/);
});

test('the echo target still serves after all of the above', async () => {
  const ws = await open();
  try {
    ws.send({ opcode: OP.TEXT, payload: 'still here' });
    const [f] = await dataFrames(ws, 1, 'an echo');
    assert.equal(f.payload.toString(), 'still here');
  } finally {
    ws.destroy();
  }
});
