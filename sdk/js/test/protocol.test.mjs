// Client-side protocol behaviour that a well-behaved hubbub cannot easily be
// made to show on demand (close codes, a dead link, a missing welcome): a tiny
// scripted WebSocket server in this process (helpers.mjs) plays the server's
// part. Refusals are in refusal.test.mjs; pubsub and reconnect tests use the
// real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, HubbubError, WebSocket, waitFor, waitState, sleep, scripted, welcome } from './helpers.mjs';

const FAST = { backoffBaseMs: 20, backoffCapMs: 100 };

function client(s, opts = {}) {
  const c = createClient({ url: s.url, token: 't0', WebSocket, ...FAST, ...opts });
  c.errors = [];
  c.on('error', (e) => c.errors.push(e));
  return c;
}

/* After the welcome, a close that forbids reconnecting: the client stops, with
 * one error naming the close. A reason with a space is prose, not a code. */
const STOPS = [[1002, 'connection_refused'], [1003, 'connection_refused'], [1007, 'connection_refused'], [1009, 'connection_refused'],
  [4400, 'connection_refused'], [4401, 'token_expired'], [4403, 'connection_refused'], [4410, 'token_revoked'], [4499, 'connection_refused'],
  [1000, 'connection_closed']];
for (const [code, expected] of STOPS) {
  test(`close ${code} after the welcome: no reconnect, state closed, one ${expected} error`, { timeout: 10000 }, async () => {
    const s = await scripted((ws) => {
      ws.send(welcome());
      setTimeout(() => ws.close(code, 'scripted close'), 30);
    });
    const c = client(s);
    try {
      await waitState(c, 'closed', 3000);
      await sleep(300);
      assert.equal(s.conns.length, 1, 'no second connection');
      assert.equal(c.errors.length, 1, c.errors.map((e) => e.code).join());
      const e = c.errors[0];
      assert.ok(e instanceof HubbubError);
      assert.equal(e.code, expected);
      assert.equal(e.closeCode, code);
      assert.equal(e.reason, 'scripted close');
    } finally {
      c.close();
      await s.close();
    }
  });
}

test('a close reason that is a code becomes the error code', { timeout: 10000 }, async () => {
  const s = await scripted((ws) => {
    ws.send(welcome());
    setTimeout(() => ws.close(4403, 'origin_forbidden'), 30);
  });
  const c = client(s);
  try {
    await waitState(c, 'closed', 3000);
    assert.deepEqual(c.errors.map((e) => [e.code, e.closeCode, e.reason]), [['origin_forbidden', 4403, 'origin_forbidden']]);
  } finally {
    c.close();
    await s.close();
  }
});

for (const code of [1001, 1011, 1013, 4000, 4001, 4008]) {
  test(`close ${code}: one connection_lost error, then reconnects`, { timeout: 10000 }, async () => {
    const s = await scripted((ws, i) => {
      ws.send(welcome());
      if (i === 0) setTimeout(() => ws.close(code, 'scripted close'), 30);
    });
    const c = client(s, code === 4008 ? { backoffBaseMs: 5, backoffCapMs: 400 } : {});
    try {
      await waitFor(() => s.conns.length === 2 && c.state === 'open', 5000, 'second connection');
      assert.deepEqual(c.errors.map((e) => [e.code, e.closeCode, e.reason]), [['connection_lost', code, 'scripted close']]);
    } finally {
      c.close();
      await s.close();
    }
  });
}

test('4401 with getToken: a fresh token is fetched and used', { timeout: 10000 }, async () => {
  const s = await scripted((ws, i) => {
    ws.send(welcome());
    if (i === 0) setTimeout(() => ws.close(4401, 'token expired'), 30);
  });
  let n = 0;
  const c = client(s, { getToken: () => 'fresh-' + ++n });
  try {
    await waitFor(() => s.conns.length === 2 && c.state === 'open', 5000, 'reconnect');
    /* `ws` joins the list with ',', undici and browsers with ', ' (RFC 7230 lists allow both). */
    assert.match(s.upgrades[0].protocols, /^hubbub\.v1, ?hubbub\.token\.t0$/, 'the given token first');
    assert.match(s.upgrades[1].protocols, /^hubbub\.v1, ?hubbub\.token\.fresh-\d$/);
    for (const u of s.upgrades) assert.equal(u.url, '/api/v1/ws', 'no token in the URL');
    assert.deepEqual(c.errors.map((e) => e.code), ['token_expired']);
  } finally {
    c.close();
    await s.close();
  }
});

test('subscriptions are re-sent after a reconnect, then the offline queue, in order', { timeout: 10000 }, async () => {
  const s = await scripted((ws, i) => {
    ws.send(welcome());
    ws.on('message', (m) => {
      const msg = JSON.parse(m.toString());
      if (msg.id && msg.type !== 'ping') ws.send(JSON.stringify({ type: 'ack', id: msg.id, message_id: 'm-' + msg.id }));
    });
  });
  const c = client(s);
  try {
    c.subscribe('a', () => {});
    c.subscribe('b', () => {});
    await c.subscribed('b');
    s.conns[0].terminate();
    await waitState(c, 'reconnecting', 3000);
    c.publish('a', { data: { n: 1 } });
    c.publish('b', { data: { n: 2 } });
    await waitFor(() => s.received.filter((r) => r.conn >= 1).length >= 4, 5000, 'replay');
    const replay = s.received.filter((r) => r.conn >= 1).map((r) => `${r.msg.type}:${r.msg.eventName}`);
    assert.deepEqual(replay.slice(0, 4), ['subscribe:a', 'subscribe:b', 'publish:a', 'publish:b']);
  } finally {
    c.close();
    await s.close();
  }
});

test('a publish in flight when the link drops is sent again after the reconnect with the same idempotency key', { timeout: 10000 }, async () => {
  const s = await scripted((ws, i) => {
    ws.send(welcome());
    ws.on('message', (m) => {
      const msg = JSON.parse(m.toString());
      if (msg.type !== 'publish') return;
      if (i === 0) ws.terminate(); /* never acks, just dies */
      else ws.send(JSON.stringify({ type: 'ack', id: msg.id, message_id: 'm-first' }));
    });
  });
  const c = client(s);
  try {
    await waitState(c, 'open', 3000);
    const ack = await c.publish('x', { data: { once: true } });
    assert.equal(ack.message_id, 'm-first');
    const sent = s.received.filter((r) => r.msg.type === 'publish');
    assert.deepEqual(sent.map((r) => r.conn), [0, 1], 'sent once on each connection');
    assert.match(sent[0].msg.idempotency_key, /^sdk-[0-9a-f-]{32,36}$/);
    assert.equal(sent[1].msg.idempotency_key, sent[0].msg.idempotency_key, 'the same key: the server answers the first result');
    await c.publish('y', { data: {} });
    const keys = s.received.filter((r) => r.msg.type === 'publish').map((r) => r.msg.idempotency_key);
    assert.equal(new Set(keys).size, 2, 'another publish, another key');
  } finally {
    c.close();
    await s.close();
  }
});

test('application pings every ping interval; a link that stops answering is dropped and replaced', { timeout: 10000 }, async () => {
  const s = await scripted((ws, i) => {
    ws.send(welcome({ ping_interval_ms: 100 }));
    /* The first server answers pings for a while, then goes silent (a dead NAT entry). */
    let answered = 0;
    ws.on('message', (m) => {
      const msg = JSON.parse(m.toString());
      if (msg.type === 'ping' && (i > 0 || answered++ < 2)) ws.send(JSON.stringify({ type: 'pong', id: msg.id }));
    });
  });
  const c = client(s, { pongTimeoutMs: 250 });
  try {
    await waitFor(() => s.conns.length === 2, 5000, 'the dead link to be replaced');
    const pings = s.received.filter((r) => r.conn === 0 && r.msg.type === 'ping');
    assert.ok(pings.length >= 3, `${pings.length} pings`);
    assert.match(pings[0].msg.id, /^p\d+$/);
    await waitState(c, 'open', 3000);
    assert.deepEqual(c.errors.map((e) => e.code), ['connection_lost']);
    assert.match(c.errors[0].message, /no answer to a ping within pongTimeoutMs/);
  } finally {
    c.close();
    await s.close();
  }
});

test('no welcome within connectTimeoutMs: the attempt is abandoned and retried', { timeout: 10000 }, async () => {
  const s = await scripted((ws, i) => {
    if (i > 0) ws.send(welcome());
  });
  const c = client(s, { connectTimeoutMs: 200 });
  try {
    await waitState(c, 'open', 5000);
    assert.equal(s.conns.length, 2);
    assert.deepEqual(c.errors.map((e) => e.code), ['connect_timeout']);
    assert.match(c.errors[0].message, /connectTimeoutMs \(200 ms\)/);
  } finally {
    c.close();
    await s.close();
  }
});

test('unknown message types and fields are ignored; events carry only data to callbacks', { timeout: 10000 }, async () => {
  const s = await scripted((ws) => {
    ws.send(welcome({ future_field: { x: 1 } }));
    ws.on('message', (m) => {
      const msg = JSON.parse(m.toString());
      if (msg.type !== 'subscribe') return;
      ws.send(JSON.stringify({ type: 'ack', id: msg.id }));
      ws.send(JSON.stringify({ type: 'presence', who: 'x' }));
      ws.send('not json');
      ws.send(JSON.stringify([1, 2]));
      ws.send(JSON.stringify({ type: 'event', eventName: 'other', data: { no: 1 }, scope: 'session' }));
      ws.send(JSON.stringify({ type: 'event', eventName: 'x', data: { yes: 1 }, scope: 'event', message_id: 'm1', sent_at: 5, extra: true }));
    });
  });
  const c = client(s);
  const got = [];
  try {
    c.subscribe('x', (...args) => got.push(args));
    await waitFor(() => got.length === 1, 3000, 'the event');
    await sleep(100);
    assert.deepEqual(got, [[{ yes: 1 }, { eventName: 'x', scope: 'event', messageId: 'm1', sentAt: 5 }]]);
    assert.equal(c.state, 'open');
    assert.deepEqual(c.errors, []);
  } finally {
    c.close();
    await s.close();
  }
});

test('maxReconnectAttempts: gives up with reconnect_failed', { timeout: 10000 }, async () => {
  const s = await scripted((ws) => ws.close(1011));
  const c = client(s, { maxReconnectAttempts: 3 });
  try {
    await waitState(c, 'closed', 5000);
    assert.equal(s.conns.length, 4, 'the first attempt and three retries');
    assert.deepEqual(c.errors.map((e) => `${e.code} ${e.closeCode}`), [...Array(4).fill('connection_refused 1011'), 'reconnect_failed 1011']);
    assert.equal(c.errors.at(-1).cause, c.errors.at(-2), 'the last attempt is the cause');
  } finally {
    c.close();
    await s.close();
  }
});

test('reconnecting, the subscriptions go on the URL; names the welcome lists need no subscribe message', { timeout: 10000 }, async () => {
  // Connection 0: an older server (no "subscribed" in the welcome): every
  // name by message. Connection 1: the names were on the URL and the server
  // lists x only: y still goes by message, and z, no longer wanted, is dropped.
  const s = await scripted((ws, i) => {
    ws.send(welcome(i === 1 ? { subscribed: ['x', 'z'] } : {}));
    ws.on('message', (m) => {
      const msg = JSON.parse(m.toString());
      if (msg.id) ws.send(JSON.stringify({ type: 'ack', id: msg.id }));
    });
    if (i === 0) setTimeout(() => ws.close(1011, 'scripted'), 300);
  });
  const c = client(s);
  try {
    await c.subscribe('x', () => {}).ready;
    await c.subscribe('y', () => {}).ready;
    await waitFor(() => s.conns.length === 2, 5000, 'the reconnect');
    await waitState(c, 'open', 3000);
    await c.subscribed('x');
    await c.subscribed('y');
    await sleep(100);
    assert.equal(s.upgrades[0].url, '/api/v1/ws', 'nothing to subscribe to at the first upgrade');
    assert.equal(s.upgrades[1].url, '/api/v1/ws?subscribe=x,y');
    const sent = (i) => s.received.filter((r) => r.conn === i).map((r) => `${r.msg.type} ${r.msg.eventName}`);
    assert.deepEqual(sent(0), ['subscribe x', 'subscribe y']);
    assert.deepEqual(sent(1).sort(), ['subscribe y', 'unsubscribe z']);
    assert.deepEqual(c.errors.map((e) => [e.code, e.closeCode]), [['connection_lost', 1011]]);
  } finally {
    c.close();
    await s.close();
  }
});

test('a request without ack within ackTimeoutMs rejects with timeout, emitted once; the link stays', { timeout: 10000 }, async () => {
  const s = await scripted((ws) => ws.send(welcome())); /* never answers anything */
  const c = client(s, { ackTimeoutMs: 100 });
  try {
    await waitState(c, 'open', 3000);
    await assert.rejects(c.publish('x', { data: {} }), (e) => e.code === 'timeout' && /ackTimeoutMs \(100 ms\)/.test(e.message) && e.eventName === 'x');
    assert.deepEqual(c.errors.map((e) => e.code), ['timeout']);
    assert.equal(c.state, 'open');
  } finally {
    c.close();
    await s.close();
  }
});
