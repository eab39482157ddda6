// Hostile catalogue, tenant isolation: H80-H90. A client tries to reach
// another room, event, plugin or organization through every field it
// controls; nothing may arrive, and the observer (another room) must not see
// a single extra message (its sequence check would fail).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, mintJwt, observeFor } from './harness.mjs';
import { hostileSuite, rawJoin, publishBody, room, uuid } from './hostile-lib.mjs';

const ctx = hostileSuite();

async function reply(ws, obj) {
  const id = 'q' + uuid().slice(0, 8);
  ws.write(encodeFrame({ payload: JSON.stringify({ ...obj, id }) }));
  return ws.waitJson((m) => m.id === id && (m.type === 'ack' || m.type === 'error'), 3000, `reply to ${JSON.stringify(obj).slice(0, 80)}`);
}

test('H80 eventName separators and wildcards (: / * #) never match other names', async () => {
  const r = room();
  const victim = await ctx.srv.join(ctx.t, r, { subscribe: ['a:b', 'a/b', 'a'] });
  const attacker = await rawJoin(ctx, { r });
  // Names with '*' and '#' are refused outright; ':' and '/' names are plain names.
  for (const name of ['*', '#', 'a:*', 'a/#', 'a*', '>']) {
    const m = await reply(attacker, { type: 'publish', eventName: name, data: {}, scope: 'session' });
    assert.equal(m.code, 'invalid_event_name', `${name}: ${JSON.stringify(m)}`);
  }
  for (const name of ['a:', 'a:b:c', 'a/', 'a/b/c', 'a:b/', 'A:b', 'a.b']) {
    const m = await reply(attacker, { type: 'publish', eventName: name, data: { name }, scope: 'session' });
    assert.equal(m.type, 'ack', `${name}: ${JSON.stringify(m)}`);
  }
  await victim.expectNone((m) => m.type === 'event', 300, 'event for a different name');
  await victim.close();
  attacker.destroy();
  await ctx.alive();
});

test('H81 unicode look-alikes of a subscribed name are invalid_event_name', async () => {
  const ws = await rawJoin(ctx);
  for (const name of ['оbs' /* Cyrillic o */, 'obs\u200b', 'ｏbs', 'obs\u0301', 'o\u00a0bs', 'ob\u0455']) {
    for (const type of ['subscribe', 'publish']) {
      const m = await reply(ws, { type, eventName: name, data: {}, scope: 'session' });
      assert.equal(m.code, 'invalid_event_name', `${type} ${JSON.stringify(name)}: ${JSON.stringify(m)}`);
    }
  }
  ws.destroy();
  await ctx.alive();
});

test('H82 over-long and empty event names: invalid_event_name (WS and HTTP)', async () => {
  const ws = await rawJoin(ctx);
  for (const name of ['', 'x'.repeat(129), 'x'.repeat(3000)]) {
    const m = await reply(ws, { type: 'subscribe', eventName: name });
    assert.equal(m.code, 'invalid_event_name');
    const h = await ctx.srv.publish(ctx.t.apiToken, publishBody({ type: 'session', ...room() }, name, {}));
    assert.equal(h.status, 422, h.text);
    assert.equal(h.json.error.code, 'invalid_event_name');
  }
  const ok = await reply(ws, { type: 'subscribe', eventName: 'x'.repeat(128) });
  assert.equal(ok.type, 'ack');
  ws.destroy();
  await ctx.alive();
});

test('H83 room fields smuggled into a WebSocket publish are ignored: it stays in the token room', async () => {
  const mine = room();
  const ws = await rawJoin(ctx, { r: mine });
  await reply(ws, { type: 'subscribe', eventName: 'obs' });
  const other = await ctx.srv.tenant();
  const m = await reply(ws, {
    type: 'publish',
    eventName: 'obs',
    scope: 'session',
    data: { smuggled: true },
    event_id: ctx.obsRoom.event_id,
    session_id: ctx.obsRoom.session_id,
    organization_id: other.orgId,
    plugin_id: other.pluginId,
    room: { ...ctx.obsRoom },
  });
  assert.equal(m.type, 'ack');
  // It reached its own room (the publisher subscribed) and nowhere else.
  await ws.waitJson((e) => e.type === 'event' && e.data?.smuggled === true);
  await observeFor(200, 'the smuggled event reaching the observer room');
  ws.destroy();
  await ctx.alive(); // the observer's sequence check fails on any extra event
});

test('H84 scope tricks: unknown, case, array, object and forbidden scopes', async () => {
  const token = await ctx.srv.connToken(ctx.t, { ...room(), scopes: ['session'] });
  const ws = await ctx.srv.rawWs(token);
  await ws.waitJson((m) => m.type === 'welcome');
  const cases = [
    ['SESSION', 'invalid_scope'],
    [' session', 'invalid_scope'],
    ['sess', 'invalid_scope'],
    ['global', 'invalid_scope'],
    [['session'], 'invalid_type'],
    [{ type: 'session' }, 'invalid_type'],
    ['event', 'scope_forbidden'],
    ['organization', 'scope_forbidden'],
  ];
  for (const [scope, code] of cases) {
    const m = await reply(ws, { type: 'publish', eventName: 'obs', data: {}, scope });
    assert.equal(m.code, code, `scope ${JSON.stringify(scope)}: ${JSON.stringify(m)}`);
  }
  ws.destroy();
  await ctx.alive();
});

test("H85 another organization's API token naming this room's ids over HTTP: nothing arrives", async () => {
  const other = await ctx.srv.tenant();
  for (const scope of [{ type: 'session', ...ctx.obsRoom }, { type: 'event', event_id: ctx.obsRoom.event_id }, { type: 'organization' }]) {
    const res = await ctx.srv.publish(other.apiToken, publishBody(scope, 'obs', { intruder: true }));
    assert.equal(res.status, 202, res.text); // accepted into the other tenant's own rooms
  }
  await observeFor(200, "another organization's publishes reaching the observer room");
  await ctx.alive();
});

test('H86 a sibling plugin of the same organization: organization scope does not cross plugins', async () => {
  const sib = await ctx.srv.siblingPlugin(ctx.t);
  assert.equal((await ctx.srv.publish(sib.apiToken, publishBody({ type: 'organization' }, 'obs', { sibling: true }))).status, 202);
  const tok = await ctx.srv.connToken(sib, { ...ctx.obsRoom, scopes: ['session', 'event', 'organization'] });
  const c = await ctx.srv.connect(tok);
  for (const scope of ['session', 'event', 'organization']) {
    const m = await c.request({ type: 'publish', eventName: 'obs', data: { sibling: scope }, scope });
    assert.equal(m.type, 'ack');
  }
  await c.close();
  await observeFor(200, "a sibling plugin's publishes reaching the observer room");
  await ctx.alive();
});

test('H87 HTTP publish body fields that try to name another organization or plugin are refused or ignored', async () => {
  const other = await ctx.srv.tenant();
  const body = {
    scope: { type: 'session', ...ctx.obsRoom, organization_id: other.orgId, plugin_id: other.pluginId },
    payload: { event: { eventName: 'obs', data: { x: 1 } } },
    organization_id: other.orgId,
    plugin_id: other.pluginId,
  };
  const res = await ctx.srv.publish(other.apiToken, body);
  assert.ok([202, 422].includes(res.status), `${res.status} ${res.text}`);
  await observeFor(200, 'a publish naming another organization reaching the observer room');
  await ctx.alive();
});

test('H88 duplicate token parameters: the first one counts, a second cannot switch rooms', async () => {
  const good = await ctx.srv.connToken(ctx.t, { ...room() });
  const obsTok = mintJwt(ctx.t.signingSecret, ctx.srv.claims(ctx.t, ctx.obsRoom));
  // garbage first, valid second: refused
  await assert.rejects(ctx.srv.rawWs(null, { path: `/api/v1/ws?token=garbage&token=${encodeURIComponent(good)}` }), (e) => e.response?.status === 401);
  // valid first, observer room second: the first room
  const ws = await ctx.srv.rawWs(null, { path: `/api/v1/ws?token=${encodeURIComponent(good)}&token=${encodeURIComponent(obsTok)}` });
  const w = await ws.waitJson((m) => m.type === 'welcome');
  assert.notEqual(w.room.session_id, ctx.obsRoom.session_id);
  ws.destroy();
  await ctx.alive();
});

test('H89 path tricks on the WebSocket endpoint: no upgrade', async () => {
  const tok = await ctx.srv.connToken(ctx.t, { ...room() });
  for (const p of [`/api/v1/ws/../ws?token=${tok}`, `/api/v1//ws?token=${tok}`, `/API/V1/WS?token=${tok}`, `/api/v1/ws%2f?token=${tok}`]) {
    await assert.rejects(ctx.srv.rawWs(null, { path: p }), (e) => {
      assert.ok([400, 404].includes(e.response?.status), `${p}: ${e.response?.status}`);
      return true;
    });
  }
  await ctx.alive();
});

test('H90 subscribe and unsubscribe with room fields: only the token room is touched', async () => {
  const ws = await rawJoin(ctx);
  const m = await reply(ws, { type: 'subscribe', eventName: 'obs', ...ctx.obsRoom, scope: 'organization' });
  assert.equal(m.type, 'ack');
  await ctx.alive(); // an observer-room publish must not reach ws
  await observeFor(150, 'the observer-room event crossing into ws');
  assert.equal(ws.messages.filter((x) => x.type === 'event').length, 0, 'an event crossed rooms');
  ws.destroy();
});
