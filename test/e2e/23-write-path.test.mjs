// The write path both ways (docs/operations.md, io_uring and flush_adaptive):
// with io_uring on (where the kernel allows it) and off, deliveries from HTTP
// and WebSocket publishes reach every subscriber once and in order; the
// server says at start which way it writes, and /metrics agrees. An idle
// thread holds nothing: its adaptive window stays off. No timing is
// asserted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, uuid, publishBody, observeFor } from './harness.mjs';

async function metric(srv, name) {
  const res = await srv.http('GET', '/metrics');
  const m = new RegExp(`^hubbub_${name} (\\d+)$`, 'm').exec(res.text);
  assert.ok(m, `metric ${name}`);
  return Number(m[1]);
}

for (const io_uring of [true, false]) {
  test(`deliveries with io_uring ${io_uring ? 'on' : 'off'}`, async () => {
    const srv = await startServer({ threads: 1, config: { io_uring, flush_adaptive: true } });
    try {
      const [, how] = await srv.waitLog(/writes: (io_uring|writev)/, { what: 'the write path log line' });
      if (!io_uring) {
        assert.equal(how, 'writev');
        await srv.waitLog(/writes: writev, not io_uring: off in the config/);
      }
      assert.equal(await metric(srv, 'uring_threads'), how === 'io_uring' ? 1 : 0);
      const sends0 = await metric(srv, 'uring_sends_total');

      const t = await srv.tenant();
      const r = room();
      const subs = [];
      for (let i = 0; i < 3; i++) subs.push(await srv.join(t, r, { subscribe: ['wp'] }));
      const N = 20;
      const tag = uuid();
      for (let i = 0; i < N; i++) {
        const res = await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'wp', { tag, i }));
        assert.equal(res.status, 202, res.text);
      }
      const ack = await subs[0].request({ type: 'publish', eventName: 'wp', data: { tag, i: N } });
      assert.equal(ack.type, 'ack', JSON.stringify(ack));
      const mine = (m) => m.type === 'event' && m.data?.tag === tag;
      for (const s of subs) await s.waitFor((m) => mine(m) && m.data.i === N, 5000, 'the last delivery');
      await observeFor(200, 'duplicates');
      for (const s of subs) {
        assert.deepEqual(s.messages.filter(mine).map((m) => m.data.i), [...Array(N + 1).keys()], 'all, once, in order');
      }
      if (how === 'io_uring') assert.ok((await metric(srv, 'uring_sends_total')) > sends0, 'sends went through io_uring');
      else assert.equal(await metric(srv, 'uring_sends_total'), 0);
      // a handful of publishes leaves a thread far from saturation
      assert.equal(await metric(srv, 'fanout_window_on'), 0);
      for (const s of subs) await s.close();
    } finally {
      await srv.stop();
    }
  });
}
