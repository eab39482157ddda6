// The SDK supports two WebSocket implementations in Node, which fail in
// different ways (a refused upgrade: `ws` fires 'error' with the HTTP status
// and then 'close'; undici fires 'error' without the status and never
// 'close'). The rest of this directory runs with helpers.mjs's default (the
// runtime's own WebSocket, else `ws`); this file runs the suites that open
// sockets once more, in a child Node, with the other one:
//  - Node 20 (no global WebSocket): `--experimental-websocket`, undici;
//  - Node 22+: HUBBUB_TEST_WEBSOCKET=ws, the `ws` package.
// The suites cover the real server (pubsub, reconnect) and the scripted one
// (protocol, refusal).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const SUITES = ['protocol.test.mjs', 'refusal.test.mjs', 'pubsub.test.mjs', 'reconnect.test.mjs'];
const CHILD_TIMEOUT_MS = 240000;

const builtIn = typeof globalThis.WebSocket === 'function';
const other = builtIn
  ? { name: 'the `ws` package', args: [], env: { HUBBUB_TEST_WEBSOCKET: 'ws' } }
  : { name: "Node's built-in WebSocket (undici, --experimental-websocket)", args: ['--experimental-websocket'], env: { HUBBUB_TEST_WEBSOCKET: 'global' } };

test(`the socket suites pass with ${other.name} too`, { timeout: CHILD_TIMEOUT_MS + 10000 }, async () => {
  const env = { ...process.env, ...other.env };
  delete env.NODE_TEST_CONTEXT; /* set by the parent runner: the child must run as a runner of its own */
  const child = spawn(process.execPath, [...other.args, '--no-warnings', '--test', '--test-concurrency=1', '--test-reporter=tap',
    ...SUITES.map((f) => path.join(here, f))], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
  const code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(sig || c)));
  clearTimeout(timer);
  const failed = out.split('\n').filter((l) => /^\s*not ok /.test(l));
  const pass = /# pass (\d+)/.exec(out);
  assert.equal(code, 0, `${failed.length} failed with ${other.name}:\n${failed.join('\n')}\n\n${out.slice(-6000)}`);
  assert.ok(pass && Number(pass[1]) >= 50, `too few tests ran (${pass && pass[1]}):\n${out.slice(-3000)}`);
});
