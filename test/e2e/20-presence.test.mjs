// Presence (docs/protocol.md, "Presence"): snapshots, coalesced deltas, exact
// counts; tabs of one user count once; leave on close, on a dead TCP peer
// (idle timeout) and at shutdown; isolation across sessions, events, plugins
// and organizations; the info claim; GET /api/v1/presence and its errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, uuid, mintJwt, assertError, poll } from './harness.mjs';
import { member as presenceMember, ask, observe, view, until } from './presence-lib.mjs';

const INTERVAL_MS = 200;
let srv, t;

before(async () => {
  srv = await startServer({ threads: 2, config: { presence_interval_ms: INTERVAL_MS } });
  t = await srv.tenant();
});
after(async () => {
  await srv.stop();
  assert.doesNotMatch(srv.stderr, /still held at shutdown/);
});

/** A connection of `sub` in room `r` (offline token), scopes and info as given. */
const member = (r, sub, { tenant = t, server = srv, ...opts } = {}) => presenceMember(server, tenant, r, sub, opts);

test('one user joins and leaves; the snapshot lists the observer itself; info is forwarded', async () => {
  const r = room();
  const a = await member(r, 'alice', { info: { name: 'Alice', role: 'host' } });
  const snap = await observe(a);
  assert.equal(snap.scope, 'session');
  assert.equal(typeof snap.version, 'number');
  assert.equal(snap.truncated, false);
  assert.equal(snap.cursor, undefined);
  await until(a, 1);
  assert.deepEqual(view(a).members.get('alice'), { name: 'Alice', role: 'host' });
  const b = await member(r, 'bob', { info: { name: 'Bob' } });
  const v = await until(a, 2);
  assert.deepEqual(v.members.get('bob'), { name: 'Bob' });
  const join = a.messages.find((m) => m.type === 'presence.delta' && m.joins.some((j) => j.user_id === 'bob'));
  assert.deepEqual(Object.keys(join), ['type', 'scope', 'version', 'count', 'joins', 'leaves', 'truncated']);
  await b.close();
  await until(a, 1);
  assert.ok(a.messages.some((m) => m.type === 'presence.delta' && m.leaves.includes('bob') && m.count === 1));
  await a.close();
});

test('two tabs of one user count once; the user leaves when the last tab closes', async () => {
  const r = room();
  const obs = await member(r, 'observer');
  await observe(obs);
  await until(obs, 1);
  const tab1 = await member(r, 'carol');
  const tab2 = await member(r, 'carol');
  await until(obs, 2);
  await tab1.close();
  await obs.expectNone((m) => m.type === 'presence.delta' && m.leaves.includes('carol'), 3 * INTERVAL_MS, 'a leave');
  assert.equal(view(obs).count, 2);
  await tab2.close();
  await until(obs, 1);
  await obs.close();
});

test('50 users: the count and the list are exact; one delta per interval, not one per join', async () => {
  const r = room();
  const obs = await member(r, 'observer');
  await observe(obs);
  await until(obs, 1);
  const t0 = Date.now();
  const users = await Promise.all(Array.from({ length: 50 }, (_, i) => member(r, `u${i}`)));
  const v = await until(obs, 51);
  for (let i = 0; i < 50; i++) assert.ok(v.members.has(`u${i}`), `u${i} listed`);
  const deltas = obs.messages.filter((m) => m.type === 'presence.delta').length;
  assert.ok(deltas <= (Date.now() - t0) / INTERVAL_MS + 2, `${deltas} deltas in ${Date.now() - t0} ms`);
  // Half leave; the rest stay.
  await Promise.all(users.slice(0, 25).map((c) => c.close()));
  const after25 = await until(obs, 26);
  assert.ok(!after25.members.has('u0') && after25.members.has('u49'));
  await Promise.all(users.slice(25).map((c) => c.close()));
  await until(obs, 1);
  await obs.close();
});

test('a dead TCP peer leaves after the idle timeout', async () => {
  const s2 = await startServer({ threads: 2, config: { presence_interval_ms: INTERVAL_MS, ping_interval_ms: 300, idle_timeout_ms: 1000 } });
  try {
    const t2 = await s2.tenant();
    const r = room();
    const obs = await member(r, 'observer', { tenant: t2, server: s2 });
    await observe(obs);
    const raw = await s2.rawWs(mintJwt(t2.signingSecret, s2.claims(t2, r, { sub: 'ghost' })));
    await raw.waitJson((m) => m.type === 'welcome');
    await until(obs, 2);
    raw.pause(); // reads nothing, answers no ping: as a peer whose network went away
    const t0 = Date.now();
    await until(obs, 1, 'session', 15000);
    assert.ok(Date.now() - t0 >= 900, 'not before the idle timeout');
    raw.destroy();
    await obs.close();
  } finally {
    await s2.stop();
  }
});

test('SIGTERM: every member leaves before the process exits', async () => {
  const s2 = await startServer({ threads: 2, config: { presence_interval_ms: INTERVAL_MS } });
  const t2 = await s2.tenant();
  const r = room();
  const obs = await member(r, 'observer', { tenant: t2, server: s2 });
  await observe(obs, 'session');
  await Promise.all(Array.from({ length: 10 }, (_, i) => member(r, `m${i}`, { tenant: t2, server: s2 })));
  await until(obs, 11);
  await s2.stop(); // exit 0, no sanitizer report
  assert.doesNotMatch(s2.stderr, /still held at shutdown/);
  assert.equal(obs.closeInfo.code, 1001);
});

test('event presence: every session of the event, each user once; needs the event scope', async () => {
  const ev = uuid();
  const r1 = { event_id: ev, session_id: uuid() }, r2 = { event_id: ev, session_id: uuid() };
  const noScope = await member(r1, 'viewer');
  const err = await ask(noScope, { type: 'presence.subscribe', scope: 'event' });
  assert.equal(err.type, 'error');
  assert.equal(err.code, 'scope_forbidden');
  const org = await ask(noScope, { type: 'presence.subscribe', scope: 'organization' });
  assert.equal(org.code, 'invalid_scope');
  const host = await member(r1, 'host', { scopes: ['session', 'event'] });
  await observe(host, 'event');
  const d1 = await member(r1, 'dana');
  const d2 = await member(r2, 'dana'); // the same user in another session
  const e1 = await member(r2, 'erin');
  const v = await until(host, 4, 'event');
  assert.deepEqual([...v.members.keys()].sort(), ['dana', 'erin', 'host', 'viewer']);
  await d1.close(); // dana is still in the event through session 2
  await host.expectNone((m) => m.type === 'presence.delta' && m.scope === 'event' && m.leaves.includes('dana'), 3 * INTERVAL_MS, 'dana leaving the event');
  await d2.close();
  assert.ok(!(await until(host, 3, 'event')).members.has('dana'));
  for (const c of [noScope, host, e1]) await c.close();
});

test('isolation: another session, event, plugin or organization never shows up', async () => {
  const r = room();
  const obs = await member(r, 'observer', { scopes: ['session', 'event'] });
  await observe(obs, 'session');
  await observe(obs, 'event');
  await until(obs, 1, 'session');
  await until(obs, 1, 'event');
  const sibling = await srv.siblingPlugin(t);
  const seen = obs.messages.length;
  const other = await srv.tenant();
  const strangers = await Promise.all([
    member({ event_id: r.event_id, session_id: uuid() }, 'other-session'), // same event: event presence only
    member(room(), 'other-event'),
    member(r, 'other-plugin', { tenant: sibling }),
    member(r, 'other-org', { tenant: other }),
  ]);
  await until(obs, 2, 'event');
  await obs.expectNone((m) => m.type === 'presence.delta' && m.scope === 'session' && obs.messages.indexOf(m) >= seen, 3 * INTERVAL_MS, 'a session delta');
  assert.deepEqual([...view(obs, 'session').members.keys()], ['observer']);
  assert.deepEqual([...view(obs, 'event').members.keys()].sort(), ['observer', 'other-session']);
  for (const c of [...strangers, obs]) await c.close();
});

test('presence.get pages through a room in join order; presence.unsubscribe stops deltas', async () => {
  const s2 = await startServer({ threads: 2, config: { presence_interval_ms: INTERVAL_MS, presence_list_max: 10 } });
  try {
    const t2 = await s2.tenant();
    const r = room();
    const obs = await member(r, 'observer', { tenant: t2, server: s2 });
    const users = [];
    for (let i = 0; i < 24; i++) users.push(await member(r, `p${String(i).padStart(2, '0')}`, { tenant: t2, server: s2 }));
    await poll(async () => (await ask(obs, { type: 'presence.get' })).count === 25, 5000, '25 present');
    const snap = await observe(obs);
    assert.equal(snap.count, 25);
    assert.equal(snap.members.length, 10);
    assert.equal(snap.truncated, true);
    assert.match(snap.cursor, /^[0-9]+$/);
    const seen = snap.members.map((m) => m.user_id);
    assert.equal(seen[0], 'observer');
    let cursor = snap.cursor;
    for (;;) {
      const page = await ask(obs, { type: 'presence.get', cursor, limit: 7 });
      assert.equal(page.type, 'presence.snapshot');
      seen.push(...page.members.map((m) => m.user_id));
      if (!page.truncated) break;
      cursor = page.cursor;
    }
    assert.deepEqual(seen, ['observer', ...users.map((_, i) => `p${String(i).padStart(2, '0')}`)], 'everyone once, in join order');
    // A delta lists at most presence_list_max members and says so.
    const more = [];
    for (let i = 0; i < 15; i++) more.push(member(r, `q${i}`, { tenant: t2, server: s2 }));
    const joined = await Promise.all(more);
    await until(obs, 40);
    const deltas = obs.messages.filter((m) => m.type === 'presence.delta');
    assert.ok(deltas.every((d) => d.joins.length + d.leaves.length <= 10));
    const unsub = await ask(obs, { type: 'presence.unsubscribe', scope: 'session' });
    assert.equal(unsub.type, 'ack');
    const n = obs.messages.length;
    await Promise.all(joined.map((c) => c.close()));
    await obs.expectNone((m) => m.type === 'presence.delta' && obs.messages.indexOf(m) >= n, 3 * INTERVAL_MS, 'a delta after unsubscribe');
    const bad = await ask(obs, { type: 'presence.get', cursor: 'abc' });
    assert.equal(bad.code, 'invalid_value');
    for (const c of [...users, obs]) await c.close();
  } finally {
    await s2.stop();
  }
});

test('the info claim: too large or not an object is refused; the connection-token API takes it', async () => {
  const r = room();
  const big = { name: 'x'.repeat(1100) };
  for (const info of [big, 'Ada', [1], null]) {
    await assert.rejects(member(r, 'u', { info }), (e) => e.status === 401 && e.json.error.code === 'invalid_token' && /info/.test(e.json.error.message));
  }
  const res = await srv.http('POST', '/api/v1/connection_tokens', {
    headers: { Authorization: t.apiToken },
    body: { ...r, user_id: 'frank', info: { name: 'Frank' } },
  });
  assert.equal(res.status, 201);
  const c = await srv.connect(res.json.token);
  await observe(c);
  assert.deepEqual((await until(c, 1)).members.get('frank'), { name: 'Frank' });
  for (const [info, code] of [[big, 'invalid_value'], ['Ada', 'invalid_type']]) {
    const bad = await srv.http('POST', '/api/v1/connection_tokens', { headers: { Authorization: t.apiToken }, body: { ...r, info } });
    assertError(bad, 422, code, '/info');
  }
  await c.close();
});

test('GET /api/v1/presence: count and pages for a backend; every error', async () => {
  const r = room();
  const users = await Promise.all(Array.from({ length: 12 }, (_, i) => member(r, `h${i}`, { info: { n: i } })));
  const q = (extra, token = t.apiToken) =>
    srv.http('GET', `/api/v1/presence?scope=session&event_id=${r.event_id}&session_id=${r.session_id}${extra}`, { headers: { Authorization: token } });
  await poll(async () => (await q('')).json.count === 12, 5000, '12 present over HTTP');
  const first = await q('&limit=5');
  assert.equal(first.status, 200);
  assert.equal(first.headers['cache-control'], 'no-store');
  assert.deepEqual(Object.keys(first.json), ['scope', 'version', 'count', 'members', 'truncated', 'cursor']);
  assert.equal(first.json.members.length, 5);
  const all = [...first.json.members];
  let cursor = first.json.cursor;
  while (cursor) {
    const p = await q(`&limit=5&cursor=${cursor}`);
    all.push(...p.json.members);
    cursor = p.json.truncated ? p.json.cursor : null;
  }
  assert.deepEqual(all.map((m) => m.user_id).sort(), users.map((_, i) => `h${i}`).sort());
  assert.deepEqual(all.find((m) => m.user_id === 'h3').info, { n: 3 });
  const ev = await srv.http('GET', `/api/v1/presence?scope=event&event_id=${r.event_id}`, { headers: { Authorization: t.apiToken } });
  assert.equal(ev.json.count, 12);
  // Another plugin's token names the same ids in its own plugin: nobody there.
  const sibling = await srv.siblingPlugin(t);
  assert.equal((await q('', sibling.apiToken)).json.count, 0);
  const P = '/api/v1/presence';
  const auth = { Authorization: t.apiToken };
  assertError(await srv.http('GET', `${P}?scope=organization`, { headers: auth }), 422, 'invalid_scope');
  assertError(await srv.http('GET', `${P}?scope=room`, { headers: auth }), 422, 'invalid_scope');
  assertError(await srv.http('GET', P, { headers: auth }), 422, 'missing_field');
  assertError(await srv.http('GET', `${P}?scope=session&event_id=${r.event_id}`, { headers: auth }), 422, 'missing_field');
  assertError(await srv.http('GET', `${P}?scope=event&event_id=nope`, { headers: auth }), 422, 'invalid_uuid');
  assertError(await q('&cursor=x'), 422, 'invalid_value');
  assertError(await q('&cursor=007'), 422, 'invalid_value');
  assertError(await q('&limit=0'), 422, 'invalid_value');
  assertError(await q('&limit=1001'), 422, 'invalid_value');
  assertError(await srv.http('GET', `${P}?scope=event&event_id=${r.event_id}`), 401, 'missing_token');
  assertError(await srv.http('POST', P, { headers: auth, body: {} }), 405, 'method_not_allowed');
  for (const c of users) await c.close();
});

test('presence: false: nobody is counted; presence requests are unknown, GET /api/v1/presence is 404', async () => {
  const s2 = await startServer({ threads: 2, config: { presence: false } });
  try {
    const t2 = await s2.tenant();
    const r = room();
    const c = await member(r, 'alone', { tenant: t2, server: s2 });
    for (const type of ['presence.subscribe', 'presence.get', 'presence.unsubscribe']) {
      const e = await ask(c, { type });
      assert.equal(e.type, 'error');
      assert.equal(e.code, 'unknown_type');
      assert.match(e.message, /presence is turned off/);
    }
    const res = await s2.http('GET', `/api/v1/presence?scope=session&event_id=${r.event_id}&session_id=${r.session_id}`, { headers: { Authorization: t2.apiToken } });
    assertError(res, 404, 'not_found');
    assert.equal(await s2.metric('presence_members'), 0);
    // the room itself works as ever
    await c.subscribe('x');
    assert.equal((await s2.publish(t2.apiToken, { scope: { type: 'session', ...r }, payload: { event: { eventName: 'x', data: { ok: 1 } } } })).status, 202);
    await c.waitFor((m) => m.type === 'event' && m.data?.ok === 1, 3000, 'the event');
    await c.close();
  } finally {
    await s2.stop();
  }
});
