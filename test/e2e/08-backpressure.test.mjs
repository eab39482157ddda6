// Backpressure: a subscriber that never reads is closed once more than
// max_output_bytes wait for it, while a healthy subscriber in the same room
// keeps receiving every message, in order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, mintJwt, publishBody, withTimeout } from './harness.mjs';

let srv, t;
const MAX_OUTPUT = 65536;

before(async () => {
  srv = await startServer({ config: { max_output_bytes: MAX_OUTPUT } });
  t = await srv.tenant();
});
after(async () => {
  await srv?.stop();
});

test('a non-reading subscriber is closed; the other subscriber gets all 8 MB', async () => {
  const r = room();
  const fast = await srv.join(t, r, { subscribe: ['flood'] });
  const slow = await srv.rawWs(mintJwt(t.signingSecret, srv.claims(t, r)));
  try {
    await slow.waitJson((m) => m.type === 'welcome');
    slow.sendJson({ type: 'subscribe', eventName: 'flood', id: 's1' });
    await slow.waitJson((m) => m.type === 'ack' && m.id === 's1');
    slow.pause(); // from now on this client never reads

    // 10 KB events, one publish at a time: a reader that keeps up never has
    // more than a couple of events queued, far under the cap. 8 MB in all,
    // because Linux autotunes the server's socket send buffer up to
    // tcp_wmem[2] (4 MB) and that kernel buffer is filled before the
    // server's own queue (the one max_output_bytes caps) starts to grow.
    const N = 800;
    const pad = 'x'.repeat(10000);
    for (let i = 0; i < N; i++) {
      const res = await srv.publish(t.apiToken, `{"scope":{"type":"session","event_id":"${r.event_id}","session_id":"${r.session_id}"},"payload":{"event":{"eventName":"flood","data":{"i":${i},"pad":"${pad}"}}}}`);
      assert.equal(res.status, 202, res.text);
    }

    // The healthy subscriber receives every message despite the stuck one.
    await fast.waitFor(() => fast.events('flood').length >= N, 10000, `${N} events on the healthy subscriber`);
    // Publishes sent concurrently on separate HTTP connections have no order
    // between them (each is ordered only after its own predecessor): check all arrived once.
    assert.deepEqual(fast.events('flood').map((m) => m.data.i).sort((a, b) => a - b), [...Array(N).keys()], 'all, once each');
    assert.equal(fast.closeInfo, null, 'the healthy subscriber stays connected');

    // Now read what the slow one was sent: the kernel buffers, then the end.
    slow.resume();
    await withTimeout(slow.ended, 8000, 'the slow subscriber to be disconnected').catch((e) => {
      const got = slow.messages.filter((m) => m.type === 'event').length;
      throw new Error(`${e.message}: it received ${got}/${N} events and was not closed`);
    });
    const got = slow.messages.filter((m) => m.type === 'event').length;
    assert.ok(got < N, `the slow subscriber was cut off (got ${got} of ${N})`);
    const close = await slow.closed;
    if (close.code !== null) assert.equal(close.code, 4000, 'slow-consumer close code');

    // The server is fine afterwards.
    const health = await srv.http('GET', '/healthz');
    assert.equal(health.status, 200);
    fast.send({ type: 'ping', id: 'after-flood' });
    await fast.waitFor((m) => m.type === 'pong' && m.id === 'after-flood');
  } finally {
    slow.destroy();
    await fast.close();
  }
});

test('a reader that is merely slow (reads in bursts) under the limit is not disconnected', async () => {
  const r = room();
  const c = await srv.rawWs(mintJwt(t.signingSecret, srv.claims(t, r)));
  try {
    await c.waitJson((m) => m.type === 'welcome');
    c.sendJson({ type: 'subscribe', eventName: 'trickle', id: 's' });
    await c.waitJson((m) => m.type === 'ack');
    c.pause();
    const delivered = await srv.metric('deliveries_total');
    // ~20 KB in total: far under the 64 KiB output cap plus kernel buffers.
    for (let i = 0; i < 10; i++) {
      const res = await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'trickle', { i, pad: 'y'.repeat(2000) }));
      assert.equal(res.status, 202);
    }
    // all ten queued to the paused reader before it reads again
    await srv.waitMetric('deliveries_total', (v) => v >= delivered + 10, 'ten deliveries to the paused reader');
    c.resume();
    await c.waitJson(() => c.messages.filter((m) => m.type === 'event').length >= 10, 3000, '10 events');
    assert.equal(c.isEnded, false);
  } finally {
    c.destroy();
  }
});
