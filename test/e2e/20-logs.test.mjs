// Logs (docs/operations.md, "Logs"): one line per notable event — refusals
// with their reason, closes the server initiates with their code, admin
// actions — an access log when asked for, text or JSON lines, repeated lines
// folded into one a second, and never a secret: a run that uses an API token,
// connection tokens (query and subprotocol), an admin token, signing secrets
// and tokens made through the admin API leaves none of them in stderr.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  BIN, startServer, room, mintJwt, rawWs, publishBody, poll, OP, encodeFrame, withTimeout, WebSocket,
} from './harness.mjs';

const lines = (srv) => srv.stderr.split('\n').filter(Boolean);
/** Lines of text-format stderr whose message is `msg` and that have every key=value of `fields`. */
function find(srv, msg, fields = {}) {
  return lines(srv).filter((l) => {
    const m = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error) (.*)$/.exec(l);
    if (!m || !m[2].startsWith(msg)) return false;
    return Object.entries(fields).every(([k, v]) => (v instanceof RegExp ? new RegExp(`(^| )${k}=${v.source}`).test(m[2]) : m[2].includes(` ${k}=${v}`)));
  });
}

test('no secret in any log line; refusals, closes, admin actions and the access log say what happened', async () => {
  const admin = JSON.parse(execFileSync(BIN, ['admin-token', 'create', '--json'], { encoding: 'utf8' }));
  const srv = await startServer({
    config: { admin_token_sha256: admin.admin_token_sha256, access_log: true, log_level: 'debug', token_publish_rate: 1, token_publish_burst: 1 },
  });
  const secrets = [];
  try {
    const t = await srv.tenant();
    secrets.push(t.apiToken, t.signingSecret);
    const r = room();
    const auth = { Authorization: `Bearer ${admin.token}`, 'Content-Type': 'application/json' };
    secrets.push(admin.token);

    // Admin actions through the admin HTTP API.
    let res = await srv.http('POST', '/api/v1/admin/organizations', { headers: auth, body: JSON.stringify({ name: 'log-org' }) });
    assert.equal(res.status, 201);
    const orgId = res.json.id;
    res = await srv.http('POST', '/api/v1/admin/plugins', { headers: auth, body: JSON.stringify({ organization: 'log-org', name: 'log-plugin' }) });
    assert.equal(res.status, 201);
    secrets.push(res.json.signing_secret);
    const pluginId = res.json.id;
    res = await srv.http('POST', '/api/v1/admin/tokens', { headers: auth, body: JSON.stringify({ organization: 'log-org', plugin: 'log-plugin', name: 'log-token' }) });
    assert.equal(res.status, 201);
    secrets.push(res.json.token);
    const tokenId = res.json.id;
    res = await srv.http('DELETE', `/api/v1/admin/tokens/${tokenId}`, { headers: auth });
    assert.equal(res.status, 200);

    // (One line a second per code: a wrong admin token here would fold the
    // near miss below into it.)
    // Publishes: accepted, then rate limited (token_publish_rate 1); a bad API token.
    const body = publishBody({ type: 'session', ...r }, 'x', { a: 1 });
    assert.equal((await srv.publish(t.apiToken, body)).status, 202);
    assert.equal((await srv.publish(t.apiToken, body)).status, 429);
    const near = t.apiToken.slice(0, -3) + 'zzz'; // a near miss of the real token
    secrets.push(near);
    assert.equal((await srv.publish(near, body)).status, 401);

    // Connection tokens: minted over HTTP, used in the query and as a subprotocol.
    const ct1 = await srv.connToken(t, { ...r, user_id: 'alice' });
    const ct2 = await srv.connToken(t, { ...r, user_id: 'bob' });
    const expiredTok = mintJwt(t.signingSecret, srv.claims(t, r, { exp: Math.floor(Date.now() / 1000) - 3600 }));
    secrets.push(ct1, ct2, expiredTok);
    const c1 = await srv.connect(ct1);
    const sock = new WebSocket(`${srv.wsUrl}/api/v1/ws`, ['hubbub.v1', 'hubbub.token.' + ct2], { perMessageDeflate: false });
    await withTimeout(new Promise((res2, rej) => { sock.once('message', res2); sock.once('error', rej); }), 5000, 'welcome');
    const refused = new WebSocket(`${srv.wsUrl}/api/v1/ws`, ['hubbub.v1', 'hubbub.token.' + expiredTok], { perMessageDeflate: false });
    const refusal = await withTimeout(new Promise((res2) => refused.on('close', (code) => res2(code))), 5000, 'refusal');
    assert.equal(refusal, 4401);
    // A publish to a scope the token does not allow, and a binary message (1003).
    const e = await c1.request({ type: 'publish', eventName: 'x', data: {}, scope: 'organization' });
    assert.equal(e.code, 'scope_forbidden');
    const raw = await rawWs(srv.port, ct1);
    raw.send({ opcode: OP.BINARY, payload: Buffer.from([1, 2, 3]) });
    assert.equal((await withTimeout(raw.closed, 3000, 'close')).code, 1003);
    raw.destroy();
    sock.close();
    await c1.close();

    await poll(() => find(srv, 'websocket closed', { code: '1003' }).length > 0, 3000, 'the 1003 line');
    await poll(() => find(srv, 'access', { path: '/api/v1/ws', status: '101' }).length >= 2, 3000, 'access lines of the upgrades');

    // Never a secret.
    for (const s of secrets) assert.ok(!srv.stderr.includes(s), `a secret in the log: ${s.slice(0, 12)}...`);

    // Refusals, with the reason and the credential redacted or by id.
    const apiPrefix = t.apiToken.slice(0, 8);
    assert.equal(find(srv, 'refused', { transport: 'http', code: 'invalid_token', status: '401', token: `"${near.slice(0, 8)}…"` }).length, 1, srv.stderr);
    assert.ok(!srv.stderr.includes(t.apiToken.slice(0, 12)), 'no more than the first 8 characters of a token');
    assert.equal(find(srv, 'refused', { code: 'rate_limited', status: '429', token: /id:[0-9a-f-]{36}/ }).length, 1, 'a rate-limited token by its id');
    assert.ok(apiPrefix.startsWith('hbk_'));
    assert.equal(find(srv, 'refused', { transport: 'ws', code: 'token_expired', status: '101', close: '4401' }).length, 1);
    assert.equal(find(srv, 'refused', { transport: 'ws', code: 'scope_forbidden' }).length, 1);
    assert.match(find(srv, 'websocket closed', { code: '1003' })[0], / info websocket closed code=1003 reason="binary messages are not supported" peer=127\.0\.0\.1:\d+/);

    // Admin actions: who (the admin token by its hash), what, which id.
    const who = `admin:${admin.admin_token_sha256.slice(0, 8)}`;
    assert.equal(find(srv, 'admin: organization created', { admin: who, id: orgId, name: 'log-org' }).length, 1);
    assert.equal(find(srv, 'admin: plugin created', { admin: who, id: pluginId }).length, 1);
    assert.equal(find(srv, 'admin: token created', { admin: who, id: tokenId, name: 'log-token' }).length, 1);
    assert.equal(find(srv, 'admin: token revoked', { admin: who, id: tokenId }).length, 1);

    // The access log: method, path without the query (the token!), status, bytes, duration, peer.
    const access = find(srv, 'access', { method: 'POST', path: '/api/v1/pub_subs', status: '202' });
    assert.equal(access.length, 1);
    assert.match(access[0], / info access method=POST path=\/api\/v1\/pub_subs status=202 bytes=\d+ duration_us=\d+ peer=127\.0\.0\.1:\d+$/);
    assert.ok(find(srv, 'access', { path: '/api/v1/ws', status: '101' }).length >= 2);
    assert.equal(find(srv, 'access', { path: /\/api\/v1\/ws\?/ }).length, 0, 'no query string in the access log');
  } finally {
    await srv.stop();
  }
});

test('repeated refusals are folded: one line a second, the next says how many were left out', async () => {
  const srv = await startServer({ threads: 1 });
  try {
    const body = publishBody({ type: 'session', ...room() }, 'x', {});
    const t0 = Date.now();
    for (let i = 0; i < 50; i++) await srv.publish('hbk_garbage_' + i, body);
    await poll(() => find(srv, 'refused', { code: 'invalid_token' }).length > 0, 3000, 'the first refusal line');
    // One line per second at most: however slow the machine, never one per refusal.
    const seconds = Math.ceil((Date.now() - t0) / 1000);
    const first = find(srv, 'refused', { code: 'invalid_token' });
    assert.ok(first.length >= 1 && first.length <= seconds + 1 && first.length < 50, `50 refusals in ${seconds} s: ${first.length} lines`);
    // Keep refusing until the limiter's second has passed: that line carries the count.
    await poll(async () => {
      await srv.publish('hbk_garbage_more', body);
      return find(srv, 'refused', { code: 'invalid_token', suppressed: /\d+/ }).length > 0;
    }, 5000, 'a line with suppressed=N', 100);
    const m = await srv.http('GET', '/metrics');
    const n = Number(/^hubbub_log_lines_suppressed_total (\d+)$/m.exec(m.text)[1]);
    assert.ok(n >= 40, `suppressed lines counted: ${n}`);
  } finally {
    await srv.stop();
  }
});

test('log_format json: every line is one JSON object with ts, level, msg and the fields', async () => {
  const srv = await startServer({ threads: 1, config: { log_format: 'json', access_log: true } });
  try {
    const t = await srv.tenant();
    await srv.publish('hbk_nope', publishBody({ type: 'session', ...room() }, 'x', {}));
    await srv.http('GET', '/healthz?x="quoted"\\');
    // stderr is read from a pipe: wait for the last line expected (those before it are in).
    await poll(() => lines(srv).some((l) => l.includes('"msg":"access"') && l.includes('"path":"/healthz"')), 3000, 'the access line');
    for (const l of lines(srv)) {
      const o = JSON.parse(l);
      assert.match(o.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(['debug', 'info', 'warn', 'error'].includes(o.level));
      assert.equal(typeof o.msg, 'string');
    }
    const refused = lines(srv).map((l) => JSON.parse(l)).find((o) => o.msg === 'refused');
    assert.equal(refused.level, 'warn');
    assert.equal(refused.code, 'invalid_token');
    assert.equal(refused.status, 401);
    assert.equal(refused.transport, 'http');
    assert.equal(refused.path, '/api/v1/pub_subs');
    const access = lines(srv).map((l) => JSON.parse(l)).filter((o) => o.msg === 'access');
    assert.ok(access.some((o) => o.path === '/healthz' && o.status === 200 && typeof o.duration_us === 'number'));
    assert.ok(lines(srv).some((l) => JSON.parse(l).msg.startsWith('hubbub listening on')));
    void t;
  } finally {
    await srv.stop();
  }
});

test('bad log settings are refused at start, naming the key', async () => {
  for (const [config, want] of [
    [{ log_format: 'xml' }, /"log_format" must be text or json/],
    [{ access_log: 'yes' }, /"access_log" must be true or false/],
  ]) {
    await assert.rejects(startServer({ threads: 1, config }), (e) => want.test(e.message));
  }
});

test('a slow consumer is logged at warn with its code and backlog', async () => {
  const srv = await startServer({ threads: 1, config: { max_output_bytes: 4096 } });
  try {
    const t = await srv.tenant();
    const r = room();
    const tok = await srv.connToken(t, { ...r, user_id: 'slow' });
    const slow = await rawWs(srv.port, tok);
    slow.sock.write(encodeFrame({ payload: JSON.stringify({ type: 'subscribe', eventName: 'big', id: 's' }) }));
    await slow.waitJson((m) => m.id === 's');
    slow.pause();
    const data = { blob: 'x'.repeat(30000) };
    await poll(async () => {
      await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'big', data));
      return find(srv, 'websocket closed', { code: '4000' }).length > 0;
    }, 10000, 'the slow consumer close', 20);
    assert.match(find(srv, 'websocket closed', { code: '4000' })[0], / warn websocket closed code=4000 reason="slow consumer: output buffer full" peer=\S+ queued_bytes=\d+/);
    slow.destroy();
  } finally {
    await srv.stop();
  }
});
