// Memory per idle subscribed connection (docs/performance.md, W4): the heap
// the server reports in /metrics, not timing. A crowd in one session shares
// one copy of the room key, and a subscriber that has nothing to send holds
// no output ring; a regression that gives either back shows up here.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, uuid, publishBody, poll } from './harness.mjs';

const N = 300;
// The design budget per idle subscribed connection is 700 bytes of RSS; the
// heap part (hb_conn, its hb_sub, allocator rounding) is ~560 bytes.
const HEAP_PER_CONN_MAX = 700;

let srv, t;
before(async () => {
  srv = await startServer({ threads: 1 });
  t = await srv.tenant();
});
after(async () => {
  await srv?.stop();
});

async function metric(name) {
  const r = await srv.http('GET', '/metrics');
  const m = new RegExp(`^hubbub_${name} (\\d+)$`, 'm').exec(r.text);
  assert.ok(m, `metric ${name} in /metrics`);
  return Number(m[1]);
}

test(`${N} idle subscribers of one session cost under ${HEAP_PER_CONN_MAX} heap bytes each, before and after a delivery`, async () => {
  const r = room();
  const token = await srv.connToken(t, { ...r, user_id: 'u-' + uuid().slice(0, 8) });
  // One warm-up connection: per-thread caches and the room's index entries.
  const warm = await srv.connect(token);
  await warm.subscribe('mem');
  const h0 = await metric('heap_bytes');

  const clients = [];
  try {
    for (let i = 0; i < N; i++) {
      const c = await srv.connect(token);
      await c.subscribe('mem');
      clients.push(c);
    }
    const h1 = await metric('heap_bytes');
    const idle = (h1 - h0) / N;
    assert.ok(idle < HEAP_PER_CONN_MAX, `${idle.toFixed(0)} heap bytes per idle subscribed connection (${h0} -> ${h1})`);

    // Every subscriber gets one message; once it is written they are idle
    // again and must hold no output buffers.
    const marker = uuid();
    const res = await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'mem', { marker }));
    assert.equal(res.status, 202, res.text);
    for (const c of [warm, ...clients]) await c.waitFor((m) => m.data?.marker === marker, 5000, 'the delivery');
    const h2 = await poll(async () => {
      const h = await metric('heap_bytes');
      return (h - h0) / N < HEAP_PER_CONN_MAX ? h : false;
    }, 5000, 'heap back under the idle budget after the delivery');
    assert.ok((h2 - h0) / N < HEAP_PER_CONN_MAX);
  } finally {
    for (const c of clients) await c.close();
  }
  // Everything they held is given back (the room stays: `warm` is in it).
  await poll(async () => (await metric('websockets_open')) === 1, 5000, 'the clients gone');
  const h3 = await metric('heap_bytes');
  assert.ok(h3 - h0 < 16 * 1024, `heap after the clients left: ${h3 - h0} bytes above the start`);
  await warm.close();
});

// A busy subscriber's output ring is kept by its I/O thread for the next
// flush instead of going back to malloc every time (conn.c, ring_take);
// rings the thread did not need for a whole sweep interval are freed, so a
// burst leaves no memory behind once the crowd is idle again.
test('after bursts of deliveries the spare output rings are given back', async () => {
  // history_size 0: the kept messages of history are memory on purpose (19-history).
  const srv2 = await startServer({ threads: 1, config: { conn_publish_rate: 0, token_publish_rate: 0, history_size: 0 } });
  try {
    const t2 = await srv2.tenant();
    const r = room();
    const token = await srv2.connToken(t2, { ...r, user_id: 'u-' + uuid().slice(0, 8) });
    const pub = await srv2.connect(token);
    await pub.subscribe('warm');
    const metric2 = async (name) => {
      const res = await srv2.http('GET', '/metrics');
      return Number(new RegExp(`^hubbub_${name} (\\d+)$`, 'm').exec(res.text)[1]);
    };
    const subs = [];
    for (let i = 0; i < 200; i++) {
      const c = await srv2.connect(token);
      await c.subscribe('burst');
      subs.push(c);
    }
    const h0 = await metric2('heap_bytes');
    // Two bursts of 40 publishes sent back to back: each subscriber gets
    // them in one flush, so its ring grows past HB_OUT_RING_KEEP slots the
    // first time and is taken from (and given back to) the spare stack the
    // second time.
    for (let burst = 0; burst < 2; burst++) {
      const last = `${burst}-39`;
      for (let k = 0; k < 40; k++)
        pub.send({ type: 'publish', eventName: 'burst', data: { n: `${burst}-${k}` } });
      for (const c of subs) await c.waitFor((m) => m.data?.n === last, 10000, `burst ${burst}`);
    }
    const h1 = await poll(async () => {
      const h = await metric2('heap_bytes');
      return (h - h0) / subs.length < 100 ? h : false;
    }, 5000, 'the spare rings freed after the bursts');
    assert.ok((h1 - h0) / subs.length < 100, `${((h1 - h0) / subs.length).toFixed(0)} bytes per subscriber left`);
    for (const c of subs) await c.close();
    await pub.close();
  } finally {
    await srv2.stop();
  }
});
