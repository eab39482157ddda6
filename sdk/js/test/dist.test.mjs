// The committed dist/ must be exactly what build.mjs makes from src/, and each
// build must expose the API the way its users load it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';

const sdk = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FILES = ['hubbub.js', 'hubbub.mjs', 'hubbub.d.ts', 'hubbub.d.mts', 'package.json'];

test('dist/ is fresh: rebuilding from src/ gives the committed bytes, and nothing else is there', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'hubbub-sdk-build-'));
  try {
    execFileSync(process.execPath, [path.join(sdk, 'build.mjs'), '--out', out], { timeout: 20000 });
    assert.deepEqual(readdirSync(out).sort(), [...FILES].sort(), 'build.mjs writes FILES');
    assert.deepEqual(readdirSync(path.join(sdk, 'dist')).sort(), [...FILES].sort(), 'sdk/js/dist holds exactly the built files');
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

test('ES module exports PubSub (also default), createClient, HubbubError, Client, VERSION', async () => {
  const m = await import(path.join(sdk, 'dist/hubbub.mjs'));
  assert.equal(m.default, m.PubSub);
  for (const n of ['PubSub', 'createClient', 'HubbubError', 'Client', 'VERSION']) assert.ok(m[n] !== undefined, n);
  for (const n of ['backoffDelay', 'shouldReconnect', 'buildSocketUrl', 'STATES']) assert.equal(m[n], undefined, `${n} is internal`);
});

test('CommonJS: require() of the package and of dist/hubbub.js gives the API', () => {
  const require = createRequire(path.join(sdk, 'package.json'));
  const byName = require('@hubbub/sdk');
  const byPath = require(path.join(sdk, 'dist/hubbub.js'));
  assert.equal(byName, byPath);
  assert.equal(typeof byName.createClient, 'function');
  assert.equal(byName.default, byName.PubSub);
  assert.equal(byName.PubSub.state, 'idle');
});

test('type declarations: the documented API, no internals; the classic globals only in hubbub.d.ts', () => {
  const dts = readFileSync(path.join(sdk, 'dist/hubbub.d.ts'), 'utf8');
  const dmts = readFileSync(path.join(sdk, 'dist/hubbub.d.mts'), 'utf8');
  for (const [name, text] of [['hubbub.d.ts', dts], ['hubbub.d.mts', dmts]]) {
    for (const s of ['export declare const PubSub', 'export declare function createClient', 'export declare class HubbubError',
      'export declare class Client', 'publish<T extends object', 'subscribe<T = any>', 'onStateChange', "'connecting' | 'open' | 'reconnecting' | 'closed'",
      'getToken?:', "tokenTransport?: 'protocol' | 'query'", 'queueTimeoutMs?:', 'readonly closeCode?:', 'readonly status?:', 'export default PubSub']) {
      assert.ok(text.includes(s), `${name} lacks ${s}`);
    }
    for (const s of ['backoffDelay', 'shouldReconnect', 'closePolicy', 'buildSocketUrl', 'STATES', '_internal']) {
      assert.ok(!text.includes(s), `${name} declares the internal ${s}`);
    }
  }
  assert.ok(dts.includes('export as namespace HubbubSDK') && dts.includes('var PubSub: DefaultClient'));
  assert.ok(!dmts.includes('export as namespace') && !dmts.includes('declare global'), 'the ES module defines no globals');
});

test('package.json: types per condition, beside the file each condition loads', () => {
  const pkg = JSON.parse(readFileSync(path.join(sdk, 'package.json'), 'utf8'));
  const dot = pkg.exports['.'];
  assert.deepEqual(dot.import, { types: './dist/hubbub.d.mts', default: './dist/hubbub.mjs' });
  assert.deepEqual(dot.require, { types: './dist/hubbub.d.ts', default: './dist/hubbub.js' });
  assert.deepEqual(Object.keys(dot.import)[0], 'types', 'types must come first in a condition');
  assert.equal(JSON.parse(readFileSync(path.join(sdk, 'dist/package.json'), 'utf8')).type, 'commonjs');
});
