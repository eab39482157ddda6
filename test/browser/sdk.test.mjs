// The SDK in a real browser (Debian chromium): two pages in one room exchange
// events through the classic-script build and through the ES-module build,
// both served by hubbub itself; a page in another room sees nothing. Against
// scripted servers: how Chromium sees refusals (in band, as a plain HTTP
// status, a 101 without the subprotocol), and that the token is in no URL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, uuid } from '../e2e/harness.mjs';
import { launch, watchErrors, sleep, REAL_SERVER, serveStatic } from './browser.mjs';
import { readyTenant, scripted, refuseInBand, refuseHttp, welcome } from '../../sdk/js/test/helpers.mjs';

let srv;
let tenant;
let browser;
const QUIET_MS = 400;

before(async () => {
  srv = await startServer({ threads: 2 });
  tenant = await readyTenant(srv);
  browser = await launch();
});
after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
});

/** A page on the hubbub origin (/demo without a token only loads the SDK and explains). */
async function hubbubPage(ctx) {
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  await page.goto(srv.url + '/demo', { waitUntil: 'load', timeout: 10000 });
  return { page, errors };
}

async function token(r, scopes = ['session']) {
  return srv.connToken(tenant, { ...r, user_id: 'browser-' + uuid().slice(0, 6), scopes });
}

test('classic script: global PubSub publishes and subscribes across pages of one room only', { timeout: 45000 }, async () => {
  const ctx = await browser.newContext();
  try {
    const ev = uuid();
    const r = { event_id: ev, session_id: uuid() };
    const elsewhere = { event_id: ev, session_id: uuid() };
    const pages = [await hubbubPage(ctx), await hubbubPage(ctx), await hubbubPage(ctx)];
    const tokens = [await token(r), await token(r), await token(elsewhere)];
    for (let i = 0; i < 3; i++) {
      const ok = await pages[i].page.evaluate(async ({ tok, transport }) => {
        /* Plugin-style code: the global PubSub, subscribe before connect. */
        window.got = [];
        PubSub.subscribe('say-hello', (message) => window.got.push(message));
        const welcome = await PubSub.connect({ token: tok, ...transport });
        await PubSub.subscribed('say-hello');
        return { state: PubSub.state, room: welcome.room, hasSdk: typeof HubbubSDK.createClient === 'function' };
      }, { tok: tokens[i], transport: REAL_SERVER });
      assert.equal(ok.state, 'open');
      assert.equal(ok.hasSdk, true);
    }
    const ack = await pages[0].page.evaluate(() => PubSub.publish('say-hello', { data: { custom: 'payload', from: 'page0' } }));
    assert.ok(ack.message_id);
    /* Fire-and-forget, the original API. */
    await pages[1].page.evaluate(() => { PubSub.publish('say-hello', { data: { custom: 'payload', from: 'page1' } }); });
    for (const i of [0, 1]) {
      await pages[i].page.waitForFunction(() => window.got.length >= 2, null, { timeout: 5000 });
    }
    await sleep(QUIET_MS);
    for (const i of [0, 1]) {
      const got = await pages[i].page.evaluate(() => window.got);
      assert.deepEqual(got.map((g) => g.from).sort(), ['page0', 'page1'], `page ${i}`);
      assert.deepEqual(Object.keys(got[0]).sort(), ['custom', 'from'], 'the callback gets exactly data');
    }
    assert.deepEqual(await pages[2].page.evaluate(() => window.got), [], 'another session sees nothing');
    for (const p of pages) assert.deepEqual(p.errors, []);
  } finally {
    await ctx.close();
  }
});

test('ES module: import /sdk/hubbub.mjs, createClient, unsubscribe, states', { timeout: 45000 }, async () => {
  const ctx = await browser.newContext();
  try {
    const r = room();
    const other = room();
    const pages = [await hubbubPage(ctx), await hubbubPage(ctx), await hubbubPage(ctx)];
    const tokens = [await token(r), await token(r), await token(other)];
    for (let i = 0; i < 3; i++) {
      const res = await pages[i].page.evaluate(async ({ tok, origin, transport }) => {
        const m = await import(origin + '/sdk/hubbub.mjs');
        window.states = [];
        window.got = [];
        const client = m.createClient({ url: origin, token: tok, ...transport });
        window.client = client;
        client.onStateChange((s) => window.states.push(s));
        window.off = client.subscribe('esm-event', (data, meta) => window.got.push({ data, scope: meta.scope }));
        await window.off.ready;
        return { state: client.state, isDefault: m.default === m.PubSub, ErrorIsClass: typeof m.HubbubError === 'function' };
      }, { tok: tokens[i], origin: srv.url, transport: REAL_SERVER });
      assert.deepEqual(res, { state: 'open', isDefault: true, ErrorIsClass: true });
    }
    await pages[1].page.evaluate(() => window.client.publish('esm-event', { data: { n: 1 } }));
    for (const i of [0, 1]) await pages[i].page.waitForFunction(() => window.got.length === 1, null, { timeout: 5000 });
    assert.deepEqual(await pages[0].page.evaluate(() => window.got), [{ data: { n: 1 }, scope: 'session' }]);

    /* HTTP publish into the room reaches both pages. */
    const res = await srv.publish(tenant.apiToken, {
      scope: { type: 'session', ...r },
      payload: { event: { eventName: 'esm-event', data: { from: 'http' } } },
    });
    assert.equal(res.status, 202, res.text);
    for (const i of [0, 1]) await pages[i].page.waitForFunction(() => window.got.length === 2, null, { timeout: 5000 });

    /* Unsubscribed page 0 gets nothing more; page 1 still does. */
    await pages[0].page.evaluate(() => window.off());
    await sleep(150);
    await pages[1].page.evaluate(() => window.client.publish('esm-event', { data: { n: 3 } }));
    await pages[1].page.waitForFunction(() => window.got.length === 3, null, { timeout: 5000 });
    await sleep(QUIET_MS);
    assert.equal(await pages[0].page.evaluate(() => window.got.length), 2);
    assert.deepEqual(await pages[2].page.evaluate(() => window.got), [], 'another room sees nothing');

    /* A forbidden scope surfaces as a HubbubError with the server's code. */
    const err = await pages[1].page.evaluate(async () => {
      try {
        await window.client.publish('esm-event', { data: {}, scope: 'organization' });
        return null;
      } catch (e) {
        return { name: e.name, code: e.code };
      }
    });
    assert.deepEqual(err, { name: 'HubbubError', code: 'scope_forbidden' });

    const states = await pages[0].page.evaluate(() => {
      window.client.close();
      return window.states;
    });
    assert.deepEqual(states, ['open', 'closed']);
    for (const p of pages) assert.deepEqual(p.errors, []);
  } finally {
    await ctx.close();
  }
});

/* ---- refusals, against scripted servers ------------------------------ */

/* A JWT-shaped token: what must appear in no URL and no console line. */
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaHJvbWl1bSJ9.c2VjcmV0LXNpZ25hdHVyZQ';

/**
 * In a page of scripted server `s`: a client connects with `opts`; returns
 * { errors, states, rejected } once the client is closed (bounded), plus
 * every console line of the page.
 */
async function connectInPage(s, opts) {
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    const consoleLines = [];
    page.on('console', (m) => consoleLines.push(m.text()));
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(s.httpUrl + '/', { timeout: 10000 });
    const res = await page.evaluate(async ({ origin, opts }) => {
      const m = await import(origin + '/sdk/hubbub.mjs');
      const client = m.createClient();
      const errors = [];
      const states = [];
      let emitted = null;
      client.on('error', (e) => {
        emitted = e;
        errors.push({ name: e.name, code: e.code, closeCode: e.closeCode, reason: e.reason, status: e.status, message: e.message });
      });
      client.onStateChange((st) => states.push(st));
      const rejected = await client.connect({ url: origin, backoffBaseMs: 20, backoffCapMs: 100, ...opts }).then(
        () => null, (e) => ({ code: e.code, isEmitted: e === emitted }));
      await new Promise((r) => setTimeout(r, 300)); /* nothing more may happen */
      return { errors, states, rejected, finalState: client.state };
    }, { origin: s.httpUrl, opts });
    return { ...res, consoleLines, pageErrors };
  } finally {
    await ctx.close();
  }
}

function assertNoToken(s, r) {
  for (const u of s.upgrades) {
    assert.ok(!u.url.includes(TOKEN) && !/token=/.test(u.url), `token in the URL ${u.url}`);
    assert.deepEqual(u.protocols.split(/\s*,\s*/), ['hubbub.v1', 'hubbub.token.' + TOKEN]);
  }
  for (const line of r.consoleLines) assert.ok(!line.includes(TOKEN), `token in a console line: ${line}`);
  for (const e of r.errors) assert.ok(!e.message.includes(TOKEN), `token in an error message: ${e.message}`);
}

test('Chromium: a refusal in band is one typed error, closed, no retry; the token is in no URL or console line', { timeout: 30000 }, async () => {
  const s = await scripted(refuseInBand('token_expired', 4401, 'the token has expired'), { onRequest: serveStatic });
  try {
    const r = await connectInPage(s, { token: TOKEN });
    assert.deepEqual(r.errors, [{ name: 'HubbubError', code: 'token_expired', closeCode: 4401, reason: 'token_expired', status: undefined, message: 'the token has expired' }]);
    assert.deepEqual(r.rejected, { code: 'token_expired', isEmitted: true }, 'connect() rejects with the emitted error');
    assert.deepEqual(r.states, ['connecting', 'closed']);
    assert.equal(s.upgrades.length, 1, 'no retry');
    assertNoToken(s, r);
    assert.deepEqual(r.pageErrors, []);
  } finally {
    await s.close();
  }
});

test('Chromium: origin_forbidden in band, Origin sent by the browser', { timeout: 30000 }, async () => {
  const s = await scripted(refuseInBand('origin_forbidden', 4403), { onRequest: serveStatic });
  try {
    const r = await connectInPage(s, { token: TOKEN });
    assert.deepEqual(r.errors.map((e) => [e.code, e.closeCode]), [['origin_forbidden', 4403]]);
    assert.equal(r.finalState, 'closed');
    assert.equal(s.upgrades[0].headers.origin, s.httpUrl);
  } finally {
    await s.close();
  }
});

test('Chromium: a plain HTTP 401 (no in-band refusal) is connection_refused, retried with backoff, never stuck', { timeout: 30000 }, async () => {
  const s = await scripted(undefined, { onRequest: serveStatic, onUpgrade: refuseHttp(401, 'invalid_token') });
  try {
    const r = await connectInPage(s, { token: TOKEN, maxReconnectAttempts: 2 });
    /* The browser hides the status: three attempts, then the client gives up. */
    assert.deepEqual(r.errors.map((e) => [e.code, e.closeCode, e.status]),
      [['connection_refused', 1006, undefined], ['connection_refused', 1006, undefined], ['connection_refused', 1006, undefined], ['reconnect_failed', 1006, undefined]]);
    assert.deepEqual(r.rejected, { code: 'reconnect_failed', isEmitted: true });
    assert.equal(s.upgrades.length, 3);
    assert.ok(r.consoleLines.some((l) => /WebSocket connection to .*\/api\/v1\/ws' failed/.test(l)), 'Chromium logged the failed URL: ' + r.consoleLines.join('\n'));
    assertNoToken(s, r);
  } finally {
    await s.close();
  }
});

test("Chromium: a server without the subprotocol fails every 'protocol' attempt; tokenTransport 'query' connects", { timeout: 30000 }, async () => {
  const s = await scripted((ws) => ws.send(welcome()), { onRequest: serveStatic, subprotocol: false });
  try {
    const r = await connectInPage(s, { token: TOKEN, maxReconnectAttempts: 1 });
    assert.deepEqual(r.errors.map((e) => e.code), ['connection_refused', 'connection_refused', 'reconnect_failed']);
    const q = await connectInPage(s, { token: TOKEN, tokenTransport: 'query' });
    assert.deepEqual(q.errors, []);
    assert.equal(q.rejected, null);
    assert.equal(s.upgrades.at(-1).url, '/api/v1/ws?token=' + TOKEN);
  } finally {
    await s.close();
  }
});
