// The fan-out flush window (flush_interval_ms, docs/operations.md): after a
// quiet spell a delivery is written at once; one that follows within the
// window waits for the window's end, so a busy subscriber gets several
// frames per system call. Replies (HTTP responses, acks, pongs) never wait.
// Asserted by order and by lower bounds only: a slow machine can only make
// the gaps larger.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, room, uuid, publishBody } from './harness.mjs';

const WINDOW_MS = 1000; // the largest allowed: the held delivery is unmistakable
const SLACK_MS = 100;   // libuv timers have millisecond granularity

let srv, t;

/** An application-level ping; resolves with the pong. */
function ping(c) {
  const id = 'p-' + uuid().slice(0, 8);
  c.send({ type: 'ping', id });
  return c.waitFor((m) => m.type === 'pong' && m.id === id, WINDOW_MS * 5, `pong ${id}`);
}
before(async () => {
  // One I/O thread: the window is per thread.
  srv = await startServer({ threads: 1, config: { flush_interval_ms: WINDOW_MS, flush_adaptive: false } });
  t = await srv.tenant();
});
after(async () => {
  await srv?.stop();
});

test('a delivery after a quiet spell goes out at once; the next one waits for the window; replies never wait', async () => {
  const r = room();
  const sub = await srv.join(t, r, { subscribe: ['w'] });
  const other = await srv.join(t, room()); // a bystander in another room, for a pong
  const arrived = {};
  const order = [];
  const seen = (tag) => sub.waitFor((m) => m.data?.tag === tag, WINDOW_MS * 5, `delivery ${tag}`).then(() => {
    arrived[tag] = performance.now();
    order.push(`deliver ${tag}`);
  });

  const a = seen('a');
  const resA = await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'w', { tag: 'a' }));
  assert.equal(resA.status, 202, resA.text);
  await a;

  const b = seen('b');
  const resB = await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'w', { tag: 'b' }));
  assert.equal(resB.status, 202, resB.text);
  order.push('202 b');
  const pong = await ping(other);
  assert.equal(pong.type, 'pong');
  order.push('pong');
  await b;

  assert.deepEqual(order, ['deliver a', '202 b', 'pong', 'deliver b'], 'replies are written while the delivery is held');
  const gap = arrived.b - arrived.a;
  assert.ok(gap >= WINDOW_MS - SLACK_MS, `b arrived ${gap.toFixed(0)} ms after a; the window is ${WINDOW_MS} ms`);
  await sub.close();
  await other.close();
});

async function metric(server, name) {
  const res = await server.http('GET', '/metrics');
  return Number(new RegExp(`^hubbub_${name} (\\d+)$`, 'm').exec(res.text)[1]);
}

test('a reply on the same connection takes the held deliveries with it, in order', async () => {
  const r = room();
  const sub = await srv.join(t, r, { subscribe: ['w'] });
  const flushes0 = await metric(srv, 'fanout_flushes_total');
  // Open a window, then queue a held delivery for `sub`.
  const first = sub.waitFor((m) => m.data?.tag === 'first', WINDOW_MS * 5, 'first delivery');
  await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'w', { tag: 'first' }));
  await first;
  const marker = uuid();
  const res = await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'w', { marker }));
  assert.equal(res.status, 202, res.text);
  // The pong cannot overtake the delivery queued before it on this connection.
  const pong = await ping(sub);
  assert.equal(pong.type, 'pong');
  const iMsg = sub.messages.findIndex((m) => m.data?.marker === marker);
  const iPong = sub.messages.indexOf(pong);
  assert.ok(iMsg >= 0 && iMsg < iPong, `delivery at ${iMsg}, pong at ${iPong}`);
  // The window's timer then finds nothing left to write: one flush in all
  // (the first delivery's), not a second, empty one.
  await new Promise((res) => setTimeout(res, WINDOW_MS + 2 * SLACK_MS));
  assert.equal((await metric(srv, 'fanout_flushes_total')) - flushes0, 1, 'fan-out flushes');
  await sub.close();
});

// A flush writes HB_FLUSH_CHUNK_CONNS connections per loop turn and reads in
// between (io.c), so a publish that arrives during a long flush joins it
// instead of waiting for the whole flush and one more. The metrics count the
// turns: one delivery to N subscribers is one flush of ceil(N / chunk) turns.
test('a flush to many subscribers is written a chunk per loop turn', async () => {
  const limits = readFileSync(new URL('../../include/hubbub/limits.h', import.meta.url), 'utf8');
  const chunk = Number(/#define HB_FLUSH_CHUNK_CONNS (\d+)/.exec(limits)[1]);
  const n = 2 * chunk + 50;
  const srv2 = await startServer({ threads: 1 });
  const subs = [];
  try {
    const t2 = await srv2.tenant();
    const r = room();
    const token = await srv2.connToken(t2, { ...r, user_id: 'u-' + uuid().slice(0, 8) });
    for (let i = 0; i < n; i++) {
      const c = await srv2.connect(token);
      await c.subscribe('many');
      subs.push(c);
    }
    const f0 = await metric(srv2, 'fanout_flushes_total');
    const t0 = await metric(srv2, 'fanout_flush_turns_total');
    const marker = uuid();
    const res = await srv2.publish(t2.apiToken, publishBody({ type: 'session', ...r }, 'many', { marker }));
    assert.equal(res.status, 202, res.text);
    for (const c of subs) await c.waitFor((m) => m.data?.marker === marker, 10000, 'the delivery');
    assert.equal((await metric(srv2, 'fanout_flushes_total')) - f0, 1, 'one flush');
    assert.equal((await metric(srv2, 'fanout_flush_turns_total')) - t0, Math.ceil(n / chunk), `${n} connections, ${chunk} per turn`);
  } finally {
    for (const c of subs) await c.close();
    await srv2.stop();
  }
});
