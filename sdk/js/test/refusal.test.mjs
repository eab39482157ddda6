// Refusals and failed attempts, against scripted servers (docs/protocol.md
// sections 2 and 4, docs/sdk.md "Errors"): the token travels as a
// subprotocol, never in a URL; a refusal in band (101, one error message, a
// 44xx close) ends as exactly one typed error and no retry loop; a refusal as
// a plain HTTP status, an 'error' without 'close' (Node's undici), a socket
// that never opens: each attempt ends exactly once, as one typed error.
//
// The WebSocket implementation is helpers.mjs's (`ws` on Node 20; the
// built-in one when run by implementations.test.mjs): what an implementation
// cannot tell (the HTTP status) is asserted only where it can.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Client, createClient, HubbubError, WebSocket, wsPackage, _internal, scripted, welcome, refuseInBand, refuseHttp,
  waitFor, waitState, sleep,
} from './helpers.mjs';

const FAST = { backoffBaseMs: 20, backoffCapMs: 100 };
const QUIET_MS = 300; /* how long "no second connection / error" is waited for */
const SEES_STATUS = WebSocket === wsPackage; /* only `ws` says which HTTP status refused an upgrade */
/* A JWT-shaped token: what the tests look for in URLs and messages. */
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlLXNlY3JldA';

/** A Client with `errors` and `states` recorded from the start. */
function recorded(opts) {
  const c = new Client();
  c.errors = [];
  c.states = [];
  c.on('error', (e) => {
    e.stateSeen = c.state; /* what an 'error' listener sees: the state the error led to */
    c.errors.push(e);
  });
  c.onStateChange((s) => c.states.push(s));
  c.opts = { WebSocket, token: TOKEN, ...FAST, ...opts };
  return c;
}

async function withServer(onConn, serverOpts, fn) {
  const s = await scripted(onConn, serverOpts);
  const clients = [];
  try {
    await fn(s, (c) => (clients.push(c), c));
  } finally {
    for (const c of clients) c.close();
    await s.close();
  }
}

const protocolsOf = (u) => u.protocols.split(/\s*,\s*/);

test('the token travels as a subprotocol (hubbub.v1 first) and never in a URL', { timeout: 10000 }, async () => {
  await withServer((ws, i) => {
    ws.send(welcome());
    ws.on('message', (m) => {
      const msg = JSON.parse(m.toString());
      if (msg.id) ws.send(JSON.stringify({ type: 'ack', id: msg.id }));
    });
    if (i === 0) setTimeout(() => ws.close(1011, 'scripted close'), 200);
  }, {}, async (s, track) => {
    const c = track(recorded({ url: s.url }));
    c.subscribe('chat', () => {});
    await c.connect(c.opts);
    await waitFor(() => s.conns.length === 2 && c.state === 'open', 5000, 'the reconnect');
    for (const u of s.upgrades) {
      assert.ok(!u.url.includes(TOKEN) && !/token=/.test(u.url), `token in the URL: ${u.url}`);
      assert.deepEqual(protocolsOf(u), ['hubbub.v1', 'hubbub.token.' + TOKEN]);
    }
    assert.equal(s.upgrades[1].url, '/api/v1/ws?subscribe=chat', 'subscriptions still go on the URL');
    assert.equal(s.conns[1].protocol, 'hubbub.v1', 'the server chose the version, not the token');
    for (const e of c.errors) assert.ok(!e.message.includes(TOKEN), e.message);
  });
});

test("tokenTransport 'query' (servers older than the subprotocol): ?token=, no subprotocol offered", { timeout: 10000 }, async () => {
  await withServer((ws) => ws.send(welcome()), { subprotocol: false }, async (s, track) => {
    const c = track(recorded({ url: s.url, tokenTransport: 'query' }));
    await c.connect(c.opts);
    assert.equal(s.upgrades[0].url, '/api/v1/ws?token=' + TOKEN);
    assert.equal(s.upgrades[0].protocols, '');
  });
});

/* docs/protocol.md section 2: every refusal the server makes in band. */
const REFUSALS = [
  ['token_expired', 4401], ['invalid_token', 4401], ['missing_token', 4401], ['token_revoked', 4410],
  ['origin_forbidden', 4403], ['bad_request', 4400], ['invalid_event_name', 4422], ['too_many_subscriptions', 4422],
];
for (const [code, closeCode] of REFUSALS) {
  test(`refused in band with ${code} (${closeCode}): one error, state closed, no retry, everything waiting rejects`, { timeout: 10000 }, async () => {
    await withServer(refuseInBand(code, closeCode, 'the scripted ' + code), {}, async (s, track) => {
      const c = track(recorded({ url: s.url }));
      const sub = c.subscribe('x', () => {});
      const queued = c.publish('x', { data: { n: 1 } });
      const connected = c.connect(c.opts);
      await assert.rejects(connected, (e) => e instanceof HubbubError && e.code === code);
      assert.equal(c.state, 'closed');
      await assert.rejects(queued, (e) => e.code === code && e.closeCode === closeCode && e.eventName === 'x');
      await assert.rejects(sub.ready, (e) => e.code === code);
      await sleep(QUIET_MS);
      assert.equal(s.upgrades.length, 1, 'no second attempt');
      assert.equal(c.errors.length, 1, c.errors.map((e) => e.code).join());
      const e = c.errors[0];
      assert.equal(await connected.catch((x) => x), e, 'connect() rejects with the emitted error itself');
      assert.deepEqual([e.code, e.closeCode, e.reason, e.message], [code, closeCode, code, 'the scripted ' + code]);
      assert.equal(e.status, undefined);
      assert.deepEqual(c.states, ['connecting', 'closed']);
      assert.equal(e.stateSeen, 'closed', 'the listener sees that the client stopped');
    });
  });
}

for (const [code, closeCode] of [['token_expired', 4401], ['invalid_token', 4401], ['token_revoked', 4410]]) {
  test(`refused with ${code} (${closeCode}) and getToken given: one error, a fresh token, connected`, { timeout: 10000 }, async () => {
    await withServer((ws, i, req) => {
      if (req.headers['sec-websocket-protocol'].includes('hubbub.token.fresh-')) ws.send(welcome());
      else refuseInBand(code, closeCode)(ws);
    }, {}, async (s, track) => {
      let calls = 0;
      const c = track(recorded({ url: s.url, getToken: () => 'fresh-' + ++calls }));
      await c.connect({ ...c.opts, token: TOKEN });
      assert.equal(calls, 1);
      assert.deepEqual(c.errors.map((e) => [e.code, e.closeCode, e.stateSeen]), [[code, closeCode, 'reconnecting']]);
      assert.deepEqual(protocolsOf(s.upgrades[1]), ['hubbub.v1', 'hubbub.token.fresh-1']);
      assert.deepEqual(c.states, ['connecting', 'reconnecting', 'open']);
    });
  });
}

test('a token still refused after getToken: retried with backoff, one error per attempt, never a tight loop', { timeout: 15000 }, async () => {
  await withServer(refuseInBand('token_expired', 4401), {}, async (s, track) => {
    let calls = 0;
    const c = track(recorded({ url: s.url, backoffBaseMs: 100, backoffCapMs: 400, getToken: () => (calls++, TOKEN) }));
    c.connect(c.opts);
    await sleep(2000);
    const n = s.upgrades.length;
    /* Full jitter over [0, min(400, 100 * 2^k)): a few attempts in 2 s, never hundreds. */
    assert.ok(n >= 3 && n < 40, `${n} attempts in 2 s`);
    await waitFor(() => c.errors.length >= n, 2000, 'one error per attempt');
    assert.ok(c.errors.every((e) => e.code === 'token_expired' && e.closeCode === 4401));
    assert.ok(calls >= n - 1 && calls <= n + 1, `getToken before every retry: ${calls} calls, ${n} attempts`);
    assert.notEqual(c.state, 'closed');
  });
});

test('shutting_down (1013): retried with backoff until the server takes the connection', { timeout: 10000 }, async () => {
  await withServer((ws, i) => {
    if (i < 2) refuseInBand('shutting_down', 1013)(ws);
    else ws.send(welcome());
  }, {}, async (s, track) => {
    const c = track(recorded({ url: s.url }));
    await c.connect(c.opts);
    assert.deepEqual(c.errors.map((e) => [e.code, e.closeCode]), [['shutting_down', 1013], ['shutting_down', 1013]]);
    assert.equal(s.upgrades.length, 3);
  });
});

test('a refusal message whose close never comes still ends the attempt, once', { timeout: 10000 }, async () => {
  let late = null;
  await withServer((ws) => {
    ws.send(JSON.stringify({ type: 'error', code: 'origin_forbidden', message: 'not from that page' }));
    late = ws; /* and no close: the client must not wait for the connect timeout */
  }, {}, async (s, track) => {
    const c = track(recorded({ url: s.url, connectTimeoutMs: 60000 }));
    const t0 = Date.now();
    await assert.rejects(c.connect(c.opts), (e) => e.code === 'origin_forbidden' && e.closeCode === 4403);
    assert.ok(Date.now() - t0 >= _internal.ERROR_CLOSE_GRACE_MS - 50, 'the close was given its grace');
    late.close(4403, 'origin_forbidden');
    await sleep(QUIET_MS);
    assert.equal(c.errors.length, 1);
    assert.equal(s.upgrades.length, 1);
  });
});

test('an error message without id after the welcome is a request error: the connection stays open', { timeout: 10000 }, async () => {
  await withServer((ws) => {
    ws.send(welcome());
    setTimeout(() => ws.send(JSON.stringify({ type: 'error', code: 'invalid_json', message: 'unreadable' })), 20);
  }, {}, async (s, track) => {
    const c = track(recorded({ url: s.url }));
    await c.connect(c.opts);
    await waitFor(() => c.errors.length === 1, 3000, 'the error');
    assert.equal(c.errors[0].code, 'invalid_json');
    await sleep(QUIET_MS);
    assert.equal(c.state, 'open');
  });
});

test('a plain HTTP 401 (a server that does not refuse in band): connection_refused, never stuck in connecting', { timeout: 20000 }, async () => {
  await withServer(undefined, { onUpgrade: refuseHttp(401, 'invalid_token') }, async (s, track) => {
    const c = track(recorded({ url: s.url, maxReconnectAttempts: 2 }));
    const err = await c.connect(c.opts).catch((e) => e);
    assert.ok(err instanceof HubbubError);
    assert.equal(c.state, 'closed');
    assert.ok(c.errors.length >= 1 && c.errors[0].code === 'connection_refused', c.errors.map((e) => e.code).join());
    if (SEES_STATUS) {
      /* `ws` reports the status: 401 stands for close 4401, and without getToken that stops at once. */
      assert.equal(err, c.errors[0]);
      assert.deepEqual([err.code, err.status, err.closeCode, c.errors.length, s.upgrades.length], ['connection_refused', 401, 1006, 1, 1]);
    } else {
      /* The status is hidden: the SDK cannot tell a refusal from a network error, and retries with backoff. */
      assert.deepEqual(c.errors.map((e) => e.code), ['connection_refused', 'connection_refused', 'connection_refused', 'reconnect_failed']);
      assert.equal(err.code, 'reconnect_failed');
      assert.equal(s.upgrades.length, 3);
    }
  });
});

test('a plain HTTP 503: connection_refused, retried with backoff', { timeout: 20000 }, async () => {
  await withServer((ws) => ws.send(welcome()), {
    onUpgrade: (req, socket, i) => i < 2 && refuseHttp(503, 'too_many_connections')(req, socket),
  }, async (s, track) => {
    const c = track(recorded({ url: s.url }));
    await c.connect(c.opts);
    assert.deepEqual(c.errors.map((e) => e.code), ['connection_refused', 'connection_refused']);
    if (SEES_STATUS) assert.deepEqual(c.errors.map((e) => e.status), [503, 503]);
  });
});

test('a server older than the subprotocol (101 without hubbub.v1): connection_refused, retried', { timeout: 20000 }, async () => {
  await withServer((ws) => ws.send(welcome()), { subprotocol: false }, async (s, track) => {
    const c = track(recorded({ url: s.url, maxReconnectAttempts: 1 }));
    await assert.rejects(c.connect(c.opts), (e) => e.code === 'reconnect_failed');
    assert.deepEqual(c.errors.map((e) => e.code), ['connection_refused', 'connection_refused', 'reconnect_failed']);
    if (SEES_STATUS) assert.match(c.errors[0].message, /Server sent no subprotocol/);
    assert.equal(s.upgrades.length, 2);
    assert.deepEqual(c.errors.map((e) => e.stateSeen), ['reconnecting', 'reconnecting', 'closed']);
  });
});

/* ---- implementations that misbehave, played by a fake WebSocket ----- */

/** A WebSocket constructor whose instances do what `script(ws, n)` makes them do. */
function fakeWebSocket(script) {
  const made = [];
  class FakeWebSocket {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = 0;
      this.closed = 0;
      made.push(this);
      script(this, made.length - 1);
    }
    send() {}
    close() {
      this.closed++;
    }
  }
  FakeWebSocket.made = made;
  return FakeWebSocket;
}

test("'error' and never 'close' before the open (Node's undici on a refused upgrade): the attempt ends at once, once", { timeout: 10000 }, async () => {
  const Fake = fakeWebSocket((ws, n) => {
    if (n === 0) {
      setTimeout(() => ws.onerror({ type: 'error', message: 'Received network error or non-101 status code.' }), 5);
      setTimeout(() => ws.onclose({ code: 1006, reason: '' }), 300); /* a late close changes nothing */
    } else {
      setTimeout(() => ws.onmessage({ data: welcome() }), 5);
    }
  });
  const c = recorded({ url: 'ws://127.0.0.1:9', WebSocket: Fake });
  try {
    await c.connect(c.opts);
    assert.deepEqual(c.errors.map((e) => [e.code, e.closeCode]), [['connection_refused', 1006]]);
    assert.match(c.errors[0].message, /non-101/);
    assert.equal(Fake.made[0].closed, 1, 'the failed socket is closed by the client');
    await sleep(500);
    assert.equal(c.errors.length, 1, 'the late close changed nothing');
    assert.equal(c.state, 'open');
    assert.equal(Fake.made.length, 2);
  } finally {
    c.close();
  }
});

test("'error' and never 'close' after the open: the close is waited for a bounded grace, then the link is lost once", { timeout: 10000 }, async () => {
  const Fake = fakeWebSocket((ws, n) => {
    setTimeout(() => {
      ws.onopen({});
      ws.onmessage({ data: welcome() });
      if (n === 0) setTimeout(() => ws.onerror({ type: 'error' }), 20);
    }, 5);
  });
  const c = recorded({ url: 'ws://127.0.0.1:9', WebSocket: Fake });
  try {
    await c.connect(c.opts);
    const t0 = Date.now();
    await waitFor(() => Fake.made.length === 2 && c.state === 'open', 5000, 'the reconnect');
    assert.ok(Date.now() - t0 >= _internal.ERROR_CLOSE_GRACE_MS - 50, 'the close was given its grace');
    assert.deepEqual(c.errors.map((e) => [e.code, e.closeCode]), [['connection_lost', 1006]]);
    assert.equal(Fake.made[0].closed, 1);
  } finally {
    c.close();
  }
});

test("'error' then 'close' (browsers, ws): one error, with the close's code", { timeout: 10000 }, async () => {
  const Fake = fakeWebSocket((ws, n) => {
    if (n === 0) {
      setTimeout(() => {
        ws.onerror({ type: 'error' });
        ws.onclose({ code: 1006, reason: '' });
      }, 5);
    } else {
      setTimeout(() => ws.onmessage({ data: welcome() }), 5);
    }
  });
  const c = recorded({ url: 'ws://127.0.0.1:9', WebSocket: Fake });
  try {
    await c.connect(c.opts);
    // The close's own code (1006), not the grace fallback's: the attempt
    // ended on the close, without waiting out the grace.
    assert.deepEqual(c.errors.map((e) => [e.code, e.closeCode]), [['connection_refused', 1006]]);
  } finally {
    c.close();
  }
});

test('a socket that never opens: connect_timeout, retried', { timeout: 10000 }, async () => {
  const Fake = fakeWebSocket((ws, n) => {
    if (n > 0) setTimeout(() => ws.onmessage({ data: welcome() }), 5);
  });
  const c = recorded({ url: 'ws://127.0.0.1:9', WebSocket: Fake, connectTimeoutMs: 100 });
  try {
    await c.connect(c.opts);
    assert.deepEqual(c.errors.map((e) => e.code), ['connect_timeout']);
    assert.equal(Fake.made[0].closed, 1);
  } finally {
    c.close();
  }
});

test('a WebSocket constructor that throws: connect_failed, retried', { timeout: 10000 }, async () => {
  const Fake = fakeWebSocket((ws, n) => {
    if (n === 0) throw new SyntaxError('An invalid or duplicated subprotocol was specified');
    setTimeout(() => ws.onmessage({ data: welcome() }), 5);
  });
  const c = recorded({ url: 'ws://127.0.0.1:9', WebSocket: Fake });
  try {
    await c.connect(c.opts);
    assert.deepEqual(c.errors.map((e) => e.code), ['connect_failed']);
  } finally {
    c.close();
  }
});

test('getToken failing or returning a token no subprotocol can carry: token_refresh_failed, retried', { timeout: 10000 }, async () => {
  await withServer((ws) => ws.send(welcome()), {}, async (s, track) => {
    let n = 0;
    const answers = [() => { throw new Error('backend down'); }, () => '', () => 'has spaces and =', () => TOKEN];
    const c = track(recorded({ url: s.url, token: undefined, getToken: () => answers[n++]() }));
    await c.connect(c.opts);
    assert.deepEqual(c.errors.map((e) => e.code), ['token_refresh_failed', 'token_refresh_failed', 'token_refresh_failed']);
    assert.match(c.errors[0].message, /backend down/);
    assert.match(c.errors[2].message, /subprotocol/);
    assert.equal(c.errors[0].cause.message, 'backend down');
    assert.deepEqual(protocolsOf(s.upgrades[0]), ['hubbub.v1', 'hubbub.token.' + TOKEN]);
  });
});

test('createClient with a refused token: the constructor does not throw; the refusal is an error event', { timeout: 10000 }, async () => {
  await withServer(refuseInBand('invalid_token', 4401), {}, async (s, track) => {
    const errors = [];
    const c = track(createClient({ url: s.url, token: TOKEN, WebSocket }));
    c.on('error', (e) => errors.push(e.code));
    await waitState(c, 'closed', 5000);
    assert.deepEqual(errors, ['invalid_token']);
  });
});
