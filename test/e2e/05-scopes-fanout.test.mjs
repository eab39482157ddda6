// Scope fan-out: session, event and organization publishes, from HTTP and
// from WebSocket, reach exactly the right rooms, exactly once; subscriptions
// spread over both I/O threads all receive.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, uuid, observeFor, publishBody } from './harness.mjs';

let srv, t;

before(async () => {
  srv = await startServer({ threads: 2 });
  t = await srv.tenant();
});
after(async () => {
  await srv?.stop();
});

const ALL = ['session', 'event', 'organization'];

/**
 * A small world in one fresh event tree: e1 has sessions s1 (two clients,
 * a1 and a2) and s2 (b); e2 has s3 (c). Everyone subscribes to `name`.
 */
async function world(name) {
  const e1 = uuid();
  const e2 = uuid();
  const s1 = { event_id: e1, session_id: uuid() };
  const s2 = { event_id: e1, session_id: uuid() };
  const s3 = { event_id: e2, session_id: uuid() };
  const a1 = await srv.join(t, s1, { scopes: ALL, subscribe: [name] });
  const a2 = await srv.join(t, s1, { scopes: ALL, subscribe: [name] });
  const b = await srv.join(t, s2, { scopes: ALL, subscribe: [name] });
  const c = await srv.join(t, s3, { scopes: ALL, subscribe: [name] });
  return { s1, s2, s3, a1, a2, b, c, all: [a1, a2, b, c], close: () => Promise.all([a1, a2, b, c].map((x) => x.close())) };
}

/** Each of `yes` gets exactly one event with this marker, each of `no` none. */
async function expectDelivery(yes, no, marker) {
  const match = (m) => m.type === 'event' && m.data && m.data.marker === marker;
  for (const c of yes) await c.waitFor(match, 3000, `event ${marker}`);
  await observeFor(300, 'duplicates and strays');
  for (const c of yes) assert.equal(c.messages.filter(match).length, 1, `exactly once (${marker})`);
  for (const c of no) assert.equal(c.messages.filter(match).length, 0, `must not receive ${marker}`);
}

test('HTTP session scope: only the clients of that session', async () => {
  const w = await world('hs');
  try {
    const marker = uuid();
    const res = await srv.publish(t.apiToken, publishBody({ type: 'session', ...w.s1 }, 'hs', { marker }));
    assert.equal(res.status, 202, res.text);
    await expectDelivery([w.a1, w.a2], [w.b, w.c], marker);
    const ev = w.a1.messages.find((m) => m.data?.marker === marker);
    assert.equal(ev.scope, 'session');
    assert.equal(ev.eventName, 'hs');
    assert.equal(ev.message_id, res.json.message_id);
  } finally {
    await w.close();
  }
});

test('HTTP event scope: every session of the event, not other events', async () => {
  const w = await world('he');
  try {
    const marker = uuid();
    const res = await srv.publish(t.apiToken, publishBody({ type: 'event', event_id: w.s1.event_id }, 'he', { marker }));
    assert.equal(res.status, 202, res.text);
    await expectDelivery([w.a1, w.a2, w.b], [w.c], marker);
    assert.equal(w.b.messages.find((m) => m.data?.marker === marker).scope, 'event');
  } finally {
    await w.close();
  }
});

test('HTTP organization scope: every room of the organization', async () => {
  const w = await world('ho');
  try {
    const marker = uuid();
    const res = await srv.publish(t.apiToken, publishBody({ type: 'organization' }, 'ho', { marker }));
    assert.equal(res.status, 202, res.text);
    await expectDelivery(w.all, [], marker);
    assert.equal(w.c.messages.find((m) => m.data?.marker === marker).scope, 'organization');
  } finally {
    await w.close();
  }
});

test('WebSocket session scope (the default): own session only, publisher included', async () => {
  const w = await world('ws');
  try {
    const marker = uuid();
    const ack = await w.a1.request({ type: 'publish', eventName: 'ws', data: { marker } });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    await expectDelivery([w.a1, w.a2], [w.b, w.c], marker);
  } finally {
    await w.close();
  }
});

test('WebSocket event scope: every session of the publisher\'s event', async () => {
  const w = await world('we');
  try {
    const marker = uuid();
    const ack = await w.b.request({ type: 'publish', eventName: 'we', data: { marker }, scope: 'event' });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    await expectDelivery([w.a1, w.a2, w.b], [w.c], marker);
  } finally {
    await w.close();
  }
});

test('WebSocket organization scope: every room', async () => {
  const w = await world('wo');
  try {
    const marker = uuid();
    const ack = await w.c.request({ type: 'publish', eventName: 'wo', data: { marker }, scope: 'organization' });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    await expectDelivery(w.all, [], marker);
  } finally {
    await w.close();
  }
});

test('a publisher that did not subscribe does not get its own publish', async () => {
  const r = room();
  const pub = await srv.join(t, r);
  const sub = await srv.join(t, r, { subscribe: ['self'] });
  try {
    const marker = uuid();
    await pub.request({ type: 'publish', eventName: 'self', data: { marker } });
    await expectDelivery([sub], [pub], marker);
  } finally {
    await pub.close();
    await sub.close();
  }
});

test('a subscriber of several names gets each publish once', async () => {
  const r = room();
  const c = await srv.join(t, r, { subscribe: ['n1', 'n2'] });
  try {
    for (let i = 0; i < 20; i++) {
      const res = await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, i % 2 ? 'n2' : 'n1', { i }));
      assert.equal(res.status, 202);
    }
    await c.waitFor(() => c.events().length >= 20, 3000, '20 events');
    await observeFor(200, 'duplicates');
    // The contract promises delivery once, not an order between publishes
    // made on separate HTTP connections (they may land on different threads).
    assert.deepEqual(c.events().map((m) => m.data.i).sort((a, b) => a - b), [...Array(20).keys()]);
  } finally {
    await c.close();
  }
});

test('across threads: 8 connections in one room all receive, once', async () => {
  const r = room();
  const clients = [];
  try {
    for (let i = 0; i < 8; i++) clients.push(await srv.join(t, r, { subscribe: ['thr'] }));
    const marker = uuid();
    assert.equal((await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'thr', { marker }))).status, 202);
    await expectDelivery(clients, [], marker);
    // And from a WebSocket publisher (on whichever thread it landed).
    const m2 = uuid();
    await clients[3].request({ type: 'publish', eventName: 'thr', data: { marker: m2 } });
    await expectDelivery(clients, [], m2);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
});

test('across threads: 8 sessions of one event, event scope reaches all, session scope one', async () => {
  const e = uuid();
  const rooms = Array.from({ length: 8 }, () => ({ event_id: e, session_id: uuid() }));
  const clients = [];
  try {
    for (const r of rooms) clients.push(await srv.join(t, r, { scopes: ALL, subscribe: ['ev8'] }));
    const marker = uuid();
    assert.equal((await srv.publish(t.apiToken, publishBody({ type: 'event', event_id: e }, 'ev8', { marker }))).status, 202);
    await expectDelivery(clients, [], marker);
    const m2 = uuid();
    await clients[5].request({ type: 'publish', eventName: 'ev8', data: { marker: m2 } });
    await expectDelivery([clients[5]], clients.filter((_, i) => i !== 5), m2);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
});

test('a burst of 200 HTTP publishes reaches every subscriber once', async () => {
  const r = room();
  const a = await srv.join(t, r, { subscribe: ['burst'] });
  const b = await srv.join(t, r, { subscribe: ['burst'] });
  try {
    const N = 200;
    for (let i = 0; i < N; i += 20) {
      const batch = [];
      for (let j = i; j < i + 20; j++) batch.push(srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'burst', { j })));
      for (const res of await Promise.all(batch)) assert.equal(res.status, 202, res.text);
    }
    for (const c of [a, b]) await c.waitFor(() => c.events('burst').length >= N, 5000, `${N} events`);
    await observeFor(200, 'duplicates');
    for (const c of [a, b]) {
      const got = c.events('burst').map((m) => m.data.j);
      assert.equal(got.length, N);
      assert.equal(new Set(got).size, N, 'no duplicates');
    }
  } finally {
    await a.close();
    await b.close();
  }
});

test('a subscription is live as soon as it is acked', async () => {
  const r = room();
  const c = await srv.join(t, r);
  try {
    for (let i = 0; i < 10; i++) {
      const name = `live${i}`;
      await c.subscribe(name);
      const res = await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, name, { i }));
      assert.equal(res.status, 202);
      await c.waitFor((m) => m.type === 'event' && m.eventName === name, 2000, name);
    }
  } finally {
    await c.close();
  }
});

test('50 subscribers × 50 publishes: 2500 deliveries, none lost or doubled', async () => {
  const e = uuid();
  const clients = [];
  try {
    for (let i = 0; i < 50; i++) clients.push(await srv.join(t, { event_id: e, session_id: uuid() }, { subscribe: ['many'] }));
    for (let i = 0; i < 50; i += 10) {
      const batch = [];
      for (let j = i; j < i + 10; j++) batch.push(srv.publish(t.apiToken, publishBody({ type: 'event', event_id: e }, 'many', { j })));
      for (const res of await Promise.all(batch)) assert.equal(res.status, 202, res.text);
    }
    for (const c of clients) await c.waitFor(() => c.events('many').length >= 50, 5000, '50 events');
    await observeFor(200, 'duplicates');
    for (const c of clients) {
      const got = c.events('many').map((m) => m.data.j).sort((x, y) => x - y);
      assert.deepEqual(got, [...Array(50).keys()]);
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
});
