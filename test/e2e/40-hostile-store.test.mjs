// Hostile catalogue, the store under faults: H105-H107, H139, H140. A corrupt,
// foreign or unusable data directory must stop the server at start with a
// clear error (exit non-zero, a message naming the problem), never a crash
// later; a store deleted under a running server is noticed and reported,
// and nothing creates an empty one in its place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startServer, poll, room, publishBody, BIN } from './harness.mjs';

async function refusesToStart(dir, pattern) {
  await assert.rejects(startServer({ threads: 1, dataDir: dir }), (e) => {
    assert.match(e.message, /server exited \(code [1-9]\d*, signal null\)/, e.message);
    assert.match(e.message, pattern, e.message);
    assert.doesNotMatch(e.message, /AddressSanitizer|runtime error|Segmentation/, e.message);
    return true;
  });
}

test('a malformed store location: clear error at start, exit non-zero, nothing created', async () => {
  for (const [loc, pattern] of [
    ['postgres:localhost', /malformed store location: a PostgreSQL location is a URI/],
    ['postgresql://u:hunter2@h:notaport/db', /malformed PostgreSQL URI: port must be a number/],
    ['mysql://h/db', /unknown store location scheme 'mysql'/],
    ['sqlite:', /malformed store location/],
  ]) {
    await assert.rejects(startServer({ threads: 1, store: loc }), (e) => {
      assert.match(e.message, /server exited \(code [1-9]\d*, signal null\)/, e.message);
      assert.match(e.message, pattern, e.message);
      assert.doesNotMatch(e.message, /hunter2|AddressSanitizer|runtime error/, e.message);
      return true;
    });
  }
});

test('H105 a corrupt database file: clear error at start, exit non-zero', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-h105-'));
  // A valid SQLite header followed by garbage pages.
  const buf = Buffer.alloc(8192, 0xa5);
  Buffer.from('SQLite format 3\0').copy(buf, 0);
  buf.writeUInt16BE(4096, 16);
  writeFileSync(path.join(dir, 'hubbub.db'), buf, { mode: 0o600 });
  try {
    await refusesToStart(dir, /corrupt|malformed|not a database/i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('H106 a file that is not a database at all: clear error at start', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-h106-'));
  writeFileSync(path.join(dir, 'hubbub.db'), 'this is a text file, not SQLite\n'.repeat(200), { mode: 0o600 });
  try {
    await refusesToStart(dir, /not a database|corrupt|malformed/i);
    // And the file was left alone.
    assert.match(readFileSync(path.join(dir, 'hubbub.db'), 'utf8'), /^this is a text file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('H107 the data directory path is a regular file: clear error at start', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-h107-'));
  const file = path.join(dir, 'not-a-dir');
  writeFileSync(file, 'x');
  try {
    await refusesToStart(file, /not a directory|data directory|cannot/i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('H140 a store written by a newer hubbub: the server and the admin commands refuse it, name both versions, and leave it alone', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-h140-'));
  const db = path.join(dir, 'hubbub.db');
  try {
    execFileSync(BIN, ['init', '--data', dir], { stdio: 'ignore', timeout: 30000 });
    // The SQLite header keeps PRAGMA user_version (the schema version) as a
    // big-endian 32-bit integer at offset 60: a later hubbub's migration.
    const buf = readFileSync(db);
    const known = buf.readUInt32BE(60);
    assert.ok(known >= 1, `a fresh store has a schema version (${known})`);
    buf.writeUInt32BE(known + 7, 60);
    writeFileSync(db, buf);
    const newer = new RegExp(`schema version ${known + 7} is newer than this hubbub \\(${known}\\): upgrade hubbub`);
    await refusesToStart(dir, newer);
    let cli = null;
    try {
      execFileSync(BIN, ['org', 'list', '--data', dir, '--json'], { encoding: 'utf8', timeout: 30000, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      cli = e;
    }
    assert.ok(cli, 'org list refuses the store');
    assert.equal(cli.status, 1, 'exit 1, as docs/upgrading.md says');
    assert.match(cli.stdout + cli.stderr, newer);
    // Not migrated down, not rewritten: the bytes are the newer hubbub's.
    assert.ok(readFileSync(db).equals(buf), 'the file is left as it was');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('H139 hubbub.db deleted under a running server: logged, /healthz degraded, serving goes on, nothing recreates it', async () => {
  const srv = await startServer({ threads: 2 });
  try {
    const t = await srv.tenant();
    const r = room();
    const sub = await srv.join(t, r, { subscribe: ['still'] });
    const db = path.join(srv.dataDir, 'hubbub.db');
    rmSync(db);
    for (const f of ['hubbub.db-wal', 'hubbub.db-shm']) rmSync(path.join(srv.dataDir, f), { force: true });

    await poll(() => /error store: .*hubbub\.db is gone/.test(srv.stderr), 5000, 'the error log line about the missing store');
    const h = await srv.http('GET', '/healthz');
    assert.equal(h.status, 200, 'still serving: a probe must not take the node out (or restart it into an empty store)');
    assert.equal(h.json.status, 'degraded');
    assert.equal(h.json.store.state, 'missing');
    const m = await srv.http('GET', '/metrics');
    assert.match(m.text, /^hubbub_store_missing 1$/m);

    // The credential snapshot keeps serving: the API token publishes, the room receives.
    const p = await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'still', { n: 1 }));
    assert.equal(p.status, 202, p.text);
    await sub.waitFor((x) => x.type === 'event' && x.data?.n === 1);
    // An unknown token makes an I/O thread look at the store: it must not create one.
    for (let i = 0; i < 4; i++) {
      const bad = await srv.publish('hbk_' + 'x'.repeat(43), publishBody({ type: 'session', ...r }, 'still', {}));
      assert.equal(bad.status, 401);
    }
    // The admin CLI refuses instead of creating an empty store.
    const cli = await srv.cliRaw(['org', 'list']);
    assert.equal(cli.code, 1, `org list must fail: ${cli.stdout}${cli.stderr}`);
    assert.match(cli.stderr, /no store.*hubbub init/);
    assert.equal(existsSync(db), false, 'nothing created a new hubbub.db');
    await sub.close();
  } finally {
    await srv.stop();
  }
});

test('H139 hubbub.db replaced under a running server (hubbub init after a delete): logged as another file, restart to use it', async () => {
  const srv = await startServer({ threads: 1 });
  try {
    rmSync(path.join(srv.dataDir, 'hubbub.db'));
    await poll(() => /hubbub\.db is gone/.test(srv.stderr), 5000, 'the missing store noticed');
    // Its WAL is still there (the server holds it): init says so instead of "disk I/O error".
    const refused = await srv.cliRaw(['init']);
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(refused.stderr, /hubbub\.db' is missing but its -wal or -shm file is still there/);
    for (const f of ['hubbub.db-wal', 'hubbub.db-shm']) rmSync(path.join(srv.dataDir, f), { force: true });
    const init = await srv.cliRaw(['init']);
    assert.equal(init.code, 0, init.stderr);
    assert.equal(init.json.created, true);
    await poll(() => /hubbub\.db is now another file/.test(srv.stderr), 5000, 'the replaced store noticed');
    const h = await srv.http('GET', '/healthz');
    assert.equal(h.json.store.state, 'missing', 'the server still uses the file it opened');
  } finally {
    await srv.stop();
  }
});
