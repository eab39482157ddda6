// `make run` (scripts/run.sh): the demo organization, plugin and API token are
// made once; the token is kept 0600 in the data directory and the same one is
// printed on every later run (no new never-expiring token per run); a revoked
// one is replaced; what it prints works (the curl line's publish, the demo URL).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { BIN, REPO, freePort, withTimeout } from './harness.mjs';

const RUN_TIMEOUT_MS = 20000;

/** Start scripts/run.sh; resolve with its stdout once the server listens, then stop it. */
async function makeRun(dataDir, port) {
  const env = { ...process.env, HUBBUB_BIN: BIN, HUBBUB_DATA: dataDir, HUBBUB_LISTEN: `127.0.0.1:${port}` };
  delete env.HUBBUB_DATA_DIR;
  const child = spawn(path.join(REPO, 'scripts/run.sh'), [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  try {
    await withTimeout(
      new Promise((resolve, reject) => {
        child.stderr.on('data', (d) => {
          err += d;
          if (/listening on http:\/\//.test(err)) resolve();
        });
        exited.then((e) => reject(new Error(`run.sh exited ${JSON.stringify(e)}: ${err}`)));
      }),
      RUN_TIMEOUT_MS,
      'scripts/run.sh to start the server',
    );
    const token = /export HUBBUB_TOKEN=(\S+)/.exec(out)?.[1];
    const demo = /(http:\/\/\S+\/demo#token=\S+)/.exec(out)?.[1];
    const curl = /-d '(\{"scope".*?\}\}\}\})'/s.exec(out)?.[1];
    return { out, token, demo, curl };
  } finally {
    child.kill('SIGTERM');
    await withTimeout(exited, 10000, 'the server to stop');
  }
}

function get(port, p, { method = 'GET', headers = {}, body } = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    }),
    10000,
    p,
  );
}

const tokens = (dir) =>
  JSON.parse(execFileSync(BIN, ['token', 'list', '--org', 'demo', '--data', dir, '--json'], { encoding: 'utf8' })).tokens;

test('make run keeps one demo API token, 0600, and prints the same one every time', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-run-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();

  const first = await makeRun(dir, port);
  assert.match(first.token ?? '', /^hbk_[A-Za-z0-9_-]{43}$/, first.out);
  assert.ok(first.demo, `a demo URL in:\n${first.out}`);
  assert.ok(first.curl, `a curl line in:\n${first.out}`);
  assert.equal(readFileSync(path.join(dir, 'demo-api-token'), 'utf8').trim(), first.token);
  assert.equal(statSync(path.join(dir, 'demo-api-token')).mode & 0o777, 0o600);

  const second = await makeRun(dir, port);
  assert.equal(second.token, first.token, 'the same token on the second run');
  assert.equal(tokens(dir).length, 1, 'no second API token was minted');

  // A revoked demo token is replaced by a new one (and only one).
  const id = readFileSync(path.join(dir, 'demo-api-token.id'), 'utf8').trim();
  execFileSync(BIN, ['token', 'revoke', id, '--data', dir]);
  const third = await makeRun(dir, port);
  assert.notEqual(third.token, first.token);
  assert.deepEqual(tokens(dir).map((x) => x.revoked_at === null).sort(), [false, true]);
});

test('what make run prints works: the curl line publishes, the demo page loads', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-run-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const env = { ...process.env, HUBBUB_BIN: BIN, HUBBUB_DATA: dir, HUBBUB_LISTEN: `127.0.0.1:${port}` };
  const child = spawn(path.join(REPO, 'scripts/run.sh'), [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.on('close', resolve));
  t.after(async () => {
    child.kill('SIGTERM');
    await withTimeout(exited, 10000, 'the server to stop');
  });
  await withTimeout(
    new Promise((resolve) => child.stderr.on('data', (d) => (err += d) && /listening on/.test(err) && resolve())),
    RUN_TIMEOUT_MS,
    'scripts/run.sh to start the server',
  );
  const token = /export HUBBUB_TOKEN=(\S+)/.exec(out)[1];
  const body = /-d '(\{"scope".*?\}\}\}\})'/s.exec(out)[1];
  const demo = new URL(/(http:\/\/\S+\/demo#token=\S+)/.exec(out)[1]);
  assert.equal(await get(port, demo.pathname), 200);
  const status = await get(port, '/api/v1/pub_subs', {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body,
  });
  assert.equal(status, 202);
});
