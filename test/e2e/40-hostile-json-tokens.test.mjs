// Hostile catalogue, JSON payloads (H53-H64) and connection/API tokens
// (H65-H79). Exact status or error code, then the server still serves and
// the observer lost nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintJwt, nowS, assertError, encodeFrame, poll, STORE_CHANGE_WAIT_MS } from './harness.mjs';
import { hostileSuite, rawJoin, publishBody, room, uuid } from './hostile-lib.mjs';

const ctx = hostileSuite();

/** Send one WebSocket text message; resolve with the error/ack for `id`. */
async function wsReply(ws, text, id) {
  ws.write(encodeFrame({ payload: text }));
  // An unreadable request gets an error without an id (protocol.md 3).
  const before = ws.texts.length;
  const match = (m) => (m.id === id || (m.type === 'error' && m.id === undefined)) && ['error', 'ack', 'pong'].includes(m.type);
  await ws.waitJson(() => ws.messages.slice(before).some(match), 3000, `reply ${id}`);
  return ws.messages.slice(before).find(match);
}

function rawPublish(body) {
  return ctx.srv.http('POST', '/api/v1/pub_subs', {
    headers: { Authorization: `Bearer ${ctx.t.apiToken}`, 'Content-Type': 'application/json' },
    body: Buffer.isBuffer(body) ? body : Buffer.from(body),
  });
}

// --- JSON payloads --------------------------------------------------------

test('H53 WebSocket publish with data nested 33 deep: error invalid_json, connection stays open', async () => {
  const ws = await rawJoin(ctx);
  const data = '{"a":'.repeat(33) + '1' + '}'.repeat(33);
  const m = await wsReply(ws, `{"type":"publish","eventName":"x","data":${data},"id":"d1"}`, 'd1');
  assert.equal(m.type, 'error');
  assert.equal(m.code, 'invalid_json');
  const p = await wsReply(ws, '{"type":"ping","id":"p"}', 'p').catch(() => null);
  assert.equal(ws.isEnded, false, `still open (${JSON.stringify(p)})`);
  ws.destroy();
  await ctx.alive();
});

test('H54 HTTP body of 2000 nested arrays: 400 invalid_json (no stack overflow)', async () => {
  assertError(await rawPublish('['.repeat(2000) + ']'.repeat(2000)), 400, 'invalid_json');
  await ctx.alive();
});

test('H55 duplicate keys in the WebSocket envelope: error invalid_json', async () => {
  const ws = await rawJoin(ctx);
  const m = await wsReply(ws, '{"type":"subscribe","eventName":"a","eventName":"obs","id":"dk"}', 'dk');
  assert.equal(m.type, 'error');
  assert.equal(m.code, 'invalid_json');
  ws.destroy();
  await ctx.alive();
});

test('H56 duplicate keys inside data: 400 invalid_json', async () => {
  const r = room();
  const body = `{"scope":{"type":"session","event_id":"${r.event_id}","session_id":"${r.session_id}"},"payload":{"event":{"eventName":"a","data":{"k":1,"k":2}}}}`;
  assertError(await rawPublish(body), 400, 'invalid_json');
  await ctx.alive();
});

test('H57 huge numbers in data are delivered byte for byte', async () => {
  const r = room();
  const sub = await ctx.srv.join(ctx.t, r, { subscribe: ['num'] });
  const nums = '{"big":123456789012345678901234567890,"exp":1e400,"neg":-0.0000000000000000000000001,"frac":3.14159265358979323846264338327950288}';
  const body = `{"scope":{"type":"session","event_id":"${r.event_id}","session_id":"${r.session_id}"},"payload":{"event":{"eventName":"num","data":${nums}}}}`;
  const res = await rawPublish(body);
  assert.equal(res.status, 202, res.text);
  await sub.waitFor((m) => m.type === 'event', 3000);
  const raw = sub.raw.find((t) => t.includes('"event"') && t.includes('num'));
  assert.ok(raw.includes(`"data":${nums}`), `data changed: ${raw}`);
  await sub.close();
  await ctx.alive();
});

test('H58 \\u0000 escape in data is delivered unchanged; in eventName it is invalid_event_name', async () => {
  const r = room();
  const sub = await ctx.srv.join(ctx.t, r, { subscribe: ['nul'] });
  const body = `{"scope":{"type":"session","event_id":"${r.event_id}","session_id":"${r.session_id}"},"payload":{"event":{"eventName":"nul","data":{"s":"a\\u0000b"}}}}`;
  assert.equal((await rawPublish(body)).status, 202);
  const ev = await sub.waitFor((m) => m.type === 'event');
  assert.equal(ev.data.s, 'a\u0000b');
  const bad = `{"scope":{"type":"session","event_id":"${r.event_id}","session_id":"${r.session_id}"},"payload":{"event":{"eventName":"nul\\u0000x","data":{}}}}`;
  assertError(await rawPublish(bad), 422, 'invalid_event_name');
  await sub.close();
  await ctx.alive();
});

test('H59 invalid UTF-8 in an HTTP body: 400 invalid_json', async () => {
  const r = room();
  const head = Buffer.from(`{"scope":{"type":"session","event_id":"${r.event_id}","session_id":"${r.session_id}"},"payload":{"event":{"eventName":"u","data":{"s":"`);
  const tail = Buffer.from('"}}}}');
  assertError(await rawPublish(Buffer.concat([head, Buffer.from([0xc3, 0x28, 0xff]), tail])), 400, 'invalid_json');
  await ctx.alive();
});

test('H60 lone surrogate escape \\ud800 in data: 400 invalid_json', async () => {
  const r = room();
  const body = `{"scope":{"type":"session","event_id":"${r.event_id}","session_id":"${r.session_id}"},"payload":{"event":{"eventName":"u","data":{"s":"\\ud800"}}}}`;
  assertError(await rawPublish(body), 400, 'invalid_json');
  await ctx.alive();
});

test('H61 WebSocket messages that are not objects: invalid_json each, connection stays open', async () => {
  const ws = await rawJoin(ctx);
  for (const t of ['[]', 'null', '42', '"str"', '{', '{"type":"ping"}x']) {
    ws.write(encodeFrame({ payload: t }));
  }
  await ws.waitJson(() => ws.messages.filter((m) => m.type === 'error').length >= 6, 3000, '6 errors');
  const errs = ws.messages.filter((m) => m.type === 'error');
  assert.deepEqual(errs.map((e) => e.code), Array(6).fill('invalid_json'));
  for (const e of errs) assert.equal(e.id, undefined);
  assert.equal(ws.isEnded, false);
  ws.destroy();
  await ctx.alive();
});

test('H62 data over max_data_bytes: 413 data_too_large over HTTP, error data_too_large over WebSocket', async () => {
  const r = room();
  const big = { pad: 'z'.repeat(ctx.config.max_data_bytes + 10) };
  assertError(await ctx.srv.publish(ctx.t.apiToken, publishBody({ type: 'session', ...r }, 'big', big)), 413, 'data_too_large');
  const ws = await rawJoin(ctx);
  const m = await wsReply(ws, JSON.stringify({ type: 'publish', eventName: 'big', data: big, id: 'b1' }), 'b1');
  assert.equal(m.code, 'data_too_large');
  ws.destroy();
  await ctx.alive();
});

test('H63 data that is not an object: 422 invalid_type', async () => {
  const r = room();
  for (const data of [[1, 2], 'str', 5, null]) {
    const res = await ctx.srv.publish(ctx.t.apiToken, publishBody({ type: 'session', ...r }, 'x', data));
    assertError(res, 422, 'invalid_type');
  }
  await ctx.alive();
});

test('H64 UTF-8 BOM before the JSON body: 400 invalid_json', async () => {
  const r = room();
  const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(publishBody({ type: 'session', ...r }, 'x', {})))]);
  assertError(await rawPublish(body), 400, 'invalid_json');
  await ctx.alive();
});

// --- tokens -----------------------------------------------------------------

const b64 = (o) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');

async function refused(token, status, code) {
  await assert.rejects(ctx.srv.connect(token), (e) => {
    assert.equal(e.status, status, e.message);
    assert.equal(e.json?.error?.code, code, e.text);
    return true;
  });
  await ctx.alive();
}

test('H65 alg none (no signature): 401 invalid_token', async () => {
  const c = ctx.srv.claims(ctx.t, room());
  await refused(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(c)}.`, 401, 'invalid_token');
});

test('H66 alg HS512, correctly signed with the plugin secret: 401 invalid_token', async () => {
  const crypto = await import('node:crypto');
  const c = ctx.srv.claims(ctx.t, room());
  const input = `${b64({ alg: 'HS512', typ: 'JWT' })}.${b64(c)}`;
  const sig = crypto.createHmac('sha512', ctx.t.signingSecret).update(input).digest('base64url');
  await refused(`${input}.${sig}`, 401, 'invalid_token');
});

test('H67 alg "hs256" (case games): 401 invalid_token', async () => {
  const c = ctx.srv.claims(ctx.t, room());
  await refused(mintJwt(ctx.t.signingSecret, c, { alg: 'hs256' }), 401, 'invalid_token');
});

test('H68 kid games: a kid is ignored, the plugin_id claim picks the key', async () => {
  const other = await ctx.srv.tenant();
  const c = ctx.srv.claims(ctx.t, room());
  // kid naming another plugin, signed with that plugin's secret: refused.
  await refused(mintJwt(other.signingSecret, c, { alg: 'HS256', kid: other.pluginId }), 401, 'invalid_token');
  // kid with path tricks, signed with the right secret: accepted.
  const ok = await ctx.srv.connect(mintJwt(ctx.t.signingSecret, c, { alg: 'HS256', kid: '../../../../etc/passwd' }));
  assert.equal(ok.welcome.room.plugin_id, ctx.t.pluginId);
  await ok.close();
  await ctx.alive();
});

test('H69 payload tampered after signing (session_id swapped): 401 invalid_token', async () => {
  const r = room();
  const tok = mintJwt(ctx.t.signingSecret, ctx.srv.claims(ctx.t, r));
  const [h, , s] = tok.split('.');
  const forged = `${h}.${b64(ctx.srv.claims(ctx.t, ctx.obsRoom))}.${s}`;
  await refused(forged, 401, 'invalid_token');
});

test('H70 expired beyond the 30 s leeway: 401 token_expired; within it: accepted', async () => {
  await refused(mintJwt(ctx.t.signingSecret, ctx.srv.claims(ctx.t, room(), { exp: nowS() - 120 })), 401, 'token_expired');
  const ok = await ctx.srv.connect(mintJwt(ctx.t.signingSecret, ctx.srv.claims(ctx.t, room(), { exp: nowS() - 5 })));
  await ok.close();
});

test('H71 nbf in the future (beyond leeway): 401 invalid_token', async () => {
  await refused(mintJwt(ctx.t.signingSecret, ctx.srv.claims(ctx.t, room(), { nbf: nowS() + 600 })), 401, 'invalid_token');
});

test("H72 signed with another plugin's secret: 401 invalid_token", async () => {
  const sib = await ctx.srv.siblingPlugin(ctx.t);
  await refused(mintJwt(sib.signingSecret, ctx.srv.claims(ctx.t, room())), 401, 'invalid_token');
});

test('H73 organization_id of another organization: 401 invalid_token', async () => {
  const other = await ctx.srv.tenant();
  await refused(mintJwt(ctx.t.signingSecret, ctx.srv.claims(ctx.t, room(), { organization_id: other.orgId })), 401, 'invalid_token');
});

test('H74 missing exp: 401 invalid_token', async () => {
  const c = ctx.srv.claims(ctx.t, room());
  delete c.exp;
  await refused(mintJwt(ctx.t.signingSecret, c), 401, 'invalid_token');
});

test('H75 a 10 KB token: 414 uri_too_long', async () => {
  const c = ctx.srv.claims(ctx.t, room(), { pad: 'p'.repeat(10000) });
  await refused(mintJwt(ctx.t.signingSecret, c), 414, 'uri_too_long');
});

test('H76 a 5 KB token (URL fits, token over 4096 bytes): 401 invalid_token', async () => {
  const c = ctx.srv.claims(ctx.t, room(), { pad: 'p'.repeat(3500) });
  const tok = mintJwt(ctx.t.signingSecret, c);
  assert.ok(tok.length > 4096 && tok.length < 6000);
  await refused(tok, 401, 'invalid_token');
});

test('H77 API token games: garbage 401 invalid_token, none 401 missing_token, 10 KB 431', async () => {
  const r = room();
  const body = publishBody({ type: 'session', ...r }, 'x', {});
  assertError(await ctx.srv.publish('Bearer hbk_' + 'A'.repeat(43), body), 401, 'invalid_token');
  assertError(await ctx.srv.publish(ctx.t.apiToken + 'x', body), 401, 'invalid_token');
  assertError(await ctx.srv.http('POST', '/api/v1/pub_subs', { headers: { 'Content-Type': 'application/json' }, body }), 401, 'missing_token');
  const huge = await ctx.srv.publish('Bearer ' + 'k'.repeat(10000), body);
  assert.equal(huge.status, 431, huge.text);
  await ctx.alive();
});

test('H78 a revoked API token: 401 invalid_token once the store is reloaded', async () => {
  const t2 = await ctx.srv.tenant();
  const body = publishBody({ type: 'session', ...room() }, 'x', {});
  assert.equal((await ctx.srv.publish(t2.apiToken, body)).status, 202);
  await ctx.srv.cli(['token', 'revoke', t2.tokenId]);
  const res = await poll(async () => {
    const x = await ctx.srv.publish(t2.apiToken, body);
    return x.status === 401 ? x : null;
  }, STORE_CHANGE_WAIT_MS, 'the revoked token refused', 50);
  assertError(res, 401, 'invalid_token');
  await ctx.alive();
});

test('H79 token for a deleted or unknown plugin id: 401 invalid_token', async () => {
  await refused(mintJwt(ctx.t.signingSecret, ctx.srv.claims(ctx.t, room(), { plugin_id: uuid() })), 401, 'invalid_token');
});

test('H121 a body of exactly max_body_bytes is read; one byte more is 413 payload_too_large', async () => {
  const r = room();
  const max = ctx.config.max_body_bytes;
  const base = JSON.stringify(publishBody({ type: 'session', ...r }, 'edge', {}));
  const pad = (n) => base.slice(0, -1) + ',"zz":"' + 'p'.repeat(n) + '"}';
  const exact = pad(max - base.length - 8);
  assert.equal(exact.length, max);
  const ok = await rawPublish(exact);
  assert.notEqual(ok.status, 413, ok.text); // read in full (unknown fields may be refused, not for size)
  assertError(await rawPublish(pad(max - base.length - 7)), 413, 'payload_too_large');
  await ctx.alive();
});

test('H122 data of exactly max_data_bytes is accepted; one byte more is data_too_large', async () => {
  const r = room();
  const max = ctx.config.max_data_bytes;
  const data = (n) => `{"p":"${'d'.repeat(n - 8)}"}`;
  assert.equal(data(max).length, max);
  const body = (d) => `{"scope":{"type":"session","event_id":"${r.event_id}","session_id":"${r.session_id}"},"payload":{"event":{"eventName":"edge","data":${d}}}}`;
  assert.equal((await rawPublish(body(data(max)))).status, 202);
  assertError(await rawPublish(body(data(max + 1))), 413, 'data_too_large');
  await ctx.alive();
});
