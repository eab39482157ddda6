// Presence under load: N connections (distinct users) join one session as
// fast as they can while observers watch. Every observer's last count is
// exact, and the presence messages each received are bounded by the time
// elapsed over presence_interval_ms, not by the number of joins; each lists
// at most presence_list_max members. Then everyone leaves: the count goes
// back to the observers alone.
//
// N is PRESENCE_LOAD_CONNS: 500 in the e2e suites, 5,000 in `make test`'s
// presence load step (release build) and in `make soak` (scripts/soak.sh):
// the descriptor limit (as the bench needs it: 20,000) and max_connections
// allow it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, mintJwt, poll, WebSocket, withTimeout } from './harness.mjs';

const N = Number(process.env.PRESENCE_LOAD_CONNS || 500);
const OBSERVERS = 5;
const INTERVAL_MS = 500;
const CONCURRENCY = 100; // handshakes in flight

/** A bare member: opened, welcomed, and then left alone (no bookkeeping). */
function bare(srv, token) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`${srv.wsUrl}/api/v1/ws?token=${token}`, { perMessageDeflate: false });
      ws.once('message', () => resolve(ws));
      ws.once('error', reject);
      ws.once('close', (code) => reject(new Error(`closed ${code} before the welcome`)));
    }),
    30000,
    'a member connection',
  );
}

test(`${N} connections join one session: exact counts, presence messages bounded by time`, { timeout: 600000 }, async () => {
  const srv = await startServer({ threads: 2, config: { presence_interval_ms: INTERVAL_MS, max_connections: N + 100 } });
  const t = await srv.tenant();
  const r = room();
  const token = (sub) => mintJwt(t.signingSecret, srv.claims(t, r, { sub, info: { n: sub } }));
  const members = [];
  try {
    const observers = [];
    for (let i = 0; i < OBSERVERS; i++) {
      const c = await srv.connect(token(`observer-${i}`));
      c.send({ type: 'presence.subscribe', id: 'sub' });
      await c.waitFor((m) => m.id === 'sub');
      c.since = Date.now();
      observers.push(c);
    }
    // The latest presence message: the last observer's snapshot may already
    // count everyone, and then no delta follows it.
    const last = (c) => c.messages.filter((m) => m.type === 'presence.delta' || m.type === 'presence.snapshot').at(-1);
    await poll(() => observers.every((c) => last(c)?.count === OBSERVERS), 10000, 'the observers see each other');

    const t0 = Date.now();
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < N) {
        const i = next++;
        members.push(await bare(srv, token(`u${i}`)));
      }
    }));
    const joinMs = Date.now() - t0;
    await poll(() => observers.every((c) => last(c).count === N + OBSERVERS), 30000,
      `every observer's count at ${N + OBSERVERS}; have ${observers.map((c) => last(c).count)}`);
    for (const c of observers) {
      const deltas = c.messages.filter((m) => m.type === 'presence.delta');
      const elapsed = Date.now() - c.since;
      assert.ok(deltas.length <= elapsed / INTERVAL_MS + 2,
        `${deltas.length} presence messages in ${elapsed} ms (interval ${INTERVAL_MS} ms) for ${N} joins`);
      assert.ok(deltas.every((d) => d.joins.length + d.leaves.length <= 100), 'at most presence_list_max listed');
      // versions follow each other: none lost
      for (let i = 1; i < deltas.length; i++) assert.equal(deltas[i].version, deltas[i - 1].version + 1);
    }
    const http = await srv.http('GET', `/api/v1/presence?scope=session&event_id=${r.event_id}&session_id=${r.session_id}&limit=1`,
      { headers: { Authorization: t.apiToken } });
    assert.equal(http.json.count, N + OBSERVERS);
    console.log(`# ${N} joins in ${joinMs} ms; ${observers[0].messages.filter((m) => m.type === 'presence.delta').length} presence messages per observer`);

    for (const ws of members) ws.close();
    await poll(() => observers.every((c) => last(c).count === OBSERVERS), 30000,
      `every observer's count back at ${OBSERVERS}; have ${observers.map((c) => last(c).count)}`);
    for (const c of observers) await c.close();
  } finally {
    for (const ws of members) ws.terminate();
    await srv.stop();
  }
});
