// Isolation: nothing crosses rooms, events, plugins or organizations; the
// server sends a connection only the event names it subscribed to; unsubscribe.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, uuid, publishBody, mintJwt } from './harness.mjs';

let srv, t, tSibling, tOther;
const ALL = ['session', 'event', 'organization'];

before(async () => {
  srv = await startServer();
  t = await srv.tenant();
  tSibling = await srv.siblingPlugin(t); // same org, other plugin
  tOther = await srv.tenant(); // other org
});
after(async () => {
  await srv?.stop();
});

/** The same (event, session) ids joined by three tenants. */
async function sameIds(name) {
  const r = room();
  const mine = await srv.join(t, r, { scopes: ALL, subscribe: [name] });
  const sibling = await srv.join(tSibling, r, { scopes: ALL, subscribe: [name] });
  const foreign = await srv.join(tOther, r, { scopes: ALL, subscribe: [name] });
  return { r, mine, sibling, foreign, close: () => Promise.all([mine, sibling, foreign].map((c) => c.close())) };
}

for (const scope of ['session', 'event', 'organization']) {
  test(`HTTP ${scope} publish stays inside its plugin and organization`, async () => {
    const w = await sameIds('iso');
    try {
      const marker = uuid();
      const s = scope === 'session' ? { type: scope, ...w.r } : scope === 'event' ? { type: scope, event_id: w.r.event_id } : { type: scope };
      assert.equal((await srv.publish(t.apiToken, publishBody(s, 'iso', { marker }))).status, 202);
      await w.mine.waitFor((m) => m.data?.marker === marker);
      await w.sibling.expectNone((m) => m.type === 'event', 300, 'event from another plugin');
      await w.foreign.expectNone((m) => m.type === 'event', 0, 'event from another organization');
    } finally {
      await w.close();
    }
  });

  test(`WebSocket ${scope} publish stays inside its plugin and organization`, async () => {
    const w = await sameIds('isows');
    try {
      const marker = uuid();
      const ack = await w.mine.request({ type: 'publish', eventName: 'isows', data: { marker }, scope });
      assert.equal(ack.type, 'ack', JSON.stringify(ack));
      await w.mine.waitFor((m) => m.data?.marker === marker);
      await w.sibling.expectNone((m) => m.type === 'event', 300, 'event from another plugin');
      await w.foreign.expectNone((m) => m.type === 'event', 0, 'event from another organization');
    } finally {
      await w.close();
    }
  });
}

test('rooms: a session publish does not reach another session of the same event', async () => {
  const e = uuid();
  const a = await srv.join(t, { event_id: e, session_id: uuid() }, { subscribe: ['r'] });
  const b = await srv.join(t, { event_id: e, session_id: uuid() }, { subscribe: ['r'] });
  try {
    await a.request({ type: 'publish', eventName: 'r', data: { n: 1 } });
    await a.waitFor((m) => m.type === 'event');
    await b.expectNone((m) => m.type === 'event', 300, 'event from another session');
  } finally {
    await a.close();
    await b.close();
  }
});

test('events: an event publish does not reach another event, even with the same session id', async () => {
  const s = uuid();
  const a = await srv.join(t, { event_id: uuid(), session_id: s }, { scopes: ALL, subscribe: ['ev'] });
  const b = await srv.join(t, { event_id: uuid(), session_id: s }, { scopes: ALL, subscribe: ['ev'] });
  try {
    await a.request({ type: 'publish', eventName: 'ev', data: {}, scope: 'event' });
    await a.waitFor((m) => m.type === 'event');
    await b.expectNone((m) => m.type === 'event', 300, 'event from another event');
    // Also via HTTP, session scope with a's event but b's session id (which is s for both):
    const res = await srv.publish(t.apiToken, publishBody({ type: 'session', event_id: a.welcome.room.event_id, session_id: s }, 'ev', { via: 'http' }));
    assert.equal(res.status, 202);
    await a.waitFor((m) => m.data?.via === 'http');
    await b.expectNone((m) => m.data?.via === 'http', 300, 'session publish of another event');
  } finally {
    await a.close();
    await b.close();
  }
});

test('an API token cannot publish into another plugin, whatever the body says', async () => {
  const w = await sameIds('tok');
  try {
    // tSibling's token addresses the same ids: only the sibling plugin hears it.
    const marker = uuid();
    assert.equal((await srv.publish(tSibling.apiToken, publishBody({ type: 'session', ...w.r }, 'tok', { marker }))).status, 202);
    await w.sibling.waitFor((m) => m.data?.marker === marker);
    await w.mine.expectNone((m) => m.type === 'event', 300, 'event from the sibling token');
    await w.foreign.expectNone((m) => m.type === 'event', 0, 'event from the sibling token');
  } finally {
    await w.close();
  }
});

test('a client cannot name another room: extra fields in publish are ignored', async () => {
  const w = await sameIds('spoof');
  const victim = room();
  const v = await srv.join(t, victim, { subscribe: ['spoof'] });
  try {
    const msg = { type: 'publish', eventName: 'spoof', data: { s: 1 }, scope: 'session', organization_id: tOther.org.id, plugin_id: tSibling.plugin.id, event_id: victim.event_id, session_id: victim.session_id };
    const ack = await w.mine.request(msg);
    assert.equal(ack.type, 'ack');
    await w.mine.waitFor((m) => m.type === 'event');
    await v.expectNone((m) => m.type === 'event', 300, 'event in the named room');
    await w.sibling.expectNone((m) => m.type === 'event', 0, 'event in the named plugin');
    await w.foreign.expectNone((m) => m.type === 'event', 0, 'event in the named org');
  } finally {
    await w.close();
    await v.close();
  }
});

test('event-name filtering: only subscribed names arrive', async () => {
  const r = room();
  const a = await srv.join(t, r, { subscribe: ['apple'] });
  const none = await srv.join(t, r);
  try {
    for (const name of ['banana', 'Apple', 'apple2', 'appl', 'apple/x']) {
      assert.equal((await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, name, {}))).status, 202);
    }
    assert.equal((await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'apple', { ok: 1 }))).status, 202);
    await a.waitFor((m) => m.type === 'event' && m.eventName === 'apple');
    await a.expectNone((m) => m.type === 'event' && m.eventName !== 'apple', 300, 'unsubscribed names');
    await none.expectNone((m) => m.type === 'event', 0, 'any event without a subscription');
  } finally {
    await a.close();
    await none.close();
  }
});

test('unsubscribe stops delivery; subscribing again resumes it', async () => {
  const r = room();
  const a = await srv.join(t, r, { subscribe: ['u', 'keep'] });
  const pub = (name, data) => srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, name, data));
  try {
    await pub('u', { n: 1 });
    await a.waitFor((m) => m.data?.n === 1);
    assert.equal((await a.request({ type: 'unsubscribe', eventName: 'u' })).type, 'ack');
    await pub('u', { n: 2 });
    await pub('keep', { n: 3 });
    await a.waitFor((m) => m.data?.n === 3);
    await a.expectNone((m) => m.data?.n === 2, 300, 'event after unsubscribe');
    await a.subscribe('u');
    await pub('u', { n: 4 });
    await a.waitFor((m) => m.data?.n === 4);
  } finally {
    await a.close();
  }
});

test('closing one subscriber does not disturb the others in its room', async () => {
  const r = room();
  const a = await srv.join(t, r, { subscribe: ['c'] });
  const b = await srv.join(t, r, { subscribe: ['c'] });
  try {
    const open = await srv.metric('websockets_open');
    await a.close();
    await srv.waitMetric('websockets_open', (v) => v <= open - 1, 'the closed subscriber gone on the server');
    assert.equal((await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'c', { after: true }))).status, 202);
    await b.waitFor((m) => m.data?.after === true);
  } finally {
    await b.close();
  }
});

test('offline-minted tokens of two organizations with equal ids stay apart', async () => {
  const r = room();
  const a = await srv.connect(mintJwt(t.signingSecret, srv.claims(t, r, { scopes: ALL })));
  const b = await srv.connect(mintJwt(tOther.signingSecret, srv.claims(tOther, r, { scopes: ALL })));
  try {
    await a.subscribe('x');
    await b.subscribe('x');
    await b.request({ type: 'publish', eventName: 'x', data: { from: 'b' }, scope: 'organization' });
    await b.waitFor((m) => m.data?.from === 'b');
    await a.expectNone((m) => m.type === 'event', 300, 'event from another organization');
  } finally {
    await a.close();
    await b.close();
  }
});
