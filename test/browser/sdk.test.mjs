// The SDK in a real browser (Debian chromium): two pages in one room exchange
// events through the classic-script build and through the ES-module build,
// both served by hubbub itself; a page in another room sees nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, room, uuid } from '../e2e/harness.mjs';
import { launch, watchErrors, sleep } from './browser.mjs';
import { readyTenant } from '../../sdk/js/test/helpers.mjs';

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
      const ok = await pages[i].page.evaluate(async (tok) => {
        /* Plugin-style code: the global PubSub, subscribe before connect. */
        window.got = [];
        PubSub.subscribe('say-hello', (message) => window.got.push(message));
        const welcome = await PubSub.connect({ token: tok });
        await PubSub.subscribed('say-hello');
        return { state: PubSub.state, room: welcome.room, hasSdk: typeof HubbubSDK.createClient === 'function' };
      }, tokens[i]);
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
      const res = await pages[i].page.evaluate(async ({ tok, origin }) => {
        const m = await import(origin + '/sdk/hubbub.mjs');
        window.states = [];
        window.got = [];
        const client = m.createClient({ url: origin, token: tok });
        window.client = client;
        client.onStateChange((s) => window.states.push(s));
        window.off = client.subscribe('esm-event', (data, meta) => window.got.push({ data, scope: meta.scope }));
        await window.off.ready;
        return { state: client.state, isDefault: m.default === m.PubSub, ErrorIsClass: typeof m.HubbubError === 'function' };
      }, { tok: tokens[i], origin: srv.url });
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
