// The fan-out flush window (flush_interval_ms, docs/operations.md): after a
// quiet spell a delivery is written at once; one that follows within the
// window waits for the window's end, so a busy subscriber gets several
// frames per system call. Replies (HTTP responses, acks, pongs) never wait.
// Asserted by order and by lower bounds only: a slow machine can only make
// the gaps larger.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
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
  srv = await startServer({ threads: 1, config: { flush_interval_ms: WINDOW_MS } });
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

test('a reply on the same connection takes the held deliveries with it, in order', async () => {
  const r = room();
  const sub = await srv.join(t, r, { subscribe: ['w'] });
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
  await sub.close();
});
