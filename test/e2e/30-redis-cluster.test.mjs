// Three nodes on one data directory and one Redis (`--redis URL`): every scope,
// published over HTTP and over WebSocket through each node, reaches the
// subscribers on every node exactly once; isolation between rooms, plugins and
// organizations holds across nodes; a node subscribes in Redis only to the
// channels it has local subscribers on and unsubscribes when the last leaves;
// one publish is one Redis PUBLISH.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { room, uuid, observeFor, publishBody, poll } from './harness.mjs';
import { redisServer, redisCmd, startCluster, joinAll, scopeOf, settle, publishCalls, ALL_SCOPES } from './redis-harness.mjs';

let redis, cluster, A, B, C, t, tSibling, tOther;

before(async () => {
  redis = await redisServer();
  cluster = await startCluster(3, redis.url);
  [A, B, C] = cluster.nodes;
  t = await A.tenant();
  tSibling = await A.siblingPlugin(t);
  tOther = await A.tenant();
});

after(async () => {
  try {
    await cluster?.stop();
  } finally {
    await redis?.stop();
  }
});

const chanNames = (tenant, r) => ({
  o: `hubbub:v1:o:${tenant.orgId}:${tenant.pluginId}`,
  e: `hubbub:v1:e:${tenant.orgId}:${tenant.pluginId}:${r.event_id}`,
  s: `hubbub:v1:s:${tenant.orgId}:${tenant.pluginId}:${r.event_id}:${r.session_id}`,
});

/** PUBSUB NUMSUB: how many nodes are subscribed to each channel. */
async function numsub(names) {
  const reply = await redisCmd(redis.port, ['PUBSUB', 'NUMSUB', ...names]);
  const out = {};
  for (let i = 0; i < reply.length; i += 2) out[reply[i]] = reply[i + 1];
  return out;
}

async function waitNumsub(names, want, what) {
  let got;
  await poll(async () => {
    got = await numsub(names);
    return names.every((n) => got[n] === want);
  }, 3000, what).catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(got)}`);
  });
}

test('every node reports the redis broker up in /healthz', async () => {
  for (const srv of cluster.nodes) {
    const h = await srv.http('GET', '/healthz');
    assert.equal(h.status, 200, h.text);
    assert.equal(h.json.status, 'ok');
    assert.deepEqual(h.json.broker, { type: 'redis', state: 'up' });
  }
});

test('every scope, over HTTP and WebSocket through every node, reaches every node once', async () => {
  const e = uuid();
  const r1 = { event_id: e, session_id: uuid() };
  const r2 = { event_id: e, session_id: uuid() }; // same event, other session
  const r3 = room(); // other event
  const subs = []; // { c, node, room }
  const pubs = []; // a publisher (subscribed to nothing) in r1 on each node
  try {
    for (const [ni, node] of cluster.nodes.entries()) {
      for (const [ri, r] of [r1, r2, r3].entries()) subs.push({ c: await joinAll(node, t, r, ['x']), node: ni, room: ri });
      pubs.push(await joinAll(node, t, r1, []));
    }
    // Every node subscribed to every channel of the three rooms.
    const names = [r1, r2, r3].flatMap((r) => Object.values(chanNames(t, r)));
    await waitNumsub([...new Set(names)], 3, 'all three nodes subscribed');

    const sent = []; // { marker, scope, message_id }
    for (const scope of ALL_SCOPES) {
      for (const [ni, node] of cluster.nodes.entries()) {
        const m1 = uuid();
        const res = await node.publish(t.apiToken, publishBody(scopeOf(scope, r1), 'x', { marker: m1 }));
        assert.equal(res.status, 202, res.text);
        sent.push({ marker: m1, scope, message_id: res.json.message_id, how: `HTTP via node ${ni}` });
        const m2 = uuid();
        const ack = await pubs[ni].request({ type: 'publish', eventName: 'x', scope, data: { marker: m2 } });
        assert.equal(ack.type, 'ack', JSON.stringify(ack));
        sent.push({ marker: m2, scope, message_id: ack.message_id, how: `WebSocket via node ${ni}` });
      }
    }
    const targets = { session: [0], event: [0, 1], organization: [0, 1, 2] };
    for (const s of sent) {
      const want = subs.filter((x) => targets[s.scope].includes(x.room));
      for (const x of want) {
        const ev = await x.c.waitFor((m) => m.data?.marker === s.marker, 3000, `${s.scope} ${s.how} on node ${x.node} room ${x.room}`);
        assert.equal(ev.message_id, s.message_id, 'one message id on every node');
        assert.equal(ev.scope, s.scope);
      }
    }
    await observeFor(400, 'duplicates from the other nodes');
    for (const s of sent) {
      for (const x of subs) {
        const n = x.c.messages.filter((m) => m.data?.marker === s.marker).length;
        assert.equal(n, targets[s.scope].includes(x.room) ? 1 : 0, `${s.scope} ${s.how}: copies on node ${x.node} room ${x.room}`);
      }
    }
    for (const p of pubs) assert.equal(p.messages.filter((m) => m.type === 'event').length, 0, 'publishers subscribed to nothing');
  } finally {
    for (const x of [...subs.map((s) => s.c), ...pubs]) await x.close();
  }
});

test('isolation across nodes: rooms, plugins and organizations', async () => {
  const r = room();
  const other = { event_id: r.event_id, session_id: uuid() };
  const mine = await joinAll(C, t, r, ['iso']);
  const otherRoom = await joinAll(A, t, other, ['iso']); // same event: hears event and organization only
  const sibling = await joinAll(A, tSibling, r, ['iso']); // same ids, another plugin
  const foreign = await joinAll(C, tOther, r, ['iso']); // same ids, another organization
  const otherName = await joinAll(A, t, r, ['iso2']); // same room, another event name
  const all = [mine, otherRoom, sibling, foreign, otherName];
  try {
    await settle(B, t, r, mine, 'iso');
    await settle(B, t, other, otherRoom, 'iso');
    for (const type of ALL_SCOPES) {
      const res = await B.publish(t.apiToken, publishBody(scopeOf(type, r), 'iso', { s: type }));
      assert.equal(res.status, 202, res.text);
      await mine.waitFor((m) => m.data?.s === type, 3000, `${type} on the subscriber`);
    }
    await otherRoom.waitFor((m) => m.data?.s === 'organization', 3000, 'organization on the other session');
    await observeFor(300, 'a session-scope event straying into the other session');
    assert.deepEqual(otherRoom.events('iso').filter((m) => m.data?.s).map((m) => m.data.s).sort(), ['event', 'organization']);
    await sibling.expectNone((m) => m.type === 'event', 0, 'event from another plugin');
    await foreign.expectNone((m) => m.type === 'event', 0, 'event from another organization');
    await otherName.expectNone((m) => m.type === 'event', 0, 'event of another name');
  } finally {
    for (const c of all) await c.close();
  }
});

test('interest routing: a node subscribes in Redis only while it has local subscribers', async () => {
  const tt = await A.tenant();
  const r = room();
  const names = Object.values(chanNames(tt, r));
  assert.deepEqual(Object.values(await numsub(names)), [0, 0, 0], 'nobody subscribed yet');
  const a1 = await joinAll(A, tt, r, ['one']);
  await waitNumsub(names, 1, 'node A on the session, event and organization channels');
  const a2 = await joinAll(A, tt, r, ['one', 'two']); // more local subscribers: no new Redis subscription
  const b1 = await joinAll(B, tt, r, ['one']);
  await waitNumsub(names, 2, 'nodes A and B');
  // C has no subscriber of this plugin: it must not be subscribed.
  const mine = (await redisCmd(redis.port, ['PUBSUB', 'CHANNELS', `hubbub:v1:*:${tt.orgId}:*`])).sort();
  assert.deepEqual(mine, [...names].sort(), 'exactly the three channels of the room');
  const open = await A.metric('websockets_open');
  await a1.close();
  await A.waitMetric('websockets_open', (v) => v <= open - 1, 'a1 gone on node A');
  await observeFor(200, 'an UNSUBSCRIBE node A must not send while a2 is there');
  assert.deepEqual(Object.values(await numsub(names)), [2, 2, 2], 'A keeps its subscription while a2 is there');
  await a2.close();
  await waitNumsub(names, 1, 'A unsubscribed after its last local subscriber left');
  await b1.close();
  await waitNumsub(names, 0, 'nobody subscribed after the last subscriber left');
});

test('subscribe/unsubscribe churn across threads ends in the right Redis subscriptions', async () => {
  const tt = await A.tenant();
  const r = room();
  const names = Object.values(chanNames(tt, r));
  // Several connections (spread over A's threads) toggle quickly; Redis sees
  // SUBSCRIBE/UNSUBSCRIBE pairs in flight for the same channels.
  const cs = [];
  try {
    for (let i = 0; i < 4; i++) cs.push(await joinAll(A, tt, r, []));
    for (let round = 0; round < 25; round++) {
      await Promise.all(cs.map((c) => c.request({ type: 'subscribe', eventName: 'churn' })));
      await Promise.all(cs.map((c) => c.request({ type: 'unsubscribe', eventName: 'churn' })));
    }
    await waitNumsub(names, 0, 'no subscription left after the churn');
    await cs[0].subscribe('churn');
    await waitNumsub(names, 1, 'one node subscribed');
    await settle(B, tt, r, cs[0], 'churn');
    const res = await B.publish(tt.apiToken, publishBody({ type: 'organization' }, 'churn', { final: 1 }));
    assert.equal(res.status, 202);
    await cs[0].waitFor((m) => m.data?.final === 1, 3000, 'delivery after churn');
    await observeFor(200, 'duplicates and deliveries to the unsubscribed');
    assert.equal(cs[0].messages.filter((m) => m.data?.final === 1).length, 1);
    for (const c of cs.slice(1)) assert.equal(c.messages.filter((m) => m.type === 'event').length, 0);
  } finally {
    for (const c of cs) await c.close();
  }
});

test('unsubscribe stops delivery across nodes', async () => {
  const r = room();
  const sub = await joinAll(A, t, r, ['u']);
  try {
    await settle(B, t, r, sub, 'u');
    const un = await sub.request({ type: 'unsubscribe', eventName: 'u' });
    assert.equal(un.type, 'ack');
    await waitNumsub(Object.values(chanNames(t, r)), 0, 'A unsubscribed in Redis');
    for (const scope of ALL_SCOPES) {
      const res = await B.publish(t.apiToken, publishBody(scopeOf(scope, r), 'u', { after: scope }));
      assert.equal(res.status, 202);
    }
    await sub.expectNone((m) => m.data?.after, 400, 'event after unsubscribe');
  } finally {
    await sub.close();
  }
});

test('one publish is one Redis PUBLISH, whatever the number of nodes and subscribers', async () => {
  const r = room();
  const clients = [];
  try {
    for (const node of cluster.nodes) for (let i = 0; i < 3; i++) clients.push(await joinAll(node, t, r, ['n']));
    await waitNumsub(Object.values(chanNames(t, r)), 3, 'all nodes subscribed');
    const before = await publishCalls(redis.port);
    const N = 10;
    for (let i = 0; i < N; i++) {
      const res = await B.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'n', { i }));
      assert.equal(res.status, 202);
    }
    for (const c of clients) await poll(() => c.events('n').length === N, 3000, 'all events on every client');
    assert.equal((await publishCalls(redis.port)) - before, N, 'PUBLISH commands');
    await observeFor(300, 'duplicates');
    for (const c of clients) assert.equal(c.events('n').length, N, 'no duplicate');
  } finally {
    for (const c of clients) await c.close();
  }
});

test('a publish with no subscriber anywhere still answers 202 and reaches nobody', async () => {
  const res = await C.publish(t.apiToken, publishBody({ type: 'session', ...room() }, 'nobody', {}));
  assert.equal(res.status, 202, res.text);
});
