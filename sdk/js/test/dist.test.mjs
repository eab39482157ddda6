// The committed dist/ must be exactly what build.mjs makes from src/, and each
// build must expose the API the way its users load it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';

const sdk = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FILES = ['hubbub.js', 'hubbub.mjs', 'hubbub.d.ts'];

test('dist/ is fresh: rebuilding from src/ gives the committed bytes', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'hubbub-sdk-build-'));
  try {
    execFileSync(process.execPath, [path.join(sdk, 'build.mjs'), '--out', out], { timeout: 20000 });
    for (const f of FILES) {
      const fresh = readFileSync(path.join(out, f));
      const committed = readFileSync(path.join(sdk, 'dist', f));
      assert.ok(fresh.equals(committed), `sdk/js/dist/${f} is stale: run \`node sdk/js/build.mjs\` and commit`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('classic script sets the globals PubSub and HubbubSDK', () => {
  const code = readFileSync(path.join(sdk, 'dist/hubbub.js'), 'utf8');
  const sandbox = { console, setTimeout, clearTimeout, setInterval, clearInterval, TextEncoder, TextDecoder };
  sandbox.globalThis = sandbox;
  vm.runInNewContext(code, sandbox, { filename: 'hubbub.js' });
  assert.equal(typeof sandbox.PubSub.publish, 'function');
  assert.equal(typeof sandbox.PubSub.subscribe, 'function');
  assert.equal(typeof sandbox.HubbubSDK.createClient, 'function');
  assert.equal(sandbox.HubbubSDK.PubSub, sandbox.PubSub);
  assert.equal(typeof sandbox.HubbubSDK.HubbubError, 'function');
  assert.equal(sandbox.PubSub.state, 'idle');
});

test('ES module exports PubSub (also default), createClient, HubbubError', async () => {
  const m = await import(path.join(sdk, 'dist/hubbub.mjs'));
  assert.equal(m.default, m.PubSub);
  for (const n of ['PubSub', 'createClient', 'HubbubError', 'backoffDelay', 'VERSION']) assert.ok(m[n] !== undefined, n);
});

test('type declarations cover the whole API', () => {
  const dts = readFileSync(path.join(sdk, 'dist/hubbub.d.ts'), 'utf8');
  for (const s of ['export declare const PubSub', 'export declare function createClient', 'export declare class HubbubError',
    'publish<T extends JsonObject', 'subscribe<T = any>', 'onStateChange', "'connecting' | 'open' | 'reconnecting' | 'closed'",
    'getToken?:', 'export default PubSub', 'export as namespace HubbubSDK']) {
    assert.ok(dts.includes(s), `hubbub.d.ts lacks ${s}`);
  }
});
