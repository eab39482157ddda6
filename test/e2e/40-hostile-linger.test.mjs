// Hostile catalogue, early answers and lingering closes: H132-H135.
//
// An early error answer (401, 404, 413, 415... sent before the body was
// read) must reach a client that writes its whole body before it reads, as
// most HTTP client libraries do: the server answers, half-closes, and reads
// and discards the rest for a bounded time and number of bytes
// (HB_HTTP_LINGER_MS, HB_HTTP_LINGER_MAX_BYTES) instead of resetting.
// H136-H138 (header names, 408, fragments) are in 40-hostile-conformance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import net from 'node:net';
import { limit, poll } from './harness.mjs';
import { hostileSuite, assertOneError, splitResponses, sleep } from './hostile-lib.mjs';

const ctx = hostileSuite();
const MiB = 1024 * 1024;
const LINGER_MS = limit('HB_HTTP_LINGER_MS');
const LINGER_MAX_BYTES = limit('HB_HTTP_LINGER_MAX_BYTES');
const SWEEP_MS = limit('HB_SWEEP_INTERVAL_MS');

let python = null;
try {
  python = execFileSync('python3', ['--version']).toString().trim();
} catch {
  /* scripts/install-deps.sh installs it; without it the Python cases say so */
}

/** The head of a POST to the publish endpoint; `headers` override the valid ones. */
function postHead(length, headers = {}) {
  const h = {
    Host: 'a',
    Authorization: `Bearer ${ctx.t.apiToken}`,
    'Content-Type': 'application/json',
    'Content-Length': String(length),
    ...headers,
  };
  let s = 'POST /api/v1/pub_subs HTTP/1.1\r\n';
  for (const [k, v] of Object.entries(h)) if (v !== null) s += `${k}: ${v}\r\n`;
  return s + '\r\n';
}

/**
 * What Python's http.client, curl and most libraries do: write the request
 * and its whole body, and only then read. The socket is paused (nothing is
 * read) until the last byte was handed to the kernel. Resolves with
 * { responses, raw, error } once the server closed or `timeoutMs` passed.
 */
function writeThenRead(port, head, bodyBytes, { timeoutMs = 60000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.pause();
    const chunks = [];
    let error = null;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const raw = Buffer.concat(chunks);
      resolve({ raw: raw.toString('latin1').slice(0, 2000), responses: splitResponses(raw), error });
    };
    const timer = setTimeout(() => {
      error = error || new Error(`no close within ${timeoutMs} ms`);
      finish();
    }, timeoutMs);
    sock.on('data', (d) => chunks.push(d));
    sock.on('end', finish);
    sock.on('close', finish);
    sock.on('error', (e) => {
      error = error || e;
    });
    sock.on('connect', async () => {
      const block = Buffer.alloc(MiB, 0x61);
      sock.write(head);
      let left = bodyBytes;
      while (left > 0 && !error && !done) {
        const n = Math.min(left, block.length);
        left -= n;
        const last = left === 0;
        await new Promise((r) => {
          const ok = sock.write(n === block.length ? block : block.subarray(0, n), last ? r : undefined);
          if (!last) {
            if (ok) r();
            else {
              sock.once('drain', r);
              sock.once('close', r);
            }
          }
          if (last) sock.once('close', r);
        });
      }
      if (!done) sock.resume(); /* everything is written: now read the answer */
    });
  });
}

/**
 * POST with Python's http.client, one process for several requests (each on
 * a new connection): `cases` is [[size, headers]...]; resolves with one
 * { status, headers, body } or { error } per case.
 */
function pythonPosts(port, cases) {
  const script = `
import http.client, json, sys
port, cases, out = int(sys.argv[1]), json.loads(sys.argv[2]), []
for size, headers in cases:
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
    try:
        c.request('POST', '/api/v1/pub_subs', body=b'a' * size, headers=headers)
        r = c.getresponse()
        out.append({'status': r.status, 'headers': {k.lower(): v for k, v in r.getheaders()}, 'body': r.read().decode('utf-8', 'replace')})
    except Exception as e:
        out.append({'error': type(e).__name__ + ': ' + str(e)})
    finally:
        c.close()
print(json.dumps(out))
`;
  return new Promise((resolve) => {
    execFile('python3', ['-c', script, String(port), JSON.stringify(cases)], { timeout: 90000 }, (err, out, errOut) => {
      try {
        resolve(JSON.parse(out));
      } catch {
        resolve(cases.map(() => ({ error: `python3 failed: ${err?.message} ${out} ${errOut}` })));
      }
    });
  });
}

async function metric(name) {
  const r = await ctx.srv.http('GET', '/metrics');
  const m = new RegExp(`^hubbub_${name} (\\d+)$`, 'm').exec(r.text);
  assert.ok(m, `/metrics has hubbub_${name}`);
  return Number(m[1]);
}

function assertEarlyAnswer(ex, status, code, what) {
  assert.equal(ex.error, null, `${what}: the client saw ${ex.error?.code || ex.error?.message} instead of the answer; raw: ${ex.raw.slice(0, 300)}`);
  const r = assertOneError(ex, status, code);
  assert.match(r.headers.connection || '', /close/i, `${what}: Connection: close`);
}

const apiHeaders = () => ({ Authorization: `Bearer ${ctx.t.apiToken}`, 'Content-Type': 'application/json' });

test('H132 an over-size body written whole before reading (1, 4, 32 MiB): the client reads 413, not a reset', async () => {
  const before = await metric('lingering_closes_total');
  for (const size of [1 * MiB, 4 * MiB, 32 * MiB]) {
    const ex = await writeThenRead(ctx.srv.port, postHead(size), size);
    assertEarlyAnswer(ex, 413, 'payload_too_large', `${size / MiB} MiB`);
  }
  assert.ok((await metric('lingering_closes_total')) >= before + 3, 'each early answer is a lingering close');
  await ctx.alive();
});

test('H132 the same with Python http.client (1, 4, 32 MiB): 413 every time', { skip: !python && 'python3 is not installed (scripts/install-deps.sh all)' }, async () => {
  const sizes = [1 * MiB, 4 * MiB, 32 * MiB];
  const results = await pythonPosts(ctx.srv.port, sizes.map((size) => [size, apiHeaders()]));
  results.forEach((r, i) => {
    const what = `${sizes[i] / MiB} MiB`;
    assert.equal(r.error, undefined, `${what}: ${r.error}`);
    assert.equal(r.status, 413, `${what}: ${JSON.stringify(r).slice(0, 300)}`);
    assert.equal(JSON.parse(r.body).error.code, 'payload_too_large');
    assert.match(r.headers.connection || '', /close/i);
  });
  await ctx.alive();
});

test('H133 401 (unknown token) and 415 (not JSON) before a 4 MiB body: the client reads them', async () => {
  const size = 4 * MiB;
  let ex = await writeThenRead(ctx.srv.port, postHead(size, { Authorization: 'Bearer hbk_nope' }), size);
  assertEarlyAnswer(ex, 401, 'invalid_token', '401');
  ex = await writeThenRead(ctx.srv.port, postHead(size, { 'Content-Type': 'text/plain' }), size);
  assertEarlyAnswer(ex, 415, 'unsupported_media_type', '415');
  ex = await writeThenRead(ctx.srv.port, postHead(size).replace('/api/v1/pub_subs', '/api/v1/nowhere'), size);
  assertEarlyAnswer(ex, 404, 'not_found', '404');
  if (python) {
    const [r401, r415] = await pythonPosts(ctx.srv.port, [
      [size, { ...apiHeaders(), Authorization: 'Bearer hbk_nope' }],
      [size, { ...apiHeaders(), 'Content-Type': 'text/plain' }],
    ]);
    assert.equal(r401.status, 401, JSON.stringify(r401).slice(0, 300));
    assert.equal(r415.status, 415, JSON.stringify(r415).slice(0, 300));
  }
  await ctx.alive();
});

/**
 * Announce a 1 GB body, then keep writing (every `gapMs`, `chunk` bytes) after
 * the answer, reading all along. allowHalfOpen: the server's FIN after its
 * answer does not end our side. Resolves when the server closed for good.
 */
// waitAnswer: read the early answer before writing the body. A client that
// floods without reading can lose the answer to the reset that ends the
// lingering close at its byte bound (the kernel drops what was unread), so
// the flood test reads it first, as an HTTP client that checks for an early
// answer does, and then floods.
function writeOnAfterAnswer(port, { chunk, gapMs, maxBytes, timeoutMs, waitAnswer = false }) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const t0 = Date.now();
    const chunks = [];
    let answeredMs = null;
    let finMs = null;
    let written = 0;
    let done = false;
    const finish = (why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const raw = Buffer.concat(chunks);
      resolve({ responses: splitResponses(raw), raw: raw.toString('latin1').slice(0, 500), answeredMs, finMs, closedMs: Date.now() - t0, written, why });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    sock.on('data', (d) => {
      chunks.push(d);
      if (answeredMs === null && splitResponses(Buffer.concat(chunks)).length) answeredMs = Date.now() - t0;
    });
    sock.on('end', () => (finMs = Date.now() - t0));
    sock.on('error', () => finish('error'));
    sock.on('close', () => finish('close'));
    sock.on('connect', async () => {
      sock.write(postHead(1e9));
      // Bounded by the overall timer: it ends the connection (done) on time.
      if (waitAnswer) await poll(() => answeredMs !== null || done, timeoutMs, 'the early answer', 5).catch(() => {});
      const block = Buffer.alloc(chunk, 0x61);
      while (!done && written < maxBytes) {
        await new Promise((r) => {
          const ok = sock.write(block, () => {
            written += block.length;
            if (ok) r();
          });
          if (!ok) sock.once('drain', r);
          sock.once('close', r);
        });
        if (gapMs) await sleep(gapMs);
      }
    });
  });
}

test('H134 a body trickled on after an early 413: read and discarded until HB_HTTP_LINGER_MS, then closed', async () => {
  const cutBefore = await metric('lingering_closes_cut_total');
  const r = await writeOnAfterAnswer(ctx.srv.port, { chunk: 1024, gapMs: 50, maxBytes: 1e9, timeoutMs: LINGER_MS * 3 + 5000 });
  assert.equal(r.responses[0]?.status, 413, r.raw);
  assert.notEqual(r.finMs, null, 'the answer is followed by a half-close (FIN)');
  assert.notEqual(r.why, 'timeout', `the server kept the connection beyond ${LINGER_MS * 3 + 5000} ms`);
  const lingered = r.closedMs - r.answeredMs;
  assert.ok(lingered >= LINGER_MS - 2 * SWEEP_MS, `closed ${lingered} ms after the answer: the server must read for HB_HTTP_LINGER_MS (${LINGER_MS})`);
  assert.ok((await metric('lingering_closes_cut_total')) > cutBefore, 'a lingering close cut by its time bound is counted');
  await ctx.alive();
});

test('H135 a flood after an early 413: the server stops reading at HB_HTTP_LINGER_MAX_BYTES', async () => {
  const cutBefore = await metric('lingering_closes_cut_total');
  const r = await writeOnAfterAnswer(ctx.srv.port, { chunk: MiB, gapMs: 0, maxBytes: 4 * LINGER_MAX_BYTES, timeoutMs: 60000, waitAnswer: true });
  assert.equal(r.responses[0]?.status, 413, r.raw);
  assert.notEqual(r.why, 'timeout', 'the server closed');
  assert.ok(r.written >= LINGER_MAX_BYTES / 2, `the server read what it allows (${r.written} bytes written)`);
  assert.ok(r.written < 4 * LINGER_MAX_BYTES, `closed before ${r.written} bytes: the budget is ${LINGER_MAX_BYTES}`);
  assert.ok((await metric('lingering_closes_cut_total')) > cutBefore, 'a lingering close cut by its byte bound is counted');
  await ctx.alive();
});
