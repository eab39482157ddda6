// Presence in the SDK (docs/sdk.md, "Presence"): presence.get() and
// presence.subscribe() against the real server, a fresh snapshot after a
// reconnect, argument checks; and against a scripted server the cases the
// real one only shows in large rooms (a truncated delta, a missing version).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, restartableServer, readyTenant, mintToken, room, uuid, WebSocket, createTestClient, waitFor, waitState,
  scripted, welcome, HubbubError,
} from './helpers.mjs';

const FAST = { backoffBaseMs: 50, backoffCapMs: 400 };

/** Every state a presence subscriber was called with. */
function watch(client, options) {
  const states = [];
  const off = client.presence.subscribe((st) => states.push(st), options);
  return { states, off, last: () => states[states.length - 1] };
}
const ids = (st) => st.members.map((m) => m.userId).sort();

test('two clients see each other; joins, leaves, info; get() pages', { timeout: 60000 }, async () => {
  const srv = await startServer({ config: { presence_interval_ms: 100 } });
  const clients = [];
  try {
    const t = await readyTenant(srv);
    const r = room();
    const join = async (sub, extra = {}) => {
      const c = createTestClient({ url: srv.wsUrl, token: mintToken(t, r, { sub, ...extra }), WebSocket });
      clients.push(c);
      await c.connected;
      return c;
    };
    const a = await join('ada', { info: { name: 'Ada' } });
    const w = watch(a);
    await w.off.ready;
    const b = await join('bob', { info: { name: 'Bob' } });
    await waitFor(() => w.last() && w.last().count === 2 && ids(w.last()).join() === 'ada,bob', 5000, 'ada sees bob');
    assert.equal(w.last().complete, true);
    assert.deepEqual(w.last().members.find((m) => m.userId === 'bob'), { userId: 'bob', info: { name: 'Bob' } });
    assert.ok(w.states.some((s) => s.joins.some((m) => m.userId === 'bob')));
    // A second subscriber of the same scope is told at once what the first knows.
    const late = [];
    const off2 = a.presence.subscribe((st) => late.push(st));
    await waitFor(() => late.length > 0, 2000, 'the late subscriber');
    assert.equal(late[0].count, 2);
    off2();
    const page = await b.presence.get({ limit: 1 });
    assert.equal(page.count, 2);
    assert.equal(page.members.length, 1);
    assert.equal(page.truncated, true);
    const rest = await b.presence.get({ cursor: page.cursor, limit: 1 });
    assert.equal(rest.truncated, false);
    assert.deepEqual([page.members[0].userId, rest.members[0].userId].sort(), ['ada', 'bob']);
    b.close();
    await waitFor(() => w.last().count === 1 && w.last().leaves.includes('bob'), 5000, 'bob leaving');
    w.off();
  } finally {
    for (const c of clients) c.close();
    await srv.stop();
  }
});

test('arguments are checked; a scope the token does not allow is scope_forbidden', { timeout: 30000 }, async () => {
  const srv = await startServer();
  const clients = [];
  try {
    const t = await readyTenant(srv);
    const c = createTestClient({ url: srv.wsUrl, token: mintToken(t, room()), WebSocket });
    clients.push(c);
    await c.connected;
    assert.throws(() => c.presence.subscribe('nope'), (e) => e instanceof HubbubError && e.code === 'invalid_argument');
    assert.throws(() => c.presence.subscribe(() => {}, { scope: 'organization' }), (e) => e.code === 'invalid_argument');
    assert.throws(() => c.presence.subscribe(() => {}, { scop: 'event' }), (e) => e.code === 'invalid_argument');
    await assert.rejects(c.presence.get({ limit: 0 }), (e) => e.code === 'invalid_argument');
    await assert.rejects(c.presence.get({ cursor: 'abc' }), (e) => e.code === 'invalid_argument');
    await assert.rejects(c.presence.get({ scope: 'event' }), (e) => e.code === 'scope_forbidden');
    const off = c.presence.subscribe(() => assert.fail('no snapshot for a forbidden scope'), { scope: 'event' });
    await assert.rejects(off.ready, (e) => e.code === 'scope_forbidden');
    assert.ok(c.errors.some((e) => e.code === 'scope_forbidden'));
  } finally {
    for (const c of clients) c.close();
    await srv.stop();
  }
});

test('after a reconnect the subscriber gets a fresh snapshot, never the stale list', { timeout: 60000 }, async () => {
  const s = await restartableServer();
  const clients = [];
  try {
    const t = s.tenant();
    await s.start();
    const r = room();
    const a = createTestClient({ url: s.wsUrl, token: mintToken(t, r, { sub: 'ada' }), WebSocket, ...FAST });
    const b = createTestClient({ url: s.wsUrl, token: mintToken(t, r, { sub: 'bob' }), WebSocket, reconnect: false });
    clients.push(a, b);
    await Promise.all([a.connected, b.connected]);
    const w = watch(a);
    await waitFor(() => w.last() && w.last().count === 2, 8000, 'two present');
    await s.kill('SIGKILL'); /* bob's connection dies with it and does not come back */
    await waitState(a, 'reconnecting', 5000);
    const before = w.states.length;
    await s.start();
    await waitState(a, 'open', 8000);
    await waitFor(() => w.states.length > before && w.last().count === 1, 8000, 'a fresh snapshot');
    assert.deepEqual(ids(w.last()), ['ada']);
    assert.equal(w.last().complete, true);
    for (const c of clients) c.close();
    await s.kill('SIGTERM');
    s.assertClean();
  } finally {
    for (const c of clients) c.close();
    await s.cleanup();
  }
});

test('scripted: a truncated delta in a small room is followed by a fresh page; a missing version by a new snapshot', { timeout: 30000 }, async () => {
  const member = (u) => ({ user_id: u });
  const srv = await scripted((ws) => {
    ws.send(welcome({ limits: { max_message_bytes: 65536, max_data_bytes: 32768, max_subscriptions: 256, presence_list_max: 100 } }));
    let subs = 0;
    ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString());
      if (m.type === 'presence.subscribe') {
        subs++;
        const members = subs === 1 ? [member('a')] : [member('a'), member('b'), member('c'), member('d')];
        ws.send(JSON.stringify({ type: 'presence.snapshot', id: m.id, scope: 'session', version: subs === 1 ? 1 : 9, count: members.length, members, truncated: false }));
        if (subs === 1) {
          // 3 joined, only 1 listed: the SDK's list is a sample, the count small.
          ws.send(JSON.stringify({ type: 'presence.delta', scope: 'session', version: 2, count: 4, joins: [member('b')], leaves: [], truncated: true }));
        }
      } else if (m.type === 'presence.get') {
        ws.send(JSON.stringify({ type: 'presence.snapshot', id: m.id, scope: 'session', version: 2, count: 4, members: ['a', 'b', 'c', 'd'].map(member), truncated: false }));
        // then a version that skips one: the SDK asks for a snapshot again
        ws.send(JSON.stringify({ type: 'presence.delta', scope: 'session', version: 4, count: 3, joins: [], leaves: ['d'], truncated: false }));
      }
    });
  });
  const c = createTestClient({ url: srv.url, token: 'a.b.c', WebSocket });
  try {
    await c.connected;
    const w = watch(c);
    await waitFor(() => w.states.length >= 3, 5000, 'snapshot, delta, page');
    assert.deepEqual(ids(w.states[0]), ['a']);
    assert.equal(w.states[1].complete, false);
    assert.equal(w.states[1].count, 4);
    assert.deepEqual(ids(w.states[2]), ['a', 'b', 'c', 'd']);
    assert.equal(w.states[2].complete, true);
    await waitFor(() => srv.received.filter((x) => x.msg.type === 'presence.subscribe').length === 2, 5000, 'a second snapshot');
    await waitFor(() => w.last().count === 4 && w.states.length >= 4, 5000, 'the new snapshot applied');
    // the delta with the gap was not applied: d is still there, as the snapshot says
    assert.ok(w.states.every((st) => st.count !== 3));
  } finally {
    c.close();
    await srv.close();
  }
});
