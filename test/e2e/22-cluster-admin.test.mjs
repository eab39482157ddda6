// Many machines, one truth (issue 13): two nodes on one PostgreSQL (and one
// Redis when it is installed), administered through the admin HTTP API of
// node A. What is checked on node B: a token made on A works at once, a
// revoked one stops (also when the change's NOTIFY is lost: the watchers
// read the version every second); a rotated secret keeps the old tokens
// until it is retired, then closes their connections; a kicked user's
// connections close on both nodes with 4410, the token is refused and the
// SDK does not reconnect with it; disconnects of a room
// (4409) and of a user (4410) without a revocation; a deleted plugin's
// connections close with 4404. Then PostgreSQL stops for 10 s: clients stay,
// publishes and handshakes with known tokens work, admin writes answer 503,
// /healthz and /metrics say so, and the nodes catch up without a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { startServer, startRedis, room, uuid, poll, publishBody, mintJwt, nowS, sleep, withTimeout, rawHttp, parseHttpResponse, WebSocket } from './harness.mjs';
import { startPostgres, postgresInstalled } from './pg-harness.mjs';
import { createClient } from '../../sdk/js/dist/hubbub.mjs';

const skip = postgresInstalled() ? false : 'PostgreSQL is not installed (scripts/install-deps.sh all)';
const ADMIN = 'hba_' + crypto.randomBytes(16).toString('hex');
const ADMIN_SHA = crypto.createHash('sha256').update(ADMIN).digest('hex');
const CLOSE_WAIT_MS = 10000; // a change reaches every node within about a second; the machine is shared
const OUTAGE_MS = 10000;

let pg, redis, a, b, uri;

before(async () => {
  if (skip) return;
  pg = await startPostgres();
  uri = await pg.createDatabase();
  redis = await startRedis().catch(() => null); // the node-to-node path is not what is tested here
  const config = { admin_token_sha256: ADMIN_SHA, ...(redis ? { redis_url: redis.url } : {}) };
  a = await startServer({ store: uri, config });
  b = await startServer({ store: uri, config });
});

after(async () => {
  await a?.stop();
  await b?.stop();
  await redis?.stop();
  await pg?.stop();
});

function admin(srv, method, path, body) {
  return srv.http(method, path, { headers: { Authorization: `Bearer ${ADMIN}` }, body });
}

/** An organization, plugin and API token made through node A's admin API. */
async function tenantVia(srv) {
  const tag = uuid().slice(0, 8);
  const org = await admin(srv, 'POST', '/api/v1/admin/organizations', { name: `o-${tag}` });
  assert.equal(org.status, 201, org.text);
  const plugin = await admin(srv, 'POST', '/api/v1/admin/plugins', { organization: org.json.id, name: `p-${tag}` });
  assert.equal(plugin.status, 201, plugin.text);
  const tok = await admin(srv, 'POST', '/api/v1/admin/tokens', { organization: org.json.id, plugin: plugin.json.id });
  assert.equal(tok.status, 201, tok.text);
  return {
    org: org.json,
    plugin: plugin.json,
    pluginId: plugin.json.id,
    signingSecret: plugin.json.signing_secret,
    kid: plugin.json.signing_kid,
    apiToken: tok.json.token,
    tokenId: tok.json.id,
  };
}

/** A connection token signed offline (with the kid of the secret), issued 5 s ago. */
function token(t, r, sub, { secret = t.signingSecret, kid = t.kid } = {}) {
  return mintJwt(secret, a.claims(t, r, { sub, iat: nowS() - 5 }), { alg: 'HS256', typ: 'JWT', kid });
}

async function handshake(srv, tok) {
  try {
    const c = await srv.connect(tok);
    await c.close();
    return { ok: true };
  } catch (e) {
    return { ok: false, status: e.status, code: e.json?.error?.code };
  }
}

/** Both nodes accept `tok` (a plugin made on A a moment ago). */
async function acceptedEverywhere(tok) {
  for (const n of [a, b]) await poll(async () => (await handshake(n, tok)).ok, CLOSE_WAIT_MS, `node ${n.port} accepts the token`);
}

async function closedWith(c, code, reason) {
  const info = await withTimeout(c.closed, CLOSE_WAIT_MS, `close ${code}`);
  assert.deepEqual(info, { code, reason });
}

const publishVia = (srv, t, r, name, data) => srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, name, data));

test('a token created on node A works on node B at once; revoked on A, refused on B', { skip }, async () => {
  const t = await tenantVia(a);
  const r = room();
  await poll(async () => (await publishVia(b, t, r, 'x', {})).status === 202, CLOSE_WAIT_MS, 'B accepts the token made on A');
  const rv = await admin(a, 'DELETE', `/api/v1/admin/tokens/${t.tokenId}`);
  assert.equal(rv.status, 200, rv.text);
  await poll(async () => (await publishVia(b, t, r, 'x', {})).status === 401, CLOSE_WAIT_MS, 'B refuses the token revoked on A');
  // Expiring API tokens through the API.
  const exp = await admin(a, 'POST', '/api/v1/admin/tokens', { organization: t.org.id, plugin: t.pluginId, ttl_s: 3600 });
  assert.equal(exp.status, 201, exp.text);
  assert.ok(exp.json.expires_at >= nowS() + 3590, exp.text);
  const bad = await admin(a, 'POST', '/api/v1/admin/tokens', { organization: t.org.id, plugin: t.pluginId, ttl_s: 0 });
  assert.equal(bad.status, 422);
  assert.equal(bad.json.error.pointer, '/ttl_s');
});

test('a change whose notification is lost still reaches both nodes (the watchers read the version every second)', { skip }, async () => {
  const t = await tenantVia(a);
  const r = room();
  for (const n of [a, b]) await poll(async () => (await publishVia(n, t, r, 'x', {})).status === 202, CLOSE_WAIT_MS, 'the token works');
  // Revoke it behind hubbub's back: the row and the change counter, no NOTIFY.
  await pg.psql(
    `UPDATE api_tokens SET revoked_at = ${nowS()} WHERE id = '${t.tokenId}'; UPDATE hubbub_changes SET version = version + 1 WHERE id = 1`,
    { uri },
  );
  for (const n of [a, b]) await poll(async () => (await publishVia(n, t, r, 'x', {})).status === 401, CLOSE_WAIT_MS, `node ${n.port} refuses it`);
});

test('a rotated secret: old and new tokens work on both nodes until the old one is retired, then its connections close', { skip }, async () => {
  const t = await tenantVia(a);
  const r = room();
  const old = token(t, r, 'old');
  await acceptedEverywhere(old);
  const onB = await b.connect(old);
  const rot = await admin(a, 'POST', `/api/v1/admin/plugins/${t.pluginId}/rotate-secret`, { previous_ttl_s: 600 });
  assert.equal(rot.status, 200, rot.text);
  assert.equal(rot.json.previous_kid, t.kid);
  assert.ok(rot.json.previous_retire_at >= nowS() + 590);
  const fresh = token(t, r, 'new', { secret: rot.json.signing_secret, kid: rot.json.signing_kid });
  await acceptedEverywhere(fresh);
  for (const n of [a, b]) assert.ok((await handshake(n, old)).ok, 'the previous secret still verifies');
  const freshOnA = await a.connect(fresh);
  const list = await admin(b, 'GET', '/api/v1/admin/plugins');
  const row = list.json.plugins.find((p) => p.id === t.pluginId);
  assert.deepEqual([row.signing_kid, row.previous_kid], [rot.json.signing_kid, t.kid]);
  assert.ok(!list.text.includes(rot.json.signing_secret), 'no secret in the list');

  const ret = await admin(a, 'POST', `/api/v1/admin/plugins/${t.pluginId}/rotate-secret`, { retire_previous: true });
  assert.deepEqual([ret.status, ret.json.retired, ret.json.previous_kid], [200, true, t.kid]);
  await closedWith(onB, 4401, 'invalid_token');
  for (const n of [a, b]) {
    await poll(async () => (await handshake(n, old)).code === 'invalid_token', CLOSE_WAIT_MS, 'the retired secret refused');
    assert.ok((await handshake(n, fresh)).ok);
  }
  assert.equal(freshOnA.closeInfo, null, 'a connection of the new secret stays');
  await freshOnA.close();
  const both = await admin(a, 'POST', `/api/v1/admin/plugins/${t.pluginId}/rotate-secret`, { retire_previous: true, previous_ttl_s: 5 });
  assert.equal(both.status, 422, both.text);
});

test('kick a user connected on both nodes: both connections close with 4410, the token is refused, the SDK does not reconnect with it', { skip }, async () => {
  const t = await tenantVia(a);
  const r = room();
  const mallory = token(t, r, 'mallory');
  const other = token(t, r, 'trent');
  await acceptedEverywhere(mallory);
  const [ma, mb, ob] = [await a.connect(mallory), await b.connect(mallory), await b.connect(other)];
  // The SDK on node B, with the same token and no getToken: it must stop, not retry it.
  let attempts = 0;
  const Counting = class extends WebSocket {
    constructor(...args) {
      super(...args);
      attempts++;
    }
  };
  const sdk = createClient({ url: `ws://127.0.0.1:${b.port}/api/v1/ws`, token: mallory, WebSocket: Counting, backoffBaseMs: 50, backoffCapMs: 200 });
  const sdkErrors = [];
  sdk.on('error', (e) => sdkErrors.push(e));
  const sdkClosed = new Promise((resolve) => sdk.onStateChange((st) => st === 'closed' && resolve()));
  await poll(() => sdk.state === 'open', CLOSE_WAIT_MS, 'the SDK client connects to node B');
  const res = await admin(a, 'POST', `/api/v1/admin/plugins/${t.pluginId}/revocations`, { user_id: 'mallory' });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.json.user_id, 'mallory');
  await closedWith(ma, 4410, 'token_revoked');
  await closedWith(mb, 4410, 'token_revoked');
  await withTimeout(sdkClosed, CLOSE_WAIT_MS, 'the SDK client stops');
  assert.deepEqual([sdkErrors.at(-1)?.code, sdkErrors.at(-1)?.closeCode], ['token_revoked', 4410]);
  assert.equal(attempts, 1, 'no attempt with the revoked token');
  for (const n of [a, b]) assert.deepEqual(await handshake(n, mallory), { ok: false, status: 401, code: 'token_revoked' });
  assert.equal(ob.closeInfo, null, 'another user of the room stays');
  await ob.close();
  const bad = await admin(a, 'POST', `/api/v1/admin/plugins/${t.pluginId}/revocations`, { user_id: '' });
  assert.equal(bad.status, 422);
  const ghost = await admin(a, 'POST', `/api/v1/admin/plugins/${uuid()}/revocations`, { user_id: 'x' });
  assert.equal(ghost.status, 404);
});

test('disconnect a room (4409) and a user (4410) on every node, without refusing them later', { skip }, async () => {
  const t = await tenantVia(a);
  const r = room();
  const r2 = { event_id: r.event_id, session_id: uuid() }; // the same event, another session
  const toks = [token(t, r, 'x'), token(t, r, 'y'), token(t, r2, 'z'), token(t, room(), 'dave')];
  await acceptedEverywhere(toks[0]);
  const [x, y, z, dave] = [await a.connect(toks[0]), await b.connect(toks[1]), await b.connect(toks[2]), await a.connect(toks[3])];
  const res = await admin(b, 'POST', `/api/v1/admin/plugins/${t.pluginId}/disconnects`, r);
  assert.equal(res.status, 202, res.text);
  assert.deepEqual([res.json.event_id, res.json.session_id], [r.event_id, r.session_id]);
  await closedWith(x, 4409, 'room_closed');
  await closedWith(y, 4409, 'room_closed');
  assert.equal(z.closeInfo, null, 'another session of the event stays');
  assert.ok((await handshake(a, toks[0])).ok, 'the room may be joined again');

  const applied = () => (b.stderr.match(/store: \d+ disconnects to apply/g) || []).length;
  const appliedBefore = applied();
  const du = await admin(b, 'POST', `/api/v1/admin/plugins/${t.pluginId}/disconnects`, { user_id: 'dave' });
  assert.equal(du.status, 202, du.text);
  await closedWith(dave, 4410, 'user_disconnected');
  // A disconnect closes what is open when a node applies it: node B too
  // (dave was on A), before the new connection is tried there.
  await poll(() => applied() > appliedBefore, CLOSE_WAIT_MS, 'node B applies the disconnect');
  assert.ok((await handshake(b, toks[3])).ok, 'a disconnect refuses nothing');

  // A whole event: every session of it.
  const ev = await admin(a, 'POST', `/api/v1/admin/plugins/${t.pluginId}/disconnects`, { event_id: r.event_id });
  assert.equal(ev.status, 202, ev.text);
  assert.equal(ev.json.session_id, null);
  await closedWith(z, 4409, 'room_closed');

  for (const [body, status, code] of [
    [{}, 422, 'missing_field'],
    [{ user_id: 'u', event_id: r.event_id }, 422, 'invalid_value'],
    [{ user_id: 'u', session_id: r.session_id }, 422, 'invalid_value'],
    [{ event_id: 'nope' }, 422, 'invalid_uuid'],
    [{ user_id: 'u', color: 'red' }, 422, 'invalid_value'],
  ]) {
    const e = await admin(a, 'POST', `/api/v1/admin/plugins/${t.pluginId}/disconnects`, body);
    assert.deepEqual([e.status, e.json?.error?.code], [status, code], JSON.stringify(body));
  }
  const path = await admin(a, 'POST', '/api/v1/admin/plugins/not-a-uuid/disconnects', { user_id: 'u' });
  assert.deepEqual([path.status, path.json.error.code], [422, 'invalid_uuid']);
});

test('a deleted plugin: its connections close with 4404 on both nodes, its tokens stop, its history goes', { skip }, async () => {
  const t = await tenantVia(a);
  const r = room();
  const tok = token(t, r, 'p');
  await acceptedEverywhere(tok);
  const [ca, cb] = [await a.connect(tok), await b.connect(tok)];
  assert.equal((await publishVia(a, t, r, 'kept', { n: 1 })).status, 202);
  const del = await admin(b, 'DELETE', `/api/v1/admin/plugins/${t.pluginId}`);
  assert.deepEqual([del.status, del.json.deleted], [200, true], del.text);
  await closedWith(ca, 4404, 'plugin_deleted');
  await closedWith(cb, 4404, 'plugin_deleted');
  for (const n of [a, b]) {
    await poll(async () => (await publishVia(n, t, r, 'x', {})).status === 401, CLOSE_WAIT_MS, 'its API token refused');
    assert.equal((await handshake(n, tok)).code, 'invalid_token');
  }
  // Without Redis the node holds the history and drops it; with Redis the
  // history is in Redis streams, unreadable now (the tokens are refused) and
  // expiring by itself: the node has no channel of its own to drop.
  const dropped = redis ? /store: 1 plugins deleted; their connections close, \d+ history channels dropped/
    : /store: 1 plugins deleted; their connections close, [1-9]\d* history channels dropped/;
  await poll(() => dropped.test(a.stderr), CLOSE_WAIT_MS, 'node A logs the deletion and drops the plugin\'s history');
  assert.equal((await admin(a, 'DELETE', `/api/v1/admin/plugins/${t.pluginId}`)).status, 404);

  // An organization: its plugins' connections go the same way.
  const t2 = await tenantVia(a);
  const tok2 = token(t2, r, 'q');
  await acceptedEverywhere(tok2);
  const c2 = await b.connect(tok2);
  const od = await admin(a, 'DELETE', `/api/v1/admin/organizations/${t2.org.id}`);
  assert.deepEqual([od.status, od.json.name], [200, t2.org.name], od.text);
  await closedWith(c2, 4404, 'plugin_deleted');
});

test('export through one node, import it through the other: nothing changes, a conflict or a malformed document is refused', { skip }, async () => {
  const t = await tenantVia(a);
  const ex = await admin(b, 'GET', '/api/v1/admin/export?include_secrets=true');
  assert.equal(ex.status, 200, ex.text);
  assert.equal(ex.json.format, 'hubbub-export');
  assert.ok(ex.text.includes(t.signingSecret), 'with include_secrets');
  const plain = await admin(b, 'GET', '/api/v1/admin/export');
  assert.ok(!plain.text.includes(t.signingSecret) && plain.json.includes_secrets === false);
  assert.equal((await admin(b, 'GET', '/api/v1/admin/export?include_secrets=yes')).status, 422);
  // Importing into the store it came from changes nothing.
  const again = await admin(a, 'POST', '/api/v1/admin/import', ex.json);
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.created.plugins, 0);
  assert.ok(again.json.unchanged.plugins >= 1);
  const clash = structuredClone(ex.json);
  clash.organizations[0].name += '-renamed';
  const c = await admin(a, 'POST', '/api/v1/admin/import', clash);
  assert.deepEqual([c.status, c.json.error.code], [409, 'already_exists'], c.text);
  assert.match(c.json.error.pointer, /^\/organizations\/0/);
  const junk = await admin(a, 'POST', '/api/v1/admin/import', { format: 'nope' });
  assert.deepEqual([junk.status, junk.json.error.code], [422, 'invalid_value'], junk.text);
});

test('pipelined admin requests are answered in order, each when the store has answered', { skip }, async () => {
  const req = (p, last) =>
    `GET ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN}\r\n${last ? 'Connection: close\r\n' : ''}\r\n`;
  const raw = await rawHttp(a.port, req('/api/v1/admin/organizations') + req('/healthz') + req('/api/v1/admin/tokens', true), {
    untilClose: true,
    timeoutMs: 10000,
  });
  // The responses one after the other: each head, then Content-Length bytes.
  const bodies = [];
  let rest = Buffer.from(raw, 'latin1');
  for (let i = 0; i < 3; i++) {
    const end = rest.indexOf('\r\n\r\n');
    assert.ok(end > 0, `response ${i + 1} of 3 in ${raw.slice(0, 300)}`);
    const r = parseHttpResponse(rest);
    assert.ok(r.complete && r.status === 200, `response ${i + 1}: ${r.raw.slice(0, 200)}`);
    bodies.push(r.json);
    rest = rest.subarray(end + 4 + Number(r.headers['content-length']));
  }
  assert.ok(Array.isArray(bodies[0].organizations));
  assert.equal(bodies[1].status, 'ok');
  assert.ok(Array.isArray(bodies[2].tokens));
});

test('PostgreSQL stopped for 10 s: clients stay, known tokens work, admin writes get 503; the nodes catch up by themselves', { skip }, async () => {
  const t = await tenantVia(a);
  const r = room();
  const tok = token(t, r, 'steady');
  await acceptedEverywhere(tok);
  const [ca, cb] = [await a.connect(tok), await b.connect(tok)];
  await ca.subscribe('outage');
  await cb.subscribe('outage');
  await pg.pause();
  const t0 = Date.now();
  try {
    for (const n of [a, b]) {
      await poll(async () => (await n.http('GET', '/healthz')).json?.store?.state === 'down', 15000, 'healthz: store down');
      const h = await n.http('GET', '/healthz');
      assert.equal(h.status, 200, 'a node that can serve stays in rotation');
      assert.equal(h.json.status, 'degraded');
      assert.equal(h.json.store.type, 'postgresql');
      assert.match((await n.http('GET', '/metrics')).text, /^hubbub_store_up 0$/m);
      assert.match(n.stderr, /store: postgresql:\/\/[^ ]* cannot be read \(unavailable\): serving from the last credential snapshot/);
    }
    // Admin changes cannot be made: a clear 503, at once, with Retry-After.
    const w = await admin(a, 'POST', '/api/v1/admin/organizations', { name: `during-${uuid().slice(0, 6)}` });
    assert.deepEqual([w.status, w.json?.error?.code, w.headers['retry-after']], [503, 'store_unavailable', '1'], w.text);
    assert.equal((await admin(b, 'GET', '/api/v1/admin/tokens')).status, 503);
    // A client that gives up while its admin request waits: nothing breaks.
    await new Promise((resolve) => {
      const sock = net.connect(a.port, '127.0.0.1', () => {
        sock.write(`GET /api/v1/admin/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN}\r\n\r\n`, () => {
          sock.destroy();
          resolve();
        });
      });
      sock.on('error', resolve);
    });
    assert.equal((await a.http('GET', '/healthz')).status, 200);
    // Everything with known credentials works, until the outage has lasted OUTAGE_MS.
    let n = 0;
    do {
      n++;
      assert.equal((await publishVia(a, t, r, 'outage', { n })).status, 202);
      await ca.waitFor((m) => m.type === 'event' && m.data.n === n, 5000, `event ${n} on A`);
      if (redis) await cb.waitFor((m) => m.type === 'event' && m.data.n === n, 5000, `event ${n} on B`);
      assert.ok((await handshake(b, tok)).ok, 'a new connection with a known token');
      await sleep(500);
    } while (Date.now() - t0 < OUTAGE_MS);
    assert.equal(ca.closeInfo, null);
    assert.equal(cb.closeInfo, null);
  } finally {
    await pg.resume();
  }
  for (const n of [a, b]) {
    await poll(async () => (await n.http('GET', '/healthz')).json?.status === 'ok', 30000, 'healthz ok again');
    assert.match((await n.http('GET', '/metrics')).text, /^hubbub_store_up 1$/m);
    assert.match(n.stderr, /store: postgresql:\/\/[^ ]* is back after \d+ s; credentials reloaded/);
  }
  // Changes flow again, made on one node and seen on the other.
  const t2 = await tenantVia(a);
  await poll(async () => (await publishVia(b, t2, r, 'x', {})).status === 202, CLOSE_WAIT_MS, 'B sees a token made after the outage');
  const kick = await admin(b, 'POST', `/api/v1/admin/plugins/${t.pluginId}/revocations`, { user_id: 'steady' });
  assert.equal(kick.status, 201, kick.text);
  await closedWith(ca, 4410, 'token_revoked');
  await closedWith(cb, 4410, 'token_revoked');
});
