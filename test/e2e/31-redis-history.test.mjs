// Offsets, history and idempotency across nodes (issue 17 with Redis): two
// nodes on one Redis agree on every channel's epoch and offsets; a client
// that drops from one node recovers on the other (since=); a Redis restart
// that loses its data changes the epochs (recovered:false, a gap notice for
// connected clients); a frozen Redis makes publishes fail (503) instead of
// being accepted and lost; a node whose subscription broke (CLIENT KILL, or
// cut by Redis for its output buffer while the node was stopped) catches up
// from the streams: every accepted message reaches every subscriber once, in
// order, or the subscriber is told of a gap. Idempotency keys hold across
// nodes. The history API reads Redis.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, room, uuid, sleep, publishBody, poll, rawHttp } from './harness.mjs';
import net from 'node:net';
import { redisServer, redisCmd } from './redis-harness.mjs';

const SCOPES = ['session', 'event', 'organization'];
// Detection bounds are wide on purpose: the machines that run the suite are
// shared and slow. Nothing here asserts an upper bound on timing.
const DETECT_MS = 15000;
const RECOVER_MS = 20000;
const SETTLE_MS = 10000;

let redis, dataDir;
const nodes = [];

before(async () => {
  // A small pub/sub output limit, so that a node that stops reading is cut.
  redis = await redisServer({ args: ['--client-output-buffer-limit', 'pubsub 256kb 128kb 1'] });
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-e2e-rhist-'));
});

after(async () => {
  try {
    for (const n of nodes) {
      try {
        process.kill(n.pid, 'SIGCONT');
      } catch {
        /* gone */
      }
      await n.stop().catch(() => {});
    }
  } finally {
    await redis?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
});

async function node(config = {}) {
  const n = await startServer({
    dataDir,
    config: { redis_url: redis.url, conn_publish_rate: 0, token_publish_rate: 0, ...config },
  });
  nodes.push(n);
  return n;
}

async function stopNode(n) {
  nodes.splice(nodes.indexOf(n), 1);
  await n.stop();
}

/** The resume string the SDK builds from the last position of each scope. */
function resume(pos) {
  return 'h1.' + SCOPES.map((s) => `${pos[s].epoch}.${pos[s].offset}`).join('.');
}

/** The welcome's positions moved on by the events and gap notices seen after it. */
function positionsOf(c) {
  const pos = structuredClone(c.welcome.positions);
  const wi = c.messages.findIndex((m) => m.type === 'welcome');
  for (const m of c.messages.slice(wi + 1)) {
    if (m.type === 'event') pos[m.scope].offset = m.offset;
    if (m.type === 'gap') pos[m.scope] = { epoch: m.epoch, offset: m.offset };
  }
  return pos;
}

async function join(srv, t, r, { subscribe = ['h'], since = null } = {}) {
  const token = await srv.connToken(t, { ...r, user_id: 'u-' + uuid().slice(0, 8), scopes: SCOPES });
  let query = subscribe.length ? `&subscribe=${subscribe.join(',')}` : '';
  if (since) query += `&since=${since}`;
  return srv.connect(token, { query, timeoutMs: SETTLE_MS });
}

const scopeOf = (s, r) => (s === 'session' ? { type: 'session', ...r } : s === 'event' ? { type: 'event', event_id: r.event_id } : { type: 'organization' });

/**
 * Check what client `c` received of `scope` after its welcome: events in
 * offset order without a jump that no gap notice explains, nothing twice;
 * and every accepted publish ({offset, epoch, message_id}) of that scope
 * after the welcome was received, or lies under a gap notice.
 */
function checkStream(c, scope, accepted, what) {
  const wi = c.messages.findIndex((m) => m.type === 'welcome');
  let pos = { ...c.welcome.positions[scope] };
  const got = new Map(); // message_id -> offset
  const gaps = [];
  for (const m of c.messages.slice(wi + 1)) {
    if (m.scope !== scope) continue;
    if (m.type === 'event') {
      assert.equal(m.offset, pos.offset + 1, `${what}: ${scope} event ${m.offset} after ${pos.offset} with no gap notice`);
      assert.ok(!got.has(m.message_id), `${what}: ${m.message_id} twice`);
      got.set(m.message_id, m.offset);
      pos.offset = m.offset;
    } else if (m.type === 'gap') {
      assert.ok(m.epoch !== pos.epoch || m.offset >= pos.offset, `${what}: a gap notice going back (${JSON.stringify(m)})`);
      gaps.push(m);
      pos = { epoch: m.epoch, offset: m.offset };
    }
  }
  for (const a of accepted) {
    if (a.epoch !== pos.epoch && !gaps.some((g) => g.epoch !== a.epoch)) {
      assert.fail(`${what}: accepted ${JSON.stringify(a)} in another epoch, and no gap notice says so`);
    }
    if (got.has(a.message_id)) {
      assert.equal(got.get(a.message_id), a.offset, `${what}: ${a.message_id} delivered with another offset`);
      continue;
    }
    const covered = gaps.some((g) => g.epoch === a.epoch && g.offset >= a.offset) || gaps.some((g) => g.epoch !== a.epoch);
    const before = a.epoch === c.welcome.positions[scope].epoch && a.offset <= c.welcome.positions[scope].offset;
    assert.ok(covered || before, `${what}: accepted ${JSON.stringify(a)} never delivered and no gap notice covers it`);
  }
  return { got, gaps };
}

test('every node answers the same offsets and epoch, and delivers them in order', async () => {
  const A = await node();
  const B = await node();
  const t = await A.tenant();
  const r = room();
  const a = await join(A, t, r);
  const b = await join(B, t, r);
  assert.deepEqual(a.welcome.positions, b.welcome.positions, 'one position per channel, whatever the node');
  const pub = { A: await join(A, t, r, { subscribe: [] }), B: await join(B, t, r, { subscribe: [] }) };
  const accepted = { session: [], event: [], organization: [] };
  for (let i = 0; i < 6; i++) {
    for (const s of SCOPES) {
      const via = i % 2 ? B : A;
      const res = await via.publish(t.apiToken, publishBody(scopeOf(s, r), 'h', { i, s, http: true }));
      assert.equal(res.status, 202, res.text);
      accepted[s].push(res.json);
      const ack = await pub[i % 2 ? 'A' : 'B'].request({ type: 'publish', eventName: 'h', scope: s, data: { i, s, ws: true } });
      assert.equal(ack.type, 'ack', JSON.stringify(ack));
      accepted[s].push({ message_id: ack.message_id, offset: ack.offset, epoch: ack.epoch });
    }
  }
  for (const s of SCOPES) {
    const offs = accepted[s].map((x) => x.offset);
    assert.deepEqual(offs, offs.map((_, k) => a.welcome.positions[s].offset + k + 1), `${s}: consecutive offsets, in answer order`);
    assert.ok(accepted[s].every((x) => x.epoch === a.welcome.positions[s].epoch), `${s}: the welcome's epoch`);
  }
  for (const c of [a, b]) await poll(() => c.events('h').length === 36, SETTLE_MS, 'all 36 events');
  await sleep(200);
  for (const [c, w] of [[a, 'A'], [b, 'B']]) {
    assert.equal(c.events('h').length, 36, `${w}: nothing twice`);
    for (const s of SCOPES) checkStream(c, s, accepted[s], `node ${w}`);
  }
  for (const c of [a, b, pub.A, pub.B]) await c.close();
});

test('a client that dropped from node A recovers on node B: exactly what it missed, in order, once', async () => {
  const [A, B] = nodes;
  const t = await A.tenant();
  const r = room();
  const c = await join(A, t, r, { subscribe: ['h', 'other'] });
  // Some before the drop (received), some after it (missed).
  for (const s of SCOPES) assert.equal((await B.publish(t.apiToken, publishBody(scopeOf(s, r), 'h', { before: s }))).status, 202);
  await poll(() => c.events('h').length === 3, SETTLE_MS, 'the first three');
  const pos = positionsOf(c);
  c.ws.terminate(); // TCP gone, no close frame
  await c.closed;
  const missed = [];
  for (let i = 0; i < 4; i++) {
    for (const s of SCOPES) {
      const via = i % 2 ? A : B;
      const res = await via.publish(t.apiToken, publishBody(scopeOf(s, r), i === 3 ? 'unsubscribed' : 'h', { i, s }));
      assert.equal(res.status, 202);
      if (i !== 3) missed.push({ ...res.json, scope: s });
    }
  }
  const back = await join(B, t, r, { subscribe: ['h', 'other'], since: resume(pos) });
  assert.equal(back.welcome.recovered, true, JSON.stringify(back.welcome));
  const wi = back.messages.findIndex((m) => m.type === 'welcome');
  const replayed = back.messages.slice(0, wi);
  assert.equal(replayed.length, missed.length, 'the missed ones, not the name it did not subscribe to');
  for (const s of SCOPES) {
    const mine = replayed.filter((m) => m.scope === s);
    assert.deepEqual(mine.map((m) => m.message_id), missed.filter((m) => m.scope === s).map((m) => m.message_id), `${s}: in order`);
    assert.deepEqual(back.welcome.positions[s], { epoch: pos[s].epoch, offset: missed.filter((m) => m.scope === s).at(-1).offset + 1 });
  }
  // And it is live from there, once.
  const res = await A.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'h', { live: 1 }));
  await back.waitFor((m) => m.data?.live === 1, SETTLE_MS);
  await sleep(200);
  assert.equal(back.messages.filter((m) => m.message_id === res.json.message_id).length, 1);
  await back.close();
});

test('concurrent publishes and a join on another node: the joiner gets each message once, replayed or live', async () => {
  const [A, B] = nodes;
  const t = await A.tenant();
  const r = room();
  const first = await join(A, t, r);
  const pos = positionsOf(first);
  await first.close();
  let stop = false;
  const accepted = [];
  const pumping = (async () => {
    for (let i = 0; !stop; i++) {
      const res = await (i % 2 ? A : B).publish(t.apiToken, publishBody({ type: 'session', ...r }, 'h', { i }));
      if (res.status === 202) accepted.push(res.json);
    }
  })();
  await poll(() => accepted.length >= 10, SETTLE_MS, 'publishes under way');
  const c = await join(B, t, r, { since: resume(pos) });
  await poll(() => accepted.length >= 30, SETTLE_MS, 'more publishes');
  stop = true;
  await pumping;
  await poll(() => c.events('h').length >= accepted.length, SETTLE_MS, 'every accepted one');
  const ids = c.events('h').map((m) => m.message_id);
  assert.equal(new Set(ids).size, ids.length, 'nothing twice');
  assert.deepEqual(ids, accepted.map((x) => x.message_id), 'every accepted one, in offset order');
  await c.close();
});

test('idempotency keys hold across nodes: one delivery, the same answer', async () => {
  const [A, B] = nodes;
  const t = await A.tenant();
  const r = room();
  const c = await join(A, t, r);
  const key = 'idem-' + uuid();
  const body = publishBody({ type: 'session', ...r }, 'h', { once: true });
  const first = await A.publish(t.apiToken, body, { headers: { 'Idempotency-Key': key } });
  assert.equal(first.status, 202, first.text);
  const again = await B.publish(t.apiToken, body, { headers: { 'Idempotency-Key': key } });
  assert.equal(again.status, 202);
  assert.deepEqual(again.json, first.json, 'the first answer');
  assert.equal(again.headers['idempotent-replayed'], 'true');
  // Two at once, on both nodes, with a new key: one publish between them.
  const key2 = 'idem-' + uuid();
  const body2 = publishBody({ type: 'session', ...r }, 'h', { race: true });
  const [x, y] = await Promise.all([A, B].map((n) => n.publish(t.apiToken, body2, { headers: { 'Idempotency-Key': key2 } })));
  assert.equal(x.status, 202);
  assert.deepEqual(y.json, x.json, 'concurrent requests answer alike');
  assert.equal([x, y].filter((z) => z.headers['idempotent-replayed'] === 'true').length, 1);
  // Over WebSocket, on the other node, the same key answers the same too.
  const ws = await join(B, t, r, { subscribe: [] });
  const ack = await ws.request({ type: 'publish', eventName: 'h', data: { once: true }, idempotency_key: key });
  assert.equal(ack.message_id, first.json.message_id);
  assert.equal(ack.offset, first.json.offset);
  await poll(() => c.events('h').length >= 2, SETTLE_MS, 'the two publishes');
  await sleep(300);
  assert.equal(c.events('h').filter((m) => m.data.once).length, 1, 'delivered once');
  assert.equal(c.events('h').filter((m) => m.data.race).length, 1, 'delivered once');
  await c.close();
  await ws.close();
});

test('the history API reads Redis: the same page on every node', async () => {
  const [A, B] = nodes;
  const t = await A.tenant();
  const r = room();
  const sent = [];
  for (let i = 0; i < 5; i++) sent.push((await (i % 2 ? A : B).publish(t.apiToken, publishBody({ type: 'session', ...r }, i % 2 ? 'odd' : 'even', { i }))).json);
  const q = `/api/v1/history?scope=session&event_id=${r.event_id}&session_id=${r.session_id}`;
  const pa = await A.http('GET', q, { headers: { Authorization: t.apiToken } });
  const pb = await B.http('GET', q, { headers: { Authorization: t.apiToken } });
  assert.equal(pa.status, 200, pa.text);
  assert.deepEqual(pb.json, pa.json);
  assert.equal(pa.json.epoch, sent[0].epoch);
  assert.equal(pa.json.offset, sent[4].offset);
  assert.deepEqual(pa.json.messages.map((m) => m.message_id), sent.map((s) => s.message_id));
  const odd = await B.http('GET', `${q}&eventName=odd&limit=1`, { headers: { Authorization: t.apiToken } });
  assert.deepEqual(odd.json.messages.map((m) => m.message_id), [sent[1].message_id]);
  assert.equal(odd.json.more, true);
});

test('a subscribe acked on one node is live for publishes through the other at once', async () => {
  const [A, B] = nodes;
  const t = await A.tenant();
  for (let i = 0; i < 5; i++) {
    const r = room();
    const c = await join(A, t, r, { subscribe: [] });
    await c.subscribe('fresh'); // a channel this node did not listen to
    const res = await B.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'fresh', { i }));
    assert.equal(res.status, 202);
    await c.waitFor((m) => m.data?.i === i, SETTLE_MS, 'the publish right after the ack');
    await c.close();
  }
});

test('pipelined HTTP publishes wait for Redis one after the other, answered in order', async () => {
  const [A] = nodes;
  const t = await A.tenant();
  const r = room();
  const req = (i, last) => {
    const body = JSON.stringify(publishBody({ type: 'session', ...r }, 'h', { i }));
    return `POST /api/v1/pub_subs HTTP/1.1\r\nHost: x\r\nAuthorization: ${t.apiToken}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${last ? 'Connection: close\r\n' : ''}\r\n${body}`;
  };
  const raw = await rawHttp(A.port, [req(0) + req(1) + req(2) + req(3, true)], { untilClose: true, timeoutMs: SETTLE_MS });
  const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [202, 202, 202, 202], raw.slice(0, 400));
  const offsets = [...raw.matchAll(/"offset":(\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(offsets, [1, 2, 3, 4], 'in the order they were sent');
});

test('a client that goes away while its publish waits for Redis: the answer is dropped, the node carries on', async () => {
  const [A] = nodes;
  const t = await A.tenant();
  const r = room();
  const body = JSON.stringify(publishBody({ type: 'session', ...r }, 'h', { gone: 1 }));
  process.kill(redis.pid, 'SIGSTOP');
  try {
    for (let i = 0; i < 5; i++) {
      const sock = net.connect(A.port, '127.0.0.1');
      await new Promise((res) => sock.on('connect', res));
      sock.write(`POST /api/v1/pub_subs HTTP/1.1\r\nHost: x\r\nAuthorization: ${t.apiToken}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      await sleep(20);
      sock.destroy();
    }
    const ws = await join(A, t, r, { subscribe: [] }).catch(() => null); // a join that waits, then closes
    ws?.ws.terminate();
  } finally {
    process.kill(redis.pid, 'SIGCONT');
  }
  // Both nodes lost Redis while it was stopped: the next test uses both.
  for (const n of nodes) await poll(async () => (await n.http('GET', '/healthz')).status === 200, RECOVER_MS, 'healthz 200');
  const res = await A.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'h', { after: 1 }));
  assert.equal(res.status, 202);
});

test('the script cache flushed (SCRIPT FLUSH): publishes and joins go on', async () => {
  const [A, B] = nodes;
  const t = await A.tenant();
  const r = room();
  const c = await join(A, t, r);
  await redisCmd(redis.port, ['SCRIPT', 'FLUSH']);
  const res = await B.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'h', { after: 'flush' }));
  assert.equal(res.status, 202, res.text);
  await c.waitFor((m) => m.data?.after === 'flush', SETTLE_MS);
  await redisCmd(redis.port, ['SCRIPT', 'FLUSH']);
  const d = await join(B, t, r, { since: resume(c.welcome.positions) });
  assert.equal(d.welcome.recovered, true);
  assert.equal(d.events('h').length, 1);
  await c.close();
  await d.close();
});

test("one node's subscribe connection killed while publishing: it catches up from the streams", async () => {
  const [A, B] = nodes;
  const t = await A.tenant();
  const r = room();
  const onA = await join(A, t, r);
  const onB = await join(B, t, r);
  const accepted = [];
  let stop = false;
  const pumping = (async () => {
    for (let i = 0; !stop; i++) {
      const res = await (i % 2 ? A : B).publish(t.apiToken, publishBody({ type: 'session', ...r }, 'h', { i }));
      if (res.status === 202) accepted.push(res.json);
    }
  })();
  await poll(() => accepted.length >= 10, SETTLE_MS, 'publishes under way');
  const killed = await redisCmd(redis.port, ['CLIENT', 'KILL', 'TYPE', 'pubsub']);
  assert.ok(killed >= 2, `both nodes' subscribe connections (${killed})`);
  await poll(() => /redis: subscribe connection: link lost/.test(A.stderr), DETECT_MS, 'node A noticed');
  const at = accepted.length;
  await poll(() => accepted.length >= at + 10, SETTLE_MS, 'publishes after the reconnect');
  stop = true;
  await pumping;
  for (const [c, w] of [[onA, 'A'], [onB, 'B']]) {
    await poll(() => c.events('h').length >= accepted.length, SETTLE_MS, `node ${w}: every accepted message`);
    await sleep(200);
    const { got, gaps } = checkStream(c, 'session', accepted, `node ${w}`);
    assert.equal(gaps.length, 0, `node ${w}: nothing lost (the stream had it all)`);
    assert.equal(got.size, accepted.length);
  }
  const m = await A.http('GET', '/metrics');
  assert.match(m.text, /hubbub_redis_gap_filled_messages_total \d+/);
  await onA.close();
  await onB.close();
});

test('Redis frozen while both nodes publish: 503 rather than accepted and lost; after SIGCONT every accepted one arrives', async () => {
  const [A, B] = nodes;
  const t = await A.tenant();
  const r = room();
  const onA = await join(A, t, r);
  const onB = await join(B, t, r);
  const wsA = await join(A, t, r, { subscribe: [] });
  const wsB = await join(B, t, r, { subscribe: [] });
  const accepted = [];
  const refused = []; // { key, data, srv }
  let stop = false;
  // Every publish carries an Idempotency-Key, as a client that retries should.
  const pump = async (srv, ws, tag) => {
    for (let i = 0; !stop; i++) {
      const key = `k-${tag}-${i}-${uuid().slice(0, 6)}`;
      const data = { tag, i };
      const res = await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'h', data), { headers: { 'Idempotency-Key': key } });
      if (res.status === 202) accepted.push(res.json);
      else {
        assert.equal(res.status, 503, res.text);
        assert.equal(res.json.error.code, 'broker_unavailable');
        refused.push({ key, data, srv });
      }
      const wkey = key + '-ws';
      const wdata = { tag, i, ws: true };
      const ack = await ws.request({ type: 'publish', eventName: 'h', data: wdata, idempotency_key: wkey }, 10000);
      if (ack.type === 'ack') accepted.push({ message_id: ack.message_id, offset: ack.offset, epoch: ack.epoch });
      else {
        assert.equal(ack.code, 'broker_unavailable');
        refused.push({ key: wkey, data: wdata, srv });
      }
      await sleep(10);
    }
  };
  const pumps = [pump(A, wsA, 'A'), pump(B, wsB, 'B')];
  await poll(() => accepted.length >= 10, SETTLE_MS, 'publishes under way');
  process.kill(redis.pid, 'SIGSTOP');
  try {
    await poll(() => refused.length >= 4, DETECT_MS, 'publishes refused once Redis stopped answering');
    for (const srv of [A, B]) await poll(async () => (await srv.http('GET', '/healthz')).status === 503, DETECT_MS, 'healthz degraded');
    const h = await A.http('GET', '/healthz');
    assert.equal(h.json.status, 'degraded');
  } finally {
    process.kill(redis.pid, 'SIGCONT');
  }
  for (const srv of [A, B]) await poll(async () => (await srv.http('GET', '/healthz')).status === 200, RECOVER_MS, 'healthz 200 again');
  const n = accepted.length;
  await poll(() => accepted.length >= n + 6, SETTLE_MS, 'publishes accepted again');
  stop = true;
  await Promise.all(pumps);
  // A 503 is a timeout's answer: the script's deadline stops a late run, but
  // Redis may have frozen right after running one and before answering. The
  // retry with the same key tells: the first publish's answer (replayed), or
  // a publish now.
  let replayed = 0;
  for (const x of refused) {
    const res = await x.srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'h', x.data), { headers: { 'Idempotency-Key': x.key } });
    assert.equal(res.status, 202, res.text);
    if (res.headers['idempotent-replayed'] === 'true') replayed++;
    accepted.push(res.json);
  }
  assert.ok(replayed <= 4, `at most the publishes in flight when Redis froze were run (${replayed})`);
  for (const [c, w] of [[onA, 'A'], [onB, 'B']]) {
    await poll(() => c.events('h').length >= accepted.length, SETTLE_MS, `node ${w}: every accepted message`).catch(() => {});
    await sleep(300);
    checkStream(c, 'session', accepted, `node ${w}`);
    const acceptedIds = new Set(accepted.map((x) => x.message_id));
    for (const ev of c.events('h')) assert.ok(acceptedIds.has(ev.message_id), `node ${w}: ${ev.message_id} was delivered but never answered 202`);
  }
  for (const c of [onA, onB, wsA, wsB]) await c.close();
});

test('a node stopped until Redis cuts it for its output buffer: after SIGCONT its clients get every accepted message or a gap notice', async () => {
  // history_size 50: what the stream no longer has is told with a gap notice.
  const A = await node({ history_size: 50 });
  const B = await node({ history_size: 50 });
  const t = await A.tenant();
  const r = room();
  const onA = await join(A, t, r);
  const onB = await join(B, t, r);
  const accepted = [];
  // A 503 is allowed (Redis, buffering for the stopped node on a loaded
  // machine, may run a script past its deadline): such a publish is retried
  // with its key after SIGCONT, as a client would, and counts once answered.
  const refused = [];
  const take = (res, items) => {
    assert.equal(res.status, 200, res.text);
    res.json.results.forEach((x, k) => {
      if (x.status === 503 && x.error?.code === 'broker_unavailable') refused.push(items[k]);
      else {
        assert.equal(x.status, 202, JSON.stringify(x));
        accepted.push(x);
      }
    });
  };
  const item = (i, data) => ({ ...publishBody({ type: 'session', ...r }, 'h', data === undefined ? { i } : { i, data }), idempotency_key: `k${i}` });
  const data = 'x'.repeat(30000);
  const named = (list) => list.includes(`name=hubbub:subscribe:${A.pid} `);
  assert.ok(named(await redisCmd(redis.port, ['CLIENT', 'LIST'])), 'each node names its connections hubbub:<role>:<pid>');
  process.kill(A.pid, 'SIGSTOP');
  let i = 0;
  try {
    // Publish until Redis cuts node A's subscribe connection (over 256 KiB
    // unread, once the kernel's socket buffers are full too).
    await poll(async () => {
      const publishes = [];
      for (let k = 0; k < 30; k++, i++) publishes.push(item(i, data));
      take(await B.publish(t.apiToken, { publishes }, { path: '/api/v1/pub_subs/batch' }), publishes);
      return !named(await redisCmd(redis.port, ['CLIENT', 'LIST']));
    }, DETECT_MS, 'Redis cut the stopped node', 10);
    // More than the stream keeps while node A is still stopped.
    for (let b = 0; b < 4; b++) {
      const publishes = [];
      for (let k = 0; k < 30; k++, i++) publishes.push(item(i));
      take(await B.publish(t.apiToken, { publishes }, { path: '/api/v1/pub_subs/batch' }), publishes);
    }
  } finally {
    process.kill(A.pid, 'SIGCONT');
  }
  for (const x of refused) {
    const { idempotency_key: key, ...body } = x;
    const res = await B.publish(t.apiToken, body, { headers: { 'Idempotency-Key': key } });
    assert.equal(res.status, 202, res.text);
    accepted.push(res.json);
  }
  const last = i + 9;
  for (; i <= last; i++) {
    const res = await B.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'h', { i }));
    assert.equal(res.status, 202);
    accepted.push(res.json);
  }
  await poll(() => onA.events('h').at(-1)?.data?.i === last, RECOVER_MS, 'node A caught up to the last one');
  await poll(() => onB.events('h').length === accepted.length, SETTLE_MS, 'node B had them all');
  await sleep(200);
  const { gaps } = checkStream(onA, 'session', accepted, 'stopped node A');
  assert.ok(gaps.length >= 1, 'the stream kept only the last ~50: node A told its client');
  assert.equal(gaps[0].reason, 'trimmed');
  const b = checkStream(onB, 'session', accepted, 'node B');
  assert.equal(b.gaps.length, 0);
  assert.match(A.stderr, /redis: subscribe connection: link lost/);
  assert.match(A.stderr, /messages missed and no longer in the stream/);
  const m = await A.http('GET', '/metrics');
  assert.match(m.text, /hubbub_redis_gap_notices_total [1-9]/);
  await onA.close();
  await onB.close();
  await stopNode(A);
  await stopNode(B);
});

test('SIGTERM while publishes and joins wait for a frozen Redis: every request answered, a clean exit', async () => {
  const C = await node();
  const t = await C.tenant();
  const r = room();
  const ws = await join(C, t, r, { subscribe: [] });
  process.kill(redis.pid, 'SIGSTOP');
  try {
    const publishes = [];
    for (let i = 0; i < 5; i++) publishes.push(C.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'h', { i })).catch((e) => ({ status: 0, text: String(e) })));
    const acks = [];
    for (let i = 0; i < 3; i++) acks.push(ws.request({ type: 'publish', eventName: 'h', data: { i } }, 10000).catch((e) => e));
    const joins = [join(C, t, r).catch((e) => e), join(C, t, r).catch((e) => e)];
    await sleep(100);
    await stopNode(C); // SIGTERM; asserts exit 0 and no sanitizer report
    // In flight at SIGTERM: answered (Redis did not reply in time: 503), not dropped.
    for (const res of await Promise.all(publishes)) assert.equal(res.status, 503, res.text);
    for (const j of await Promise.all(joins)) assert.ok(j instanceof Error, 'no welcome without Redis');
    await Promise.all(acks);
  } finally {
    process.kill(redis.pid, 'SIGCONT');
  }
});

test('Redis restarted without its data: new epochs, recovered:false, and connected clients are told', async () => {
  const [A, B] = nodes;
  const t = await A.tenant();
  const r = room();
  const c = await join(A, t, r);
  const res = await B.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'h', { before: 1 }));
  assert.equal(res.status, 202);
  await c.waitFor((m) => m.data?.before === 1, SETTLE_MS);
  const pos = positionsOf(c);
  await redis.kill();
  await redis.start();
  for (const srv of [A, B]) await poll(async () => (await srv.http('GET', '/healthz')).status === 200, RECOVER_MS, 'healthz 200');
  // The connected client: a gap notice with the new epoch, then live again.
  const gap = await c.waitFor((m) => m.type === 'gap' && m.scope === 'session', RECOVER_MS, 'a gap notice');
  assert.equal(gap.reason, 'epoch_changed');
  assert.notEqual(gap.epoch, pos.session.epoch);
  let after;
  await poll(async () => {
    after = await B.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'h', { after: 1 }));
    return after.status === 202;
  }, RECOVER_MS, 'publishes accepted');
  assert.equal(after.json.epoch, gap.epoch);
  await c.waitFor((m) => m.data?.after === 1, SETTLE_MS);
  // A client that reconnects with the old positions: recovered:false.
  const d = await join(B, t, r, { since: resume(pos) });
  assert.equal(d.welcome.recovered, false);
  assert.equal(d.welcome.recovery.failed.session, 'epoch_changed');
  assert.equal(d.events('h').length, 0, 'nothing replayed');
  await c.close();
  await d.close();
});
