// Configuration from the environment, the twelve-factor way: a server started
// with HUBBUB_* variables alone listens where told and applies the limits it
// was given; flags > environment > config file > defaults; a bad variable
// refuses to start and names the variable. (docs/operations.md section 2.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { BIN, freePort, withTimeout } from './harness.mjs';

const START_TIMEOUT_MS = 10000;
const STOP_TIMEOUT_MS = 8000;

/** process.env without any HUBBUB_* variable, plus `vars`. */
function envWith(vars) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HUBBUB_')) env[k] = v;
  return { ...env, ...vars };
}

/**
 * Run `hubbub serve ...args` with exactly `vars` as its HUBBUB_* environment.
 * Resolves { child, stderr(), exited } once the listening line is out, or
 * { code, stderr } if the process exits first.
 */
function serve(vars, args = []) {
  const child = spawn(BIN, ['serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: envWith(vars) });
  let stderr = '';
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return withTimeout(
    new Promise((resolve) => {
      child.stderr.on('data', (d) => {
        stderr += d;
        const m = /listening on (http:\/\/\S+) \((\d+) threads/.exec(stderr);
        if (m) resolve({ child, url: m[1], threads: Number(m[2]), stderr: () => stderr, exited });
      });
      exited.then(({ code, signal }) => resolve({ code, signal, stderr }));
    }),
    START_TIMEOUT_MS,
    'the server to listen or exit',
  ).catch((e) => {
    child.kill('SIGKILL');
    throw new Error(`${e.message}; stderr:\n${stderr}`);
  });
}

async function stop(srv) {
  srv.child.kill('SIGTERM');
  const info = await withTimeout(srv.exited, STOP_TIMEOUT_MS, 'the server to exit after SIGTERM');
  assert.ok(!/AddressSanitizer|LeakSanitizer|runtime error:/.test(srv.stderr()), srv.stderr());
  assert.deepEqual(info, { code: 0, signal: null }, srv.stderr());
}

function request(port, method, p, { headers = {}, body } = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, text, json: text ? JSON.parse(text) : null }));
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    }),
    10000,
    `${method} ${p}`,
  );
}

/** An admin command with only HUBBUB_* variables to find its data: parsed --json output. */
function cli(vars, args) {
  return new Promise((resolve, reject) => {
    execFile(BIN, [...args, '--json'], { env: envWith(vars), timeout: 10000 }, (err, out, errOut) => {
      if (err) reject(new Error(`hubbub ${args.join(' ')}: ${err.message} ${errOut}`));
      else resolve(JSON.parse(out));
    });
  });
}

test('a server configured only by HUBBUB_* variables listens where told and applies them', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-env-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const vars = {
    HUBBUB_LISTEN: `127.0.0.1:${port}`,
    HUBBUB_DATA_DIR: dir,
    HUBBUB_THREADS: '1',
    HUBBUB_MAX_BODY_BYTES: '300',
    HUBBUB_LOG_LEVEL: 'info',
  };
  // The admin commands find the same data directory through the environment;
  // `init` creates the store there (the others refuse to).
  await cli(vars, ['init']);
  await cli(vars, ['org', 'create', 'envorg']);
  await cli(vars, ['plugin', 'create', '--org', 'envorg', 'envplugin']);
  const { token } = await cli(vars, ['token', 'create', '--org', 'envorg', '--plugin', 'envplugin']);

  const srv = await serve(vars);
  assert.equal(srv.url, `http://127.0.0.1:${port}`, srv.stderr);
  try {
    assert.equal(srv.threads, 1);
    const h = await request(port, 'GET', '/healthz');
    assert.equal(h.status, 200);
    assert.equal(h.json.threads, 1);
    // HUBBUB_MAX_BODY_BYTES=300: a 400-byte publish is refused, a small one accepted.
    const pub = (data) =>
      request(port, 'POST', '/api/v1/pub_subs', {
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ scope: { type: 'organization' }, payload: { event: { eventName: 'x', data } } }),
      });
    const big = await pub({ pad: 'x'.repeat(400) });
    assert.equal(big.status, 413);
    assert.equal(big.json.error.code, 'payload_too_large');
    assert.equal((await pub({ ok: 1 })).status, 202);
  } finally {
    await stop(srv);
  }
});

test('flags win over HUBBUB_* variables, which win over the config file (HUBBUB_CONFIG)', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-env-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'hubbub.json');
  const [p1, p2] = [await freePort(), await freePort()];
  writeFileSync(file, JSON.stringify({ listen: `127.0.0.1:${p1}`, threads: 2, data_dir: dir }));

  let srv = await serve({ HUBBUB_CONFIG: file, HUBBUB_THREADS: '3' });
  assert.equal(srv.url, `http://127.0.0.1:${p1}`, 'listen from the file');
  assert.equal(srv.threads, 3, 'threads from the environment, over the file');
  await stop(srv);

  srv = await serve({ HUBBUB_CONFIG: file, HUBBUB_THREADS: '3', HUBBUB_PORT: String(p2) }, ['--threads', '1']);
  assert.equal(srv.url, `http://127.0.0.1:${p2}`, 'HUBBUB_PORT over the file');
  assert.equal(srv.threads, 1, '--threads over HUBBUB_THREADS');
  await stop(srv);
});

test('a bad HUBBUB_* value refuses to start, naming the variable; a misspelt one gets a hint', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-env-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const base = { HUBBUB_LISTEN: '127.0.0.1:0', HUBBUB_DATA_DIR: dir };
  for (const [name, value, says] of [
    ['HUBBUB_MAX_CONNECTIONS', '0', '"max_connections" must be between 1 and'],
    ['HUBBUB_THREADS', 'four', '"threads" must be an integer'],
    ['HUBBUB_LISTEN', 'nowhere', '"listen" must be'],
    ['HUBBUB_LOG_LEVEL', 'loud', '"log_level" must be debug, info, warn or error'],
  ]) {
    const r = await serve({ ...base, [name]: value });
    assert.equal(r.code, 1, `${name}=${value} must refuse to start; stderr: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${name}: ${says.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  }
  const srv = await serve({ ...base, HUBBUB_THRAEDS: '2' });
  assert.match(srv.stderr(), /HUBBUB_THRAEDS is not a hubbub setting \(did you mean HUBBUB_THREADS\?\); ignored/);
  await stop(srv);
});
