// Presence across nodes (docs/scaling.md, "Presence"): real nodes on one real
// redis-server. Every node counts every node's members, a user with tabs on
// two nodes counts once, a node that starts later sees who is already there,
// a node that stops (SIGTERM) takes its members with it at once, one killed
// with -9 has them expire within presence_ttl_s, and when Redis goes away and
// comes back the nodes drop each other's members and then find them again.
// Every wait is for a condition, with a generous deadline: no upper bound on
// how fast it happens is asserted (the machine is shared).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, room, uuid, poll } from './harness.mjs';
import { redisServer, redisCmd } from './redis-harness.mjs';
import { member, observe, view, until } from './presence-lib.mjs';

const INTERVAL_MS = 200;
const TTL_S = 3; // the smallest presence_ttl_s: expiry is seen quickly
// A deadline, not an expectation: expiry takes TTL_S and a tick; the rest is
// room for a loaded machine.
const EXPIRY_WAIT_MS = TTL_S * 1000 + 30000;
const CONVERGE_WAIT_MS = 15000;
const CONFIG = { presence_interval_ms: INTERVAL_MS, presence_ttl_s: TTL_S };

let redis, dataDir, A, B, t;
const extra = []; // nodes a test started, stopped in after() if it failed early

const node = (cfg = {}) => startServer({ dataDir, config: { redis_url: redis.url, ...CONFIG, ...cfg } });

before(async () => {
  redis = await redisServer();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-e2e-presence-'));
  A = await node();
  B = await node();
  t = await A.tenant();
});

after(async () => {
  try {
    for (const s of [A, B, ...extra]) await s?.stop().catch(() => {});
  } finally {
    await redis?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
});

/** GET /api/v1/presence on `srv`: every member of the session (all pages). */
async function httpMembers(srv, r, tenant = t) {
  const base = `/api/v1/presence?scope=session&event_id=${r.event_id}&session_id=${r.session_id}&limit=5`;
  let res = await srv.http('GET', base, { headers: { Authorization: tenant.apiToken } });
  assert.equal(res.status, 200, res.text);
  const count = res.json.count;
  const users = res.json.members.map((m) => m.user_id);
  while (res.json.truncated) {
    res = await srv.http('GET', `${base}&cursor=${res.json.cursor}`, { headers: { Authorization: tenant.apiToken } });
    users.push(...res.json.members.map((m) => m.user_id));
  }
  return { count, users: users.sort() };
}

const names = (c, scope = 'session') => [...view(c, scope).members.keys()].sort();

test('two nodes: each counts both nodes\' members; a user with tabs on both counts once; leaves cross over', async () => {
  const r = room();
  const oA = await member(A, t, r, 'obs-a', { info: { node: 'A' } });
  const oB = await member(B, t, r, 'obs-b');
  await observe(oA);
  await observe(oB);
  const onA = await Promise.all([1, 2, 3].map((i) => member(A, t, r, `a${i}`)));
  const onB = await Promise.all([1, 2, 3].map((i) => member(B, t, r, `b${i}`, { info: { i } })));
  const bothA = await member(A, t, r, 'both');
  const bothB = await member(B, t, r, 'both');
  const everyone = ['a1', 'a2', 'a3', 'b1', 'b2', 'b3', 'both', 'obs-a', 'obs-b'];
  for (const o of [oA, oB]) {
    await until(o, everyone.length, 'session', CONVERGE_WAIT_MS);
    assert.deepEqual(names(o), everyone);
  }
  // info crosses with the member
  assert.deepEqual(view(oA).members.get('b2'), { i: 2 });
  assert.deepEqual(view(oB).members.get('obs-a'), { node: 'A' });
  // the HTTP API of either node answers the same, page by page
  for (const srv of [A, B]) {
    await poll(async () => (await httpMembers(srv, r)).count === everyone.length, CONVERGE_WAIT_MS, 'HTTP count');
    assert.deepEqual((await httpMembers(srv, r)).users, everyone);
  }
  // 'both' is still here through B after its tab on A closes
  const seen = oB.messages.length;
  await bothA.close();
  await oB.expectNone((m) => m.type === 'presence.delta' && oB.messages.indexOf(m) >= seen && m.leaves.includes('both'), 4 * INTERVAL_MS, "'both' leaving");
  assert.equal(view(oB).count, everyone.length);
  // its last tab, on B, closes: gone on A too
  await bothB.close();
  await until(oA, everyone.length - 1, 'session', CONVERGE_WAIT_MS);
  assert.ok(!view(oA).members.has('both'));
  // members of B leave: A's count follows
  for (const c of onB) await c.close();
  await until(oA, 5, 'session', CONVERGE_WAIT_MS);
  assert.deepEqual(names(oA), ['a1', 'a2', 'a3', 'obs-a', 'obs-b']);
  for (const c of [...onA, oA, oB]) await c.close();
});

test('event presence spans the sessions on every node; other plugins and organizations never show up', async () => {
  const ev = uuid();
  const r1 = { event_id: ev, session_id: uuid() };
  const r2 = { event_id: ev, session_id: uuid() };
  const host = await member(A, t, r1, 'host', { scopes: ['session', 'event'] });
  await observe(host, 'event');
  await observe(host, 'session');
  const sibling = await A.siblingPlugin(t);
  const other = await A.tenant();
  const clients = [
    await member(B, t, r2, 'guest'), // another session of the event, on B
    await member(B, t, r1, 'peer'), // the host's session, on B
    await member(B, sibling, r1, 'other-plugin'),
    await member(B, other, r1, 'other-org'),
    await member(B, t, room(), 'other-event'),
  ];
  await until(host, 3, 'event', CONVERGE_WAIT_MS);
  await until(host, 2, 'session', CONVERGE_WAIT_MS);
  assert.deepEqual(names(host, 'event'), ['guest', 'host', 'peer']);
  assert.deepEqual(names(host, 'session'), ['host', 'peer']);
  // the sibling plugin's view of the same ids on A: its own member only
  const sib = await member(A, sibling, r1, 'sib-observer');
  await observe(sib);
  await until(sib, 2, 'session', CONVERGE_WAIT_MS);
  assert.deepEqual(names(sib), ['other-plugin', 'sib-observer']);
  for (const c of [...clients, host, sib]) await c.close();
});

test('a node that starts later sees the members already there; one that stops (SIGTERM) takes its members with it', async () => {
  const r = room();
  const onA = await member(A, t, r, 'early-a');
  const onB = await member(B, t, r, 'early-b');
  const C = await node();
  extra.push(C);
  const oC = await member(C, t, r, 'obs-c');
  await observe(oC);
  await until(oC, 3, 'session', CONVERGE_WAIT_MS);
  assert.deepEqual(names(oC), ['early-a', 'early-b', 'obs-c']);
  const oA = await member(A, t, r, 'obs-a');
  await observe(oA);
  await Promise.all([1, 2, 3].map((i) => member(C, t, r, `c${i}`)));
  await until(oA, 7, 'session', CONVERGE_WAIT_MS);
  const logAt = A.stderr.length;
  await C.stop();
  await until(oA, 3, 'session', CONVERGE_WAIT_MS);
  // gone by its goodbye, not by expiry (which logs before it drops)
  assert.doesNotMatch(A.stderr.slice(logAt), /silent for over/);
  assert.deepEqual(names(oA), ['early-a', 'early-b', 'obs-a']);
  for (const c of [onA, onB, oA]) await c.close();
});

test('kill -9: the dead node\'s members expire on the others after presence_ttl_s, logged and counted', async () => {
  const r = room();
  const D = await node();
  extra.push(D);
  const oA = await member(A, t, r, 'obs-a');
  await observe(oA);
  await Promise.all([1, 2, 3, 4].map((i) => member(D, t, r, `d${i}`)));
  await until(oA, 5, 'session', CONVERGE_WAIT_MS);
  const expiredBefore = await A.metric('presence_nodes_expired_total');
  const logAt = A.stderr.length;
  await D.crash();
  await until(oA, 1, 'session', EXPIRY_WAIT_MS);
  assert.deepEqual(names(oA), ['obs-a']);
  await A.waitLog(/presence: node [0-9a-f]{16} silent for over 3 s: its \d+ memberships leave/, { after: logAt, what: 'the expiry log line' });
  assert.ok((await A.metric('presence_nodes_expired_total')) > expiredBefore);
  await oA.close();
});

test('a node stopped (SIGSTOP) past the TTL is dropped; once it runs again both sides ask and count each other again', async () => {
  const r = room();
  const E = await node();
  extra.push(E);
  const oA = await member(A, t, r, 'obs-a');
  const oE = await member(E, t, r, 'obs-e');
  await observe(oA);
  await observe(oE);
  await Promise.all([1, 2].map((i) => member(E, t, r, `e${i}`)));
  await until(oA, 4, 'session', CONVERGE_WAIT_MS);
  await until(oE, 4, 'session', CONVERGE_WAIT_MS);
  const logAt = A.stderr.length;
  process.kill(E.pid, 'SIGSTOP');
  try {
    await until(oA, 1, 'session', EXPIRY_WAIT_MS); // E is silent: expired, as if dead
    await A.waitLog(/presence: node [0-9a-f]{16} silent for over 3 s/, { after: logAt, what: 'the expiry log line' });
  } finally {
    process.kill(E.pid, 'SIGCONT');
  }
  // E's heartbeats come back: A does not count it, so asks it for a resync
  // (and E, which dropped A the same way, asks A)
  await until(oA, 4, 'session', CONVERGE_WAIT_MS);
  await until(oE, 4, 'session', CONVERGE_WAIT_MS);
  assert.deepEqual(names(oA), ['e1', 'e2', 'obs-a', 'obs-e']);
  await oA.close();
  await E.stop();
});

test('Redis gone: each node drops the other\'s members after the TTL and keeps its own; Redis back: they converge again', async () => {
  const r = room();
  const oA = await member(A, t, r, 'obs-a');
  const oB = await member(B, t, r, 'obs-b');
  await observe(oA);
  await observe(oB);
  const mine = await Promise.all([member(A, t, r, 'x-a'), member(B, t, r, 'x-b')]);
  await until(oA, 4, 'session', CONVERGE_WAIT_MS);
  await until(oB, 4, 'session', CONVERGE_WAIT_MS);
  await redis.stop();
  await until(oA, 2, 'session', EXPIRY_WAIT_MS);
  await until(oB, 2, 'session', EXPIRY_WAIT_MS);
  assert.deepEqual(names(oA), ['obs-a', 'x-a']);
  assert.deepEqual(names(oB), ['obs-b', 'x-b']);
  // a change while apart (a join needs Redis: a leave is what can happen)
  await mine[1].close();
  await until(oB, 1, 'session', CONVERGE_WAIT_MS);
  await redis.start();
  await until(oA, 3, 'session', CONVERGE_WAIT_MS);
  await until(oB, 3, 'session', CONVERGE_WAIT_MS);
  assert.deepEqual(names(oA), ['obs-a', 'obs-b', 'x-a']);
  assert.deepEqual(names(oB), ['obs-a', 'obs-b', 'x-a']);
  for (const c of [mine[0], oA, oB]) await c.close();
});

test('presence over Redis in /metrics: resyncs counted, the link up; a message of another kind is counted and ignored', async () => {
  await redis.start(); // if an earlier test left it stopped
  for (const srv of [A, B]) {
    assert.ok((await srv.metric('presence_resyncs_total')) >= 1, 'a resync at least at the start');
    await srv.waitMetric('presence_redis_up', (v) => v === 1, 'presence link up', CONVERGE_WAIT_MS);
  }
  const before = await A.metric('presence_bad_messages_total');
  await redisCmd(redis.port, ['SPUBLISH', 'hubbub:v1:presence', 'garbage']);
  await A.waitMetric('presence_bad_messages_total', (v) => v > before, 'bad message counted', CONVERGE_WAIT_MS);
  const r = room();
  const o = await member(A, t, r, 'still-fine');
  await observe(o);
  await until(o, 1);
  await o.close();
});

test('a Redis without sharded Pub/Sub (before 7): presence travels on PUBLISH/SUBSCRIBE, counts the same', async () => {
  // SSUBSCRIBE and SPUBLISH renamed away: what a Redis 6 answers
  const old = await redisServer({ args: ['--rename-command', 'SSUBSCRIBE', 'hb-no-ssubscribe', '--rename-command', 'SPUBLISH', 'hb-no-spublish'] });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-e2e-presence6-'));
  const nodes = [];
  try {
    for (let i = 0; i < 2; i++) nodes.push(await startServer({ dataDir: dir, config: { redis_url: old.url, ...CONFIG } }));
    const [X, Y] = nodes;
    const tt = await X.tenant();
    const r = room();
    const oX = await member(X, tt, r, 'obs-x');
    await observe(oX);
    const y = await member(Y, tt, r, 'on-y');
    await until(oX, 2, 'session', CONVERGE_WAIT_MS);
    assert.match(Y.stderr, /presence travels on PUBLISH\/SUBSCRIBE/);
    await y.close();
    await until(oX, 1, 'session', CONVERGE_WAIT_MS);
    await oX.close();
  } finally {
    for (const n of nodes) await n.stop().catch(() => {});
    await old.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
