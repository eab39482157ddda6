// The demo room (/demo) in chromium: two tabs of one room see each other's
// reactions and chat, a tab in another room sees nothing, curl (HTTP) publishes
// show up, and a screenshot goes to test-output/browser/demo.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, room, uuid } from '../e2e/harness.mjs';
import { launch, watchErrors, sleep, serveStatic } from './browser.mjs';
import { readyTenant, restartableServer, mintToken, scripted, refuseInBand } from '../../sdk/js/test/helpers.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUT = path.join(REPO, 'test-output/browser');

let srv;
let tenant;
let browser;

before(async () => {
  srv = await startServer({ threads: 2 });
  tenant = await readyTenant(srv);
  browser = await launch();
});
after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
});

async function openDemo(ctx, r, user, scopes = ['session']) {
  const token = await srv.connToken(tenant, { ...r, user_id: user, scopes });
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  await page.goto(`${srv.url}/demo#token=${token}`, { waitUntil: 'load', timeout: 10000 });
  await page.waitForSelector('#state[data-state="open"]', { timeout: 8000 });
  /* Live once the three subscriptions are acked. */
  await page.evaluate(() => Promise.all(window.hubbubDemo.events.map((n) => window.hubbubDemo.PubSub.subscribed(n))));
  return { page, errors };
}

test('without a token the page explains how to get one', { timeout: 30000 }, async () => {
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(srv.url + '/demo', { timeout: 10000 });
    await page.waitForSelector('#no-token:not([hidden])', { timeout: 5000 });
    assert.match(await page.textContent('#no-token'), /make run/);
    assert.match(await page.textContent('#mint-cmd'), /\/api\/v1\/connection_tokens/);
    assert.equal(await page.isHidden('#app'), true);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

test('with a refused token the status line says why instead of spinning', { timeout: 30000 }, async () => {
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(`${srv.url}/demo#token=not.a.valid-token`, { timeout: 10000 });
    // The real server refuses in band (the demo offers hubbub.v1): the code
    // itself, final, and no retry.
    await page.waitForSelector('#state[data-state="closed"]', { timeout: 8000 });
    await page.waitForSelector('#conn-status[data-code="invalid_token"][data-final]:not([hidden])', { timeout: 8000 });
    assert.match(await page.textContent('#conn-status'), /invalid_token/);
  } finally {
    await ctx.close();
  }
});

test('a refusal in band: the badge stops at disconnected, the status line names the code, no retry', { timeout: 30000 }, async () => {
  const s = await scripted(refuseInBand('token_expired', 4401, 'the token has expired'), { onRequest: serveStatic });
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    const t = mintToken({ org: { id: uuid() }, plugin: { id: uuid() }, signingSecret: 'scripted' }, room());
    await page.goto(`${s.httpUrl}/demo#token=${t}&transport=protocol`, { timeout: 10000 });
    await page.waitForSelector('#state[data-state="closed"]', { timeout: 8000 });
    await page.waitForSelector('#conn-status[data-code="token_expired"][data-final]:not([hidden])', { timeout: 5000 });
    assert.match(await page.textContent('#conn-status'), /token_expired\s*This connection token has expired\. `make run` prints a fresh link\./);
    await sleep(500);
    assert.equal(s.upgrades.length, 1, 'the demo does not retry a refused token');
    assert.ok(!s.upgrades[0].url.includes(t), 'no token in the URL');
    assert.equal(await page.locator('.toast').count(), 0, 'a connection error is not a toast');
    assert.deepEqual(errors, []);
    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: path.join(OUT, 'demo-refused.png') });
  } finally {
    await ctx.close();
    await s.close();
  }
});

test('demo: a reaction clicked in one tab floats in the other; chat; curl; other rooms see nothing', { timeout: 60000 }, async () => {
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 940 } });
  try {
    const r = room();
    const a = await openDemo(ctx, r, 'alice', ['session', 'event']);
    const b = await openDemo(ctx, r, 'bob');
    const stranger = await openDemo(ctx, { event_id: r.event_id, session_id: uuid() }, 'carol');

    /* The curl panel names this room and the API-token variable. */
    const curl = await a.page.textContent('#curl-cmd');
    assert.ok(curl.includes(r.event_id) && curl.includes(r.session_id), curl);
    assert.ok(curl.includes('$HUBBUB_TOKEN') && curl.includes(srv.url + '/api/v1/pub_subs'), curl);
    assert.equal((await a.page.textContent('#state')).trim(), 'live');

    /* Reaction: click in bob's tab, it floats in alice's. */
    await b.page.click('button[data-emoji="🎉"]');
    await a.page.waitForSelector('#sky .floater:has-text("🎉")', { timeout: 5000 });
    await a.page.waitForSelector('#events li[data-event="reaction"]', { timeout: 5000 });
    assert.equal(await a.page.textContent('button[data-emoji="🎉"] em'), '1');
    for (const e of ['👏', '❤️', '🔥', '🚀', '😂', '🎉']) {
      await b.page.click(`button[data-emoji="${e}"]`);
      await sleep(60);
    }

    /* Chat both ways. */
    await b.page.fill('#chat-text', 'hello from bob');
    await b.page.press('#chat-text', 'Enter');
    await a.page.waitForSelector('#messages li:has-text("hello from bob")', { timeout: 5000 });
    await a.page.fill('#chat-text', 'hi bob! <b>not bold</b>');
    await a.page.click('#composer button[type="submit"]');
    await b.page.waitForSelector('#messages li:has-text("hi bob!")', { timeout: 5000 });
    assert.equal(await b.page.locator('#messages b:has-text("not bold")').count(), 0, 'chat text is not HTML');

    /* What the curl panel does, done with HTTP: shows a banner and an event row. */
    const res = await srv.publish(tenant.apiToken, {
      scope: { type: 'session', ...r },
      payload: { event: { eventName: 'announce', data: { text: 'Hello from curl!' } } },
    });
    assert.equal(res.status, 202, res.text);
    await a.page.waitForSelector('.toast:has-text("Hello from curl!")', { timeout: 5000 });
    await b.page.waitForSelector('#events li[data-event="announce"]', { timeout: 5000 });
    await a.page.waitForFunction(() => document.querySelectorAll('#events li[data-event]').length >= 10, null, { timeout: 5000 });

    mkdirSync(OUT, { recursive: true });
    /* A last burst (published the way the buttons do, without waiting on
     * clicks) and a curl banner, so that the screenshot shows them in flight. */
    await a.page.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
    await b.page.evaluate(() => {
      for (const emoji of ['🎉', '❤️', '👏', '🚀', '🔥', '😂']) window.hubbubDemo.PubSub.publish('reaction', { data: { emoji, from: 'bob' } });
    });
    await srv.publish(tenant.apiToken, {
      scope: { type: 'session', ...r },
      payload: { event: { eventName: 'announce', data: { text: 'Deploy finished: v2.4 is live 🚀' } } },
    });
    await a.page.waitForFunction(() => document.querySelectorAll('#sky .floater').length >= 5 &&
      document.querySelector('.toast') && /Deploy finished/.test(document.querySelector('#toasts').textContent), null, { timeout: 5000 });
    await sleep(150); /* let them rise a little */
    await a.page.screenshot({ path: path.join(OUT, 'demo.png'), fullPage: true });

    /* Another session of the same event saw none of it. */
    await sleep(300);
    assert.equal(await stranger.page.locator('#events li[data-event]').count(), 0);
    assert.equal(await stranger.page.locator('#messages li:not(.system)').count(), 0);
    for (const p of [a, b, stranger]) assert.deepEqual(p.errors, []);
  } finally {
    await ctx.close();
  }
});

test('demo: two tabs show each other in the member list and the live count; a closed tab leaves', { timeout: 60000 }, async () => {
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 940 } });
  try {
    const r = room();
    const a = await openDemo(ctx, r, 'alice');
    const b = await openDemo(ctx, r, 'bob');
    const other = await openDemo(ctx, { event_id: r.event_id, session_id: uuid() }, 'carol');
    for (const p of [a, b]) {
      await p.page.waitForSelector('#members li[data-user="alice"]', { timeout: 8000 });
      await p.page.waitForSelector('#members li[data-user="bob"]', { timeout: 8000 });
      await p.page.waitForFunction(() => document.querySelector('#here-count').textContent === '2', null, { timeout: 8000 });
    }
    assert.equal(await a.page.textContent('#members li.me .name'), 'alice');
    assert.equal(await b.page.textContent('#members li.me .name'), 'bob');
    assert.equal(await a.page.textContent('#presence-count'), '2');
    /* Another session of the event: only carol there. */
    assert.equal(await other.page.locator('#members li[data-user]').count(), 1);
    mkdirSync(OUT, { recursive: true });
    await a.page.screenshot({ path: path.join(OUT, 'demo-presence.png'), fullPage: true });
    await b.page.close();
    await a.page.waitForSelector('#members li[data-user="bob"]', { state: 'detached', timeout: 8000 });
    assert.equal(await a.page.textContent('#here-count'), '1');
    for (const p of [a, b, other]) assert.deepEqual(p.errors, []);
  } finally {
    await ctx.close();
  }
});

test('demo: the badge follows the connection through a server restart; a reaction clicked meanwhile reaches both tabs once', { timeout: 60000 }, async () => {
  const s = await restartableServer();
  const ctx = await browser.newContext();
  try {
    const t = s.tenant();
    await s.start();
    const r = room();
    const pages = [];
    for (const user of ['dora', 'eve']) {
      const page = await ctx.newPage();
      const errors = watchErrors(page);
      await page.goto(`${s.url}/demo#token=${mintToken(t, r, { sub: user })}`, { timeout: 10000 });
      await page.waitForSelector('#state[data-state="open"]', { timeout: 8000 });
      pages.push({ page, errors });
    }
    /* A deploy: SIGTERM keeps every position and epoch (protocol.md section 6;
     * after a kill -9 the epochs change and the tabs are told to reload). */
    await s.kill('SIGTERM');
    for (const p of pages) await p.page.waitForSelector('#state[data-state="reconnecting"]', { timeout: 8000 });
    assert.match(await pages[0].page.textContent('#state'), /reconnecting/);
    /* Clicked while offline: queued, delivered after the restart. */
    await pages[0].page.click('button[data-emoji="🚀"]');
    await s.start();
    for (const p of pages) await p.page.waitForSelector('#state[data-state="open"]', { timeout: 15000 });
    /* eve gets it whether she was back before dora's queue was flushed (live) or
     * after (recovered from the history, which survived the restart). */
    for (const p of pages) await p.page.waitForSelector('#events li[data-event="reaction"]', { timeout: 15000 });
    /* A marker behind it; then each page counted the offline reaction exactly once. */
    await pages[0].page.click('button[data-emoji="🎉"]');
    const count = (page, emoji) => page.textContent(`.reactions button[data-emoji="${emoji}"] em`);
    for (const p of pages) {
      await p.page.waitForFunction(() => document.querySelector('.reactions button[data-emoji="🎉"] em')?.textContent === '1', null, { timeout: 8000 });
      assert.equal(await count(p.page, '🚀'), '1', 'the reaction clicked offline, once');
    }
    /* The pages saw the connection drop; nothing else went wrong. */
    for (const p of pages) {
      assert.deepEqual(p.errors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|net::/.test(e)), []);
    }
  } finally {
    await ctx.close();
    await s.cleanup();
  }
});
