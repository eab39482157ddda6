// Client-side protocol behaviour that a well-behaved hubbub cannot easily be
// made to show on demand (close codes, a dead link, a missing welcome): a tiny
// scripted WebSocket server in this process plays the server's part. Every
// other SDK test runs against the real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { REPO, createClient, HubbubError, waitFor, waitState, sleep } from './helpers.mjs';

const { WebSocketServer, WebSocket } = createRequire(path.join(REPO, 'package.json'))('ws');
const FAST = { backoffBaseMs: 20, backoffCapMs: 100 };

const welcome = (extra = {}) => JSON.stringify({
  type: 'welcome', protocol: 1, connection_id: crypto.randomUUID(),
  room: { organization_id: 'o', plugin_id: 'p', event_id: 'e', session_id: 's' },
  user_id: 'u', scopes: ['session'], expires_at: 0, ping_interval_ms: 25000,
  limits: { max_message_bytes: 65536, max_data_bytes: 32768, max_subscriptions: 256 }, ...extra,
});

/** A scripted server: onConn(ws, index, url) for every connection; records every message. */
async function scripted(onConn) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const s = { conns: [], urls: [], received: [], wss, url: `ws://127.0.0.1:${wss.address().port}` };
  wss.on('connection', (ws, req) => {
    const i = s.conns.length;
    s.conns.push(ws);
    s.urls.push(req.url);
    ws.on('message', (m) => s.received.push({ conn: i, msg: JSON.parse(m.toString()) }));
    onConn(ws, i, req.url);
  });
  s.close = () => {
    for (const ws of s.conns) ws.terminate();
    return new Promise((r) => wss.close(r));
  };
  return s;
}

function client(s, opts = {}) {
  const c = createClient({ url: s.url, token: 't0', WebSocket, ...FAST, ...opts });
  c.errors = [];
  c.on('error', (e) => c.errors.push(e));
  return c;
}

for (const code of [1002, 1003, 1007, 1009, 4400, 4401, 4403, 4499]) {
  test(`close ${code}: no reconnect, state closed, error carries the code`, { timeout: 10000 }, async () => {
    const s = await scripted((ws) => {
      ws.send(welcome());
      setTimeout(() => ws.close(code, 'scripted'), 30);
    });
    const c = client(s);
    try {
      await waitState(c, 'closed', 3000);
      await sleep(300);
      assert.equal(s.conns.length, 1, 'no second connection');
      const e = c.errors.at(-1);
      assert.ok(e instanceof HubbubError);
      assert.equal(e.code, 'connection_refused');
      assert.equal(e.closeCode, code);
      assert.equal(e.reason, 'scripted');
    } finally {
      c.close();
      await s.close();
    }
  });
}

for (const code of [1001, 1011, 4000, 4001, 4008]) {
  test(`close ${code}: reconnects`, { timeout: 10000 }, async () => {
    const s = await scripted((ws, i) => {
      ws.send(welcome());
      if (i === 0) setTimeout(() => ws.close(code, 'scripted'), 30);
    });
    const c = client(s, code === 4008 ? { backoffBaseMs: 5, backoffCapMs: 400 } : {});
    try {
      await waitFor(() => s.conns.length === 2 && c.state === 'open', 5000, 'second connection');
      assert.deepEqual(c.errors, []);
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
    assert.match(s.urls[0], /^\/api\/v1\/ws\?token=t0$/, 'the given token first');
    assert.match(s.urls[1], /token=fresh-\d$/);
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

test('a publish in flight when the link drops rejects with connection_lost and is not re-sent', { timeout: 10000 }, async () => {
  const s = await scripted((ws, i) => {
    ws.send(welcome());
    if (i === 0) ws.on('message', () => ws.terminate()); /* never acks, just dies */
  });
  const c = client(s);
  try {
    await waitState(c, 'open', 3000);
    await assert.rejects(c.publish('x', { data: { once: true } }), (e) => e.code === 'connection_lost');
    await waitFor(() => s.conns.length === 2 && c.state === 'open', 5000, 'reconnect');
    await sleep(200);
    assert.equal(s.received.filter((r) => r.msg.type === 'publish').length, 1);
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
    assert.equal(c.errors.at(-1).code, 'reconnect_failed');
    assert.equal(s.conns.length, 4, 'the first attempt and three retries');
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
    assert.ok(!/subscribe=/.test(s.urls[0]), `nothing to subscribe to at the first upgrade: ${s.urls[0]}`);
    assert.match(s.urls[1], /[?&]subscribe=x,y(&|$)/);
    const sent = (i) => s.received.filter((r) => r.conn === i).map((r) => `${r.msg.type} ${r.msg.eventName}`);
    assert.deepEqual(sent(0), ['subscribe x', 'subscribe y']);
    assert.deepEqual(sent(1).sort(), ['subscribe y', 'unsubscribe z']);
    assert.deepEqual(c.errors.filter((e) => e.code !== 'connection_lost'), []);
  } finally {
    c.close();
    await s.close();
  }
});
