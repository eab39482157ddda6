// Shared setup of the browser tests: Debian's chromium driven by playwright-core.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 20000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Collect console errors and page errors of `page` into an array. */
export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push('console: ' + m.text());
  });
  return errors;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Connect options of the pages that use the real server (build/hubbub): the
 * SDK's defaults, the token as the hubbub.token.<jwt> subprotocol next to
 * hubbub.v1 (docs/protocol.md section 2).
 */
export const REAL_SERVER = {};

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const STATIC = {
  '/': { text: '<!doctype html><meta charset="utf-8"><title>scripted hubbub</title><p>scripted server</p>', type: 'text/html' },
  '/sdk/hubbub.js': { file: 'sdk/js/dist/hubbub.js', type: 'text/javascript' },
  '/sdk/hubbub.mjs': { file: 'sdk/js/dist/hubbub.mjs', type: 'text/javascript' },
  '/demo': { file: 'web/demo.html', type: 'text/html' },
  '/demo/demo.js': { file: 'web/demo.js', type: 'text/javascript' },
  '/demo/demo.css': { file: 'web/demo.css', type: 'text/css' },
};

/**
 * onRequest for the scripted servers of sdk/js/test/helpers.mjs: a blank page
 * at /, the SDK at /sdk/ and the demo at /demo, as hubbub serves them, so that
 * a page and its WebSocket share the scripted server's origin.
 */
export function serveStatic(req, res) {
  const f = STATIC[req.url.split(/[?#]/)[0]];
  if (!f) return res.writeHead(404).end();
  res.writeHead(200, { 'Content-Type': f.type + '; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(f.text || readFileSync(path.join(REPO, f.file)));
}
