// Operator limits: the WebSocket Origin allowlist (403 origin_forbidden before
// any 101), per-API-token publish rate (429 rate_limited with Retry-After) and
// per-connection publish rate (error rate_limited, nothing delivered).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, mintJwt, assertError, publishBody } from './harness.mjs';

const servers = [];
after(async () => {
  for (const s of servers) await s.stop().catch(() => {});
});
async function start(opts) {
  const s = await startServer(opts);
  servers.push(s);
  return s;
}

test('allowed_origins: a listed Origin connects, another gets 403 origin_forbidden', async () => {
  const srv = await start({ config: { allowed_origins: 'https://good.example http://localhost:3000' } });
  const t = await srv.tenant();
  const tok = () => mintJwt(t.signingSecret, srv.claims(t, room()));
  for (const origin of ['https://good.example', 'http://localhost:3000']) {
    const c = await srv.connect(tok(), { origin });
    await c.close();
  }
  for (const origin of ['https://evil.example', 'https://good.example.evil.example', 'http://localhost:3001', 'null']) {
    await assert.rejects(srv.connect(tok(), { origin }), (e) => {
      assert.equal(e.status, 403, `${origin}: ${e.message}`);
      assert.equal(e.json?.error?.code, 'origin_forbidden');
      return true;
    });
  }
  await srv.stop();
});

test('no allowlist configured: any Origin is accepted', async () => {
  const srv = await start();
  const t = await srv.tenant();
  const c = await srv.connect(mintJwt(t.signingSecret, srv.claims(t, room())), { origin: 'https://anywhere.example' });
  await c.close();
  await srv.stop();
});

test('token_publish_rate: over the burst, HTTP publish gets 429 rate_limited with Retry-After', async () => {
  const srv = await start({ config: { token_publish_rate: 2, token_publish_burst: 5 } });
  const t = await srv.tenant();
  const other = await srv.tenant();
  const body = publishBody({ type: 'organization' }, 'x', {});
  const statuses = [];
  let limited = null;
  for (let i = 0; i < 12; i++) {
    const res = await srv.publish(t.apiToken, body);
    statuses.push(res.status);
    if (res.status === 429 && !limited) limited = res;
  }
  assert.ok(statuses.slice(0, 5).every((s) => s === 202), `the burst passes: ${statuses}`);
  assert.ok(limited, `some publish over the burst is refused: ${statuses}`);
  assertError(limited, 429, 'rate_limited');
  assert.match(String(limited.headers['retry-after']), /^\d+$/);
  // Another token has its own bucket.
  assert.equal((await srv.publish(other.apiToken, body)).status, 202);
  await srv.stop();
});

test('conn_publish_rate: over the burst, WebSocket publishes get error rate_limited and reach nobody', async () => {
  const srv = await start({ config: { conn_publish_rate: 2, conn_publish_burst: 5 } });
  const t = await srv.tenant();
  const r = room();
  const pub = await srv.join(t, r);
  const sub = await srv.join(t, r, { subscribe: ['rl'] });
  try {
    const results = [];
    for (let i = 0; i < 12; i++) results.push(await pub.request({ type: 'publish', eventName: 'rl', data: { i } }));
    assert.ok(results.slice(0, 5).every((m) => m.type === 'ack'), JSON.stringify(results.slice(0, 5)));
    const refused = results.filter((m) => m.type === 'error');
    assert.ok(refused.length > 0, 'some publishes are refused');
    for (const e of refused) assert.equal(e.code, 'rate_limited');
    const acked = results.filter((m) => m.type === 'ack').length;
    await sub.waitFor(() => sub.events('rl').length >= acked, 3000, `${acked} events`);
    await sub.expectNone(() => sub.events('rl').length > acked, 300, 'refused publishes delivered');
  } finally {
    await pub.close();
    await sub.close();
  }
  await srv.stop();
});
