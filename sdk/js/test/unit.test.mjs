// SDK logic that needs no server: backoff bounds, close-code policy, how an
// attempt's end is reported, URLs and subprotocols, argument checks, and the
// queue before connect().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, HubbubError, PubSub, createClient, _internal } from '../dist/hubbub.mjs';

const { backoffDelay, closePolicy, lossOutcome, buildSocketUrl, socketProtocols, statusCloseCode } = _internal;

test('backoff: full jitter within [0, min(cap, base*2^n))', () => {
  const opts = { backoffBaseMs: 250, backoffCapMs: 10000 };
  for (let n = 0; n < 12; n++) {
    const ceiling = Math.min(10000, 250 * 2 ** n);
    assert.equal(backoffDelay(n, opts, () => 0), 0, 'lowest draw is 0 (full jitter)');
    const hi = backoffDelay(n, opts, () => 0.999999);
    assert.ok(hi < ceiling && hi >= ceiling - 1, `attempt ${n}: ${hi} vs ${ceiling}`);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(n, opts);
      assert.ok(d >= 0 && d < ceiling, `attempt ${n}: ${d} out of [0, ${ceiling})`);
    }
  }
});

test('backoff: defaults are 250 ms base and 10 s cap; huge attempts stay capped', () => {
  assert.equal(backoffDelay(0, {}, () => 0.999999), 249);
  assert.equal(backoffDelay(1000, {}, () => 0.999999), 9999);
  assert.equal(backoffDelay(1e9, { backoffBaseMs: 1, backoffCapMs: 500 }, () => 0.5), 250);
  assert.equal(backoffDelay(-3, {}, () => 0.5), 125, 'negative attempts count as 0');
});

test('backoff: the draws are spread (jitter), not a fixed sequence', () => {
  const seen = new Set();
  for (let i = 0; i < 50; i++) seen.add(backoffDelay(5, {}));
  assert.ok(seen.size > 20, `only ${seen.size} distinct delays`);
});

test('close codes: what the SDK does after each (docs/protocol.md section 4)', () => {
  for (const code of [1001, 1006, 1011, 1012, 1013, 4000, 4001, 4008, 4399, 4500]) {
    assert.equal(closePolicy(code, false), 'retry', String(code));
    assert.equal(closePolicy(code, true), 'retry', String(code));
  }
  for (const code of [1000, 1002, 1003, 1007, 1008, 1009, 4400, 4401, 4403, 4410, 4422, 4499]) assert.equal(closePolicy(code, false), 'stop', String(code));
  assert.equal(closePolicy(4401, true), 'refresh', '4401 reconnects with a fresh token when getToken is given');
  assert.equal(closePolicy(4410, true), 'refresh', '4410 (token revoked) too');
  for (const code of [4400, 4403, 4422, 4499, 1000, 1002]) assert.equal(closePolicy(code, true), 'stop', String(code));
});

test('an HTTP status of a refused upgrade stands for close code 4000 + status (4xx) or a retry', () => {
  assert.equal(statusCloseCode(401), 4401);
  assert.equal(statusCloseCode(403), 4403);
  assert.equal(statusCloseCode(400), 4400);
  assert.equal(statusCloseCode(404), 4404);
  for (const s of [408, 429, 500, 502, 503]) assert.equal(closePolicy(statusCloseCode(s), false), 'retry', String(s));
});

test('lossOutcome: one error per ended attempt, with the code the server gave when it gave one', () => {
  const sock = (x) => ({ opened: false, welcomed: false, status: 0, detail: '', refusal: null, ...x });
  // In-band refusal: the frame's code, the close code and reason as sent.
  let o = lossOutcome(sock({ opened: true, refusal: { code: 'token_expired', message: 'the token has expired' } }), 4401, 'token_expired', undefined, false);
  assert.deepEqual({ code: o.code, message: o.message, closeCode: o.closeCode, reason: o.reason, policy: o.policy },
    { code: 'token_expired', message: 'the token has expired', closeCode: 4401, reason: 'token_expired', policy: 'stop' });
  assert.equal(lossOutcome(sock({ opened: true, refusal: { code: 'token_expired' } }), 4401, 'token_expired', undefined, true).policy, 'refresh');
  // A refusal whose close never came: the close code is the one the protocol pairs with it.
  for (const [code, close, policy] of [['origin_forbidden', 4403, 'stop'], ['invalid_token', 4401, 'stop'], ['too_many_subscriptions', 4422, 'stop'],
    ['bad_request', 4400, 'stop'], ['token_revoked', 4410, 'stop'], ['shutting_down', 1013, 'retry'], ['something_new', 4400, 'stop']]) {
    o = lossOutcome(sock({ opened: true, refusal: { code, message: 'm' } }), undefined, '', undefined, false);
    assert.deepEqual([o.code, o.closeCode, o.policy], [code, close, policy], code);
  }
  // No frame, but a code as close reason.
  o = lossOutcome(sock({ opened: true }), 4403, 'origin_forbidden', undefined, false);
  assert.deepEqual([o.code, o.policy], ['origin_forbidden', 'stop']);
  // A plain HTTP refusal, status known (Node's ws): follows the close code it stands for.
  o = lossOutcome(sock({ status: 401 }), 1006, '', undefined, false);
  assert.deepEqual([o.code, o.status, o.closeCode, o.policy], ['connection_refused', 401, 1006, 'stop']);
  assert.equal(lossOutcome(sock({ status: 401 }), 1006, '', undefined, true).policy, 'refresh');
  assert.equal(lossOutcome(sock({ status: 503 }), 1006, '', undefined, false).policy, 'retry');
  // Status unknown (browsers, undici), or no close at all: connection_refused, retried.
  o = lossOutcome(sock({ detail: 'Server sent no subprotocol' }), 1006, '', undefined, false);
  assert.deepEqual([o.code, o.closeCode, o.policy], ['connection_refused', 1006, 'retry']);
  assert.match(o.message, /Server sent no subprotocol/);
  o = lossOutcome(sock({}), undefined, '', undefined, false);
  assert.deepEqual([o.code, o.closeCode, o.policy], ['connection_refused', 1006, 'retry']);
  // Our own timers.
  o = lossOutcome(sock({ opened: true }), undefined, '', 'no welcome in time', false);
  assert.deepEqual([o.code, o.closeCode, o.policy], ['connect_timeout', undefined, 'retry']);
  o = lossOutcome(sock({ opened: true, welcomed: true }), undefined, '', 'no pong', false);
  assert.deepEqual([o.code, o.policy], ['connection_lost', 'retry']);
  // After the welcome.
  const open = sock({ opened: true, welcomed: true });
  assert.deepEqual(pick(lossOutcome(open, 1006, '', undefined, false)), ['connection_lost', 1006, 'retry']);
  assert.deepEqual(pick(lossOutcome(open, 1001, 'server shutting down', undefined, false)), ['connection_lost', 1001, 'retry']);
  assert.deepEqual(pick(lossOutcome(open, 1000, '', undefined, false)), ['connection_closed', 1000, 'stop']);
  assert.deepEqual(pick(lossOutcome(open, 1002, 'protocol error', undefined, false)), ['connection_refused', 1002, 'stop']);
  assert.deepEqual(pick(lossOutcome(open, 4401, 'token expired', undefined, false)), ['token_expired', 4401, 'stop']);
  assert.deepEqual(pick(lossOutcome(open, 4401, 'token expired', undefined, true)), ['token_expired', 4401, 'refresh']);
  assert.deepEqual(pick(lossOutcome(open, 4410, 'token_revoked', undefined, false)), ['token_revoked', 4410, 'stop']);
  assert.deepEqual(pick(lossOutcome(open, 4008, 'publish rate limit exceeded', undefined, false)), ['connection_lost', 4008, 'retry']);
  assert.deepEqual(pick(lossOutcome(open, 1013, 'shutting_down', undefined, false)), ['shutting_down', 1013, 'retry']);
});

function pick(o) {
  return [o.code, o.closeCode, o.policy];
}

test('socket URL: ws/http/https bases, trailing slash; no token unless asked for (tokenTransport query)', () => {
  assert.equal(buildSocketUrl('ws://127.0.0.1:8080'), 'ws://127.0.0.1:8080/api/v1/ws');
  assert.equal(buildSocketUrl('http://h:1/'), 'ws://h:1/api/v1/ws');
  assert.equal(buildSocketUrl('https://h.example/pubsub/'), 'wss://h.example/pubsub/api/v1/ws');
  assert.equal(buildSocketUrl('wss://h/api/v1/ws?token=old&x=1'), 'wss://h/api/v1/ws?x=1', 'a token in the base URL is dropped');
  // names to subscribe to at the upgrade: encoded, comma-separated, replacing any in the URL
  assert.equal(buildSocketUrl('ws://h', ['a', 'chat:msg']), 'ws://h/api/v1/ws?subscribe=a,chat%3Amsg');
  assert.equal(buildSocketUrl('ws://h/api/v1/ws?subscribe=old', []), 'ws://h/api/v1/ws');
  // tokenTransport 'query'
  assert.equal(buildSocketUrl('ws://h', [], 'a.b.c'), 'ws://h/api/v1/ws?token=a.b.c');
  assert.equal(buildSocketUrl('wss://h/api/v1/ws', null, 'a+b/c='), 'wss://h/api/v1/ws?token=a%2Bb%2Fc%3D');
  assert.equal(buildSocketUrl('ws://h/api/v1/ws?token=old&x=1', ['s'], 'new'), 'ws://h/api/v1/ws?x=1&token=new&subscribe=s');
  assert.throws(() => buildSocketUrl('ftp://h'), (e) => e instanceof HubbubError && e.code === 'invalid_argument');
});

test('subprotocols: the version first, then the token (docs/protocol.md section 2)', () => {
  assert.deepEqual(socketProtocols('eyJ.eyJ.sig'), ['hubbub.v1', 'hubbub.token.eyJ.eyJ.sig']);
});

test('connect(): bad options throw invalid_argument at once', () => {
  const c = new Client();
  const bad = (opts, re) => assert.throws(() => c.connect(opts), (e) => e instanceof HubbubError && e.code === 'invalid_argument' && re.test(e.message), JSON.stringify(opts));
  bad({ url: 'ws://127.0.0.1:1' }, /token/);
  bad({ url: 'ws://127.0.0.1:1', token: 't', tokn: 'x' }, /unknown option 'tokn'/);
  bad({ url: 'ws://127.0.0.1:1', token: 't', tokenTransport: 'header' }, /tokenTransport/);
  bad({ url: 'ws://127.0.0.1:1', token: 'a b/c=' }, /subprotocol/);
  bad({ url: 'ws://127.0.0.1:1', getToken: 'not a function' }, /getToken/);
  bad({ url: 'ftp://127.0.0.1:1', token: 't', WebSocket: class {} }, /url/);
  if (typeof globalThis.WebSocket === 'undefined') bad({ url: 'ws://127.0.0.1:1', token: 't' }, /WebSocket/);
  assert.equal(c.state, 'idle', 'a refused connect() changes nothing');
});

test('publish argument errors reject with invalid_argument (never throw) and are emitted', async () => {
  const c = new Client();
  const errors = [];
  c.on('error', (e) => errors.push(e.code));
  const cases = [
    [['bad name!', { data: {} }], /eventName/],
    [[42, { data: {} }], /eventName/],
    [['x', { custom: 'payload' }], /unknown option 'custom' \(did you mean \{ data: … \}\?\)/],
    [['x', { data: {}, scop: 'event' }], /unknown option 'scop'/],
    [['x'], /second argument/],
    [['x', 'payload'], /second argument/],
    [['x', {}], /`data` is required/],
    [['x', { scope: 'event' }], /`data` is required/],
    [['x', { data: [1] }], /plain JSON object.*array/],
    [['x', { data: 'str' }], /plain JSON object.*string/],
    [['x', { data: null }], /plain JSON object.*null/],
    [['x', { data: new Date() }], /plain JSON object.*Date/],
    [['x', { data: new Map() }], /plain JSON object.*Map/],
    [['x', { data: new (class Point { constructor() { this.x = 1; } })() }], /plain JSON object.*Point/],
    [['x', { data: {}, scope: 'room' }], /scope/],
    [['x', { data: { n: 1n } }], /serialised/],
  ];
  for (const [args, re] of cases) {
    let p;
    assert.doesNotThrow(() => { p = c.publish(...args); }, String(re));
    assert.ok(p instanceof Promise);
    await assert.rejects(p, (e) => e instanceof HubbubError && e.code === 'invalid_argument' && re.test(e.message), `${args[1] && Object.keys(args[1])} → ${re}`);
  }
  const circular = {};
  circular.self = circular;
  await assert.rejects(c.publish('ok', { data: circular }), (e) => e.code === 'invalid_argument' && /serialised/.test(e.message));
  await assert.rejects(c.publish('ok', { data: { s: 'x'.repeat(40000) } }), (e) => e.code === 'data_too_large');
  await assert.rejects(c.publish('ok', { data: { s: '漢'.repeat(12000) } }), (e) => e.code === 'data_too_large', '36 KB of UTF-8 in 12 K characters');
  assert.equal(errors.length, cases.length + 3);
  // Accepted: plain objects of any realm, Object.create(null), JSON.parse's, an explicit undefined scope.
  const ok = [{ data: {} }, { data: Object.create(null) }, { data: JSON.parse('{"a":[1]}') }, { data: { d: new Date(0) }, scope: undefined }];
  for (const o of ok) assert.equal(_internal.publishProblem('x', o), '', JSON.stringify(o));
  const vm = await import('node:vm');
  assert.equal(_internal.publishProblem('x', { data: vm.runInNewContext('({ a: 1 })') }), '', 'an object from another realm');
  c.close();
});

test('subscribe and on: bad arguments throw invalid_argument', () => {
  const c = new Client();
  for (const [name, cb] of [['', () => {}], ['bad name!', () => {}], ['x', undefined], ['x', 'not a function'], ['x', {}]]) {
    assert.throws(() => c.subscribe(name, cb), (e) => e instanceof HubbubError && e.code === 'invalid_argument', `${name} ${typeof cb}`);
  }
  assert.throws(() => c.subscribe('x'), (e) => /callback must be a function/.test(e.message) && e.eventName === 'x');
  assert.throws(() => c.on('message', () => {}), (e) => e.code === 'invalid_argument');
  assert.throws(() => c.on('error'), (e) => e.code === 'invalid_argument');
  assert.equal(c._subs.size, 0, 'nothing was subscribed');
});

test('ignored publish promises do not become unhandled rejections', async () => {
  let unhandled = 0;
  const onUnhandled = () => unhandled++;
  process.on('unhandledRejection', onUnhandled);
  const c = new Client();
  c.on('error', () => {});
  c.publish('bad name!', { data: {} });
  c.publish('x', { data: {} });
  c.close(); /* rejects the queued one with `closed` */
  await new Promise((r) => setTimeout(r, 50));
  process.off('unhandledRejection', onUnhandled);
  assert.equal(unhandled, 0);
});

test('before connect(): state idle, publishes queued in order, bounded, and settled by close()', async () => {
  const c = new Client();
  assert.equal(c.state, 'idle');
  c.on('error', () => {});
  const ok = [];
  for (let i = 0; i < 3; i++) ok.push(c.publish('q', { data: { i } }));
  assert.equal(c._queue.length, 3);
  assert.deepEqual(c._queue.map((q) => JSON.parse(q.frame).data.i), [0, 1, 2]);
  const small = new Client();
  small.on('error', () => {});
  small._opts.maxQueue = 2;
  small.publish('q', { data: {} });
  small.publish('q', { data: {} });
  await assert.rejects(small.publish('q', { data: {} }), (e) => e.code === 'queue_full');
  c.close();
  for (const p of ok) await assert.rejects(p, (e) => e.code === 'closed');
  small.close();
});

test('a publish queued and never sent rejects with timeout after queueTimeoutMs', async () => {
  const c = new Client();
  const errors = [];
  c.on('error', (e) => errors.push(e));
  c._opts.queueTimeoutMs = 50;
  const t0 = Date.now();
  const p = c.publish('late', { data: { n: 1 } });
  await assert.rejects(p, (e) => e instanceof HubbubError && e.code === 'timeout' && /queueTimeoutMs/.test(e.message) &&
    /connect\(\) was never called/.test(e.message) && e.eventName === 'late');
  assert.ok(Date.now() - t0 >= 45);
  assert.equal(c._queue.length, 0, 'removed from the queue');
  assert.deepEqual(errors.map((e) => e.code), ['timeout']);
  assert.equal(_internal.DEFAULTS.queueTimeoutMs, 30000, 'the documented default');
});

test('a queued publish is a snapshot of data at call time', () => {
  const c = new Client();
  const data = { n: 1 };
  c.publish('snap', { data });
  data.n = 2;
  assert.equal(JSON.parse(c._queue[0].frame).data.n, 1);
  c.on('error', () => {});
  c.close();
});

test('exports: PubSub is a ready-to-use default client', () => {
  assert.equal(typeof PubSub.publish, 'function');
  assert.equal(typeof PubSub.subscribe, 'function');
  assert.equal(PubSub.state, 'idle');
  assert.equal(PubSub.createClient, createClient);
});
