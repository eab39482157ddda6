// Recovery and gaps (docs/protocol.md section 6, docs/sdk.md "Nothing lost
// silently"), against a scripted server that plays hubbub's part exactly:
// the positions a welcome gives, events with offsets, a reconnect with
// since= answered recovered:true (with a replay) or recovered:false, and gap
// notices. The real server (one node, and two nodes on Redis) is in
// test/e2e/32-sdk-recovery.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, WebSocket, waitFor, waitState, scripted, welcome, _internal } from './helpers.mjs';

const FAST = { backoffBaseMs: 20, backoffCapMs: 100 };
const E = { s: '00000000000000a1', e: '00000000000000b2', o: '00000000000000c3' };
const positions = (s, e, o) => ({
  session: { epoch: E.s, offset: s }, event: { epoch: E.e, offset: e }, organization: { epoch: E.o, offset: o },
});
const event = (name, scope, offset, data) => JSON.stringify({
  type: 'event', eventName: name, data, scope, message_id: 'm' + scope + offset, sent_at: 1, offset,
});

/* A client that records everything it is told. */
function client(s, opts = {}) {
  const c = createClient({ url: s.url, token: 't0', WebSocket, ...FAST, ...opts });
  c.log = [];
  for (const ev of ['error', 'recovered', 'resync', 'gap']) c.on(ev, (x) => c.log.push([ev, ev === 'error' ? x.code : x]));
  return c;
}

/* The since= of upgrade i, or null. */
const sinceOf = (s, i) => new URL(s.upgrades[i].url, 'ws://x').searchParams.get('since');

test('positions: the welcome\'s, then each event\'s offset; a reconnect sends them as since= beside its names', { timeout: 10000 }, async () => {
  const s = await scripted((ws, i) => {
    ws.send(welcome({ positions: positions(4, 7, 0) }));
    if (i === 0) {
      ws.send(event('n', 'session', 5, { a: 1 }));
      ws.send(event('n', 'event', 9, { a: 2 }));
    }
  });
  const c = client(s);
  const got = [];
  c.subscribe('n', (data, meta) => got.push([data.a, meta.scope, meta.offset]));
  try {
    await waitFor(() => got.length === 2, 5000, 'two events');
    assert.deepEqual(got, [[1, 'session', 5], [2, 'event', 9]]);
    assert.equal(c.resumePosition, `h1.${E.s}.5.${E.e}.9.${E.o}.0`);
    assert.equal(sinceOf(s, 0), null, 'the first connection asks for nothing');
    s.conns[0].terminate();
    await waitFor(() => s.upgrades.length === 2 && c.state === 'open', 5000, 'reconnect');
    assert.equal(sinceOf(s, 1), `h1.${E.s}.5.${E.e}.9.${E.o}.0`);
    assert.equal(new URL(s.upgrades[1].url, 'ws://x').searchParams.get('subscribe'), 'n');
  } finally {
    c.close();
    await s.close();
  }
});

test('recovered:true: the replay before the welcome reaches the callbacks once, then \'recovered\'', { timeout: 10000 }, async () => {
  const s = await scripted((ws, i) => {
    if (i === 0) {
      ws.send(welcome({ positions: positions(4, 7, 0) }));
      ws.send(event('n', 'session', 5, { first: 5 }));
      return;
    }
    /* the replay (one of them delivered already: dropped), then the welcome */
    ws.send(event('n', 'session', 5, { r: 5 }));
    ws.send(event('n', 'session', 6, { r: 6 }));
    ws.send(event('n', 'event', 8, { r: 8 }));
    ws.send(welcome({ positions: positions(6, 8, 0), recovered: true }));
    ws.send(event('n', 'session', 6, { dup: 6 })); /* at the position: a duplicate */
    ws.send(event('n', 'session', 7, { live: 7 }));
  });
  const c = client(s);
  const got = [];
  c.subscribe('n', (data) => got.push(data));
  try {
    await waitFor(() => got.length === 1, 5000, 'the first event');
    s.conns[0].terminate();
    await waitFor(() => got.length === 4, 5000, 'replay and live');
    assert.equal(sinceOf(s, 1), `h1.${E.s}.5.${E.e}.7.${E.o}.0`);
    assert.deepEqual(got, [{ first: 5 }, { r: 6 }, { r: 8 }, { live: 7 }]);
    assert.deepEqual(c.log.filter(([ev]) => ev !== 'error'), [['recovered', { replayed: 2 }]]);
    assert.equal(c.resumePosition, `h1.${E.s}.7.${E.e}.8.${E.o}.0`);
  } finally {
    c.close();
    await s.close();
  }
});

test('recovered:false: \'resync\' with the scopes and reasons, and the welcome\'s positions from then on', { timeout: 10000 }, async () => {
  const s = await scripted((ws, i) => {
    if (i === 0) return ws.send(welcome({ positions: positions(4, 7, 0) }));
    ws.send(welcome({ positions: { ...positions(40, 70, 1), event: { epoch: 'ffffffffffffffff', offset: 3 } }, recovered: false,
      recovery: { failed: { event: 'epoch_changed', session: 'trimmed' } } }));
  });
  const c = client(s);
  let state = null;
  c.on('resync', () => (state = c.state));
  try {
    await waitState(c, 'open', 5000);
    s.conns[0].terminate();
    await waitFor(() => c.log.some(([ev]) => ev === 'resync'), 5000, 'resync');
    assert.deepEqual(c.log.filter(([ev]) => ev !== 'error'),
      [['resync', { cause: 'recovery_failed', scopes: { session: 'trimmed', event: 'epoch_changed' } }]]);
    assert.equal(state, 'open', 'emitted once the client is open');
    assert.equal(c.resumePosition, `h1.${E.s}.40.ffffffffffffffff.3.${E.o}.1`);
  } finally {
    c.close();
    await s.close();
  }
});

test('a gap notice: \'gap\' then \'resync\', the position moves past it; one at or behind the position changes nothing', { timeout: 10000 }, async () => {
  let conn0;
  const s = await scripted((ws, i) => {
    ws.send(welcome({ positions: positions(4, 7, 0), ...(i ? { recovered: true } : {}) }));
    if (i === 0) conn0 = ws;
  });
  const c = client(s);
  const got = [];
  c.subscribe('n', (data) => got.push(data));
  try {
    await waitState(c, 'open', 5000);
    conn0.send(JSON.stringify({ type: 'gap', scope: 'event', epoch: E.e, offset: 57, reason: 'trimmed' }));
    conn0.send(JSON.stringify({ type: 'gap', scope: 'event', epoch: E.e, offset: 50, reason: 'trimmed' })); /* behind */
    conn0.send(event('n', 'event', 57, { old: 57 })); /* covered by the notice: not delivered */
    conn0.send(event('n', 'event', 58, { next: 58 }));
    await waitFor(() => got.length === 1, 5000, 'the event after the gap');
    assert.deepEqual(got, [{ next: 58 }]);
    assert.deepEqual(c.log, [
      ['gap', { scope: 'event', epoch: E.e, offset: 57, reason: 'trimmed' }],
      ['resync', { cause: 'gap', scopes: { event: 'trimmed' } }],
    ]);
    assert.equal(c.resumePosition, `h1.${E.s}.4.${E.e}.58.${E.o}.0`);
    /* a new epoch (the history lost): the position is the notice's */
    conn0.send(JSON.stringify({ type: 'gap', scope: 'session', epoch: 'abcdefabcdefabcd', offset: 0, reason: 'epoch_changed' }));
    await waitFor(() => c.log.length === 4, 5000, 'second notice');
    assert.equal(c.resumePosition, `h1.abcdefabcdefabcd.0.${E.e}.58.${E.o}.0`);
    /* the next reconnect resumes from there */
    conn0.terminate();
    await waitFor(() => s.upgrades.length === 2 && c.state === 'open', 5000, 'reconnect');
    assert.equal(sinceOf(s, 1), `h1.abcdefabcdefabcd.0.${E.e}.58.${E.o}.0`);
  } finally {
    c.close();
    await s.close();
  }
});

test('names that do not fit the reconnect URL: no since=, and \'resync\' says why', { timeout: 10000 }, async () => {
  const s = await scripted((ws, i) => {
    ws.send(welcome({ positions: positions(1, 1, 1) }));
    ws.on('message', (m) => {
      const msg = JSON.parse(m.toString());
      if (msg.id && msg.type !== 'ping') ws.send(JSON.stringify({ type: 'ack', id: msg.id }));
    });
  });
  const c = client(s);
  try {
    for (let i = 0; i < 20; i++) c.subscribe('n'.repeat(110) + i, () => {}); /* over 2,048 bytes of names */
    await waitState(c, 'open', 5000);
    s.conns[0].terminate();
    await waitFor(() => c.log.some(([ev]) => ev === 'resync'), 5000, 'resync');
    assert.equal(sinceOf(s, 1), null);
    const too = 'too_many_subscriptions';
    assert.deepEqual(c.log.filter(([ev]) => ev === 'resync'),
      [['resync', { cause: 'recovery_failed', scopes: { session: too, event: too, organization: too } }]]);
  } finally {
    c.close();
    await s.close();
  }
});

test('another room, or a server without positions: nothing to recover, nothing emitted', { timeout: 10000 }, async () => {
  const s = await scripted((ws, i) => {
    if (i === 0) ws.send(welcome({ positions: positions(1, 1, 1) }));
    else if (i === 1) ws.send(welcome({ room: { organization_id: 'o', plugin_id: 'p', event_id: 'e', session_id: 'other' },
      positions: positions(1, 1, 1), recovered: false, recovery: { failed: { session: 'epoch_changed' } } }));
    else ws.send(welcome());
  });
  const c = client(s);
  try {
    await waitState(c, 'open', 5000);
    s.conns[0].terminate();
    await waitFor(() => s.conns.length === 2 && c.state === 'open', 5000, 'second');
    s.conns[1].terminate();
    await waitFor(() => s.conns.length === 3 && c.state === 'open', 5000, 'third');
    assert.notEqual(sinceOf(s, 2), null);
    assert.equal(c.resumePosition, null);
    assert.deepEqual(c.log.filter(([ev]) => ev !== 'error'), []);
  } finally {
    c.close();
    await s.close();
  }
});

test('positions and resume strings: only well-formed ones (a bad one would be refused as bad_request)', () => {
  const { positionsOf, resumeString, buildSocketUrl } = _internal;
  assert.equal(positionsOf(undefined), null);
  assert.equal(positionsOf({ session: { epoch: E.s, offset: 1 }, event: { epoch: E.e, offset: 1 } }), null);
  assert.equal(positionsOf(positions(-1, 0, 0)), null);
  assert.equal(positionsOf({ ...positions(0, 0, 0), event: { epoch: 'ABCDEFABCDEFABCD', offset: 0 } }), null);
  assert.equal(positionsOf(positions(2 ** 53, 0, 0)), null);
  assert.equal(resumeString(positionsOf(positions(1, 2, 3))), `h1.${E.s}.1.${E.e}.2.${E.o}.3`);
  assert.equal(buildSocketUrl('ws://h/?since=x&a=b', ['n'], null, 'h1.z'), 'ws://h/api/v1/ws?a=b&subscribe=n&since=h1.z');
});
