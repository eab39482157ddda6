// CORS in a real browser (Debian chromium): a page on an allowed origin calls
// the HTTP API on another port with fetch (a preflighted POST with
// Authorization) and reads the answer, a refusal's too; a page on another
// origin is blocked by the browser. The raw-HTTP side is test/e2e/22-cors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, room } from '../e2e/harness.mjs';
import { launch, watchErrors } from './browser.mjs';

let srv;
let tenant;
let browser;
const pages = [];

/** A page server on 127.0.0.1:<free port>: its origin is http://127.0.0.1:<port>. */
function pageServer() {
  return new Promise((resolve) => {
    const s = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>plugin page</title><p>a plugin page</p>');
    });
    s.listen(0, '127.0.0.1', () => resolve({ server: s, origin: `http://127.0.0.1:${s.address().port}` }));
  });
}

let allowed;
let other;

before(async () => {
  allowed = await pageServer();
  other = await pageServer();
  pages.push(allowed, other);
  srv = await startServer({ threads: 1, config: { cors_allowed_origins: allowed.origin } });
  tenant = await srv.tenant();
  browser = await launch();
});
after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
  for (const p of pages) p.server.close();
});

/* In the page: a publish with the API token, as a plugin's dashboard would. */
async function publishFrom(origin, token) {
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(origin + '/', { waitUntil: 'load', timeout: 10000 });
    const r = room();
    const result = await page.evaluate(async ({ api, token: tok, body }) => {
      try {
        const res = await fetch(api + '/api/v1/pub_subs', {
          method: 'POST',
          headers: { Authorization: 'Bearer ' + tok, 'Content-Type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { status: res.status, json: await res.json() };
      } catch (e) {
        return { blocked: e.name + ': ' + e.message };
      }
    }, { api: srv.url, token, body: { scope: { type: 'session', ...r }, payload: { event: { eventName: 'cors', data: { ok: true } } } } });
    return { result, errors };
  } finally {
    await ctx.close();
  }
}

test('a page on an allowed origin publishes with fetch and reads the answer', { timeout: 45000 }, async () => {
  const { result } = await publishFrom(allowed.origin, tenant.apiToken);
  assert.equal(result.status, 202, JSON.stringify(result));
  assert.match(result.json.message_id, /^[0-9a-f-]{36}$/);
  // A refusal is readable too: the page learns why.
  const refused = await publishFrom(allowed.origin, 'hbk_not_a_token');
  assert.equal(refused.result.status, 401);
  assert.equal(refused.result.json.error.code, 'invalid_token');
});

test('a page on another origin is blocked by the browser', { timeout: 45000 }, async () => {
  const { result, errors } = await publishFrom(other.origin, tenant.apiToken);
  assert.match(result.blocked || '', /TypeError/, JSON.stringify(result));
  assert.ok(errors.some((e) => /CORS|Access-Control-Allow-Origin/i.test(e)), `the console says why: ${errors.join(' | ')}`);
});
