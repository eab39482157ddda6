// The PostgreSQL store under a running server: a deployment moved from SQLite
// (export --include-secrets, import) keeps its API tokens and connection
// tokens; admin changes made through PostgreSQL (user revoke, secret rotation,
// plugin delete) reach the server; while PostgreSQL is down the server keeps
// serving from its credential snapshot, and picks changes up again after.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, startServer, room, poll, publishBody, mintJwt, nowS } from './harness.mjs';
import { startPostgres, postgresInstalled } from './pg-harness.mjs';

const skip = postgresInstalled() ? false : 'PostgreSQL is not installed (scripts/install-deps.sh all)';
const CLI_TIMEOUT_MS = 15000;

let pg, lite, srv, tenant, liteDir;

/** `hubbub ...args --json` against a store location; { code, json, stderr }. */
function hubbub(args) {
  return new Promise((resolve) => {
    execFile(BIN, [...args, '--json'], { timeout: CLI_TIMEOUT_MS }, (err, stdout, stderr) => {
      let json = null;
      try {
        json = JSON.parse(stdout);
      } catch {
        /* not JSON */
      }
      resolve({ code: err ? (err.code ?? 1) : 0, json, stderr });
    });
  });
}

async function refusedWith(token, status, code) {
  const e = await srv.connect(token).then(
    async (c) => {
      await c.close();
      return null;
    },
    (err) => err,
  );
  return e !== null && e.status === status && e.json?.error?.code === code;
}

before(async () => {
  if (skip) return;
  pg = await startPostgres();
  // The deployment to move: a SQLite data directory with a tenant.
  lite = await startServer();
  liteDir = lite.dataDir;
  tenant = await lite.tenant();
  await lite.stop({ keepData: true });
});

after(async () => {
  await srv?.stop();
  if (liteDir) rmSync(liteDir, { recursive: true, force: true });
  await pg?.stop();
});

test('a SQLite deployment moves to PostgreSQL: the same API and connection tokens work', { skip }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-e2e-move-'));
  try {
    const file = path.join(dir, 'export.json');
    const exp = await hubbub(['export', '--include-secrets', '--out', file, '--data', liteDir]);
    assert.equal(exp.code, 0, exp.stderr);
    const uri = await pg.createDatabase();
    // Only `init` (or `serve`) creates a store: the import refuses an empty database.
    const none = await hubbub(['import', file, '--store', uri]);
    assert.equal(none.code, 1, none.stderr);
    assert.match(none.json.error.message, /there is no store in postgres.*hubbub init/);
    const init = await hubbub(['init', '--store', uri]);
    assert.equal(init.code, 0, init.stderr);
    assert.equal(init.json.created, true);
    const imp = await hubbub(['import', file, '--store', uri]);
    assert.equal(imp.code, 0, imp.stderr);
    assert.deepEqual(imp.json.created, { organizations: 1, plugins: 1, api_tokens: 1, revocations: 0 });
    srv = await startServer({ store: uri });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const r = room();
  const c = await srv.connect(mintJwt(tenant.signingSecret, srv.claims(tenant, r, { sub: 'alice' })));
  await c.subscribe('moved');
  const res = await srv.publish(tenant.apiToken, publishBody({ type: 'session', ...r }, 'moved', { ok: 1 }));
  assert.equal(res.status, 202, res.text);
  const m = await c.waitFor((x) => x.type === 'event' && x.eventName === 'moved');
  assert.deepEqual(m.data, { ok: 1 });
});

test('admin changes through PostgreSQL reach the running server', { skip }, async () => {
  const r = room();
  // A user's connection tokens revoked: new connections with them are refused.
  const alice = mintJwt(tenant.signingSecret, srv.claims(tenant, r, { sub: 'alice', iat: nowS() - 5 }));
  const bob = mintJwt(tenant.signingSecret, srv.claims(tenant, r, { sub: 'bob', iat: nowS() - 5 }));
  await (await srv.connect(alice)).close();
  const rev = await srv.cliRaw(['user', 'revoke', '--org', tenant.orgId, '--plugin', tenant.pluginId, 'alice']);
  assert.equal(rev.code, 0, rev.stderr);
  await poll(() => refusedWith(alice, 401, 'token_revoked'), 5000, 'alice refused with token_revoked');
  await (await srv.connect(bob)).close();

  // A rotated secret: tokens of the previous one keep working until it is
  // retired; the new one works at once.
  const rot = await srv.cli(['plugin', 'rotate-secret', '--org', tenant.orgId, tenant.pluginId]);
  const fresh = mintJwt(rot.signing_secret, srv.claims(tenant, r, { sub: 'carol' }), {
    alg: 'HS256',
    typ: 'JWT',
    kid: rot.signing_kid,
  });
  await poll(async () => !(await refusedWith(fresh, 401, 'invalid_token')), 5000, 'the new secret accepted');
  await (await srv.connect(bob)).close();
  await srv.cli(['plugin', 'rotate-secret', '--org', tenant.orgId, tenant.pluginId, '--retire-previous']);
  await poll(() => refusedWith(bob, 401, 'invalid_token'), 5000, 'the retired secret refused');
  tenant.signingSecret = rot.signing_secret;
  tenant.kid = rot.signing_kid;
});

test('PostgreSQL down: the server keeps serving from its snapshot, and catches up after', { skip }, async () => {
  const r = room();
  const c = await srv.connect(mintJwt(tenant.signingSecret, srv.claims(tenant, r, { sub: 'dave' })));
  await c.subscribe('outage');
  await pg.pause();
  try {
    // Publishing and connecting need no store: the snapshot answers.
    const res = await srv.publish(tenant.apiToken, publishBody({ type: 'session', ...r }, 'outage', { n: 1 }));
    assert.equal(res.status, 202, res.text);
    await c.waitFor((x) => x.type === 'event' && x.eventName === 'outage');
    await (await srv.connect(mintJwt(tenant.signingSecret, srv.claims(tenant, r, { sub: 'erin' })))).close();
    // The CLI says "unavailable" (exit 3), not a generic failure.
    const down = await srv.cliRaw(['org', 'list']);
    assert.equal(down.code, 3, down.stderr);
    assert.match(down.stderr, /cannot connect to PostgreSQL/);
  } finally {
    await pg.resume();
  }
  // Back: a change made now reaches the server again.
  const del = await srv.cliRaw(['plugin', 'delete', '--org', tenant.orgId, tenant.pluginId, '--yes']);
  assert.equal(del.code, 0, del.stderr);
  await poll(
    async () => (await srv.publish(tenant.apiToken, publishBody({ type: 'organization' }, 'x', {}))).status === 401,
    8000,
    'the deleted plugin\'s API token refused',
  );
});

test('a PostgreSQL schema migrated by a newer hubbub: the server and the admin commands refuse it, naming both versions', { skip }, async () => {
  const uri = await pg.createDatabase();
  const init = await hubbub(['init', '--store', uri]);
  assert.equal(init.code, 0, init.stderr);
  const known = Number((await pg.psql('SELECT max(version) FROM hubbub_schema_migrations', { uri })).trim());
  assert.ok(known >= 1, `a fresh schema has a version (${known})`);
  await pg.psql(`INSERT INTO hubbub_schema_migrations (version, applied_at) VALUES (${known + 7}, 0)`, { uri });
  const newer = new RegExp(`schema version ${known + 7} is newer than this hubbub \\(${known}\\): upgrade hubbub`);
  await assert.rejects(startServer({ threads: 1, store: uri }), (e) => {
    assert.match(e.message, /server exited \(code [1-9]\d*, signal null\)/, e.message);
    assert.match(e.message, newer, e.message);
    return true;
  });
  const cli = await hubbub(['org', 'list', '--store', uri]);
  assert.equal(cli.code, 1, 'exit 1, as docs/upgrading.md says');
  assert.match(cli.json?.error?.message ?? '', newer, cli.stderr);
  assert.match(cli.stderr, newer);
  // Left as it was: nothing migrated down, the newer row still there.
  assert.equal(Number((await pg.psql('SELECT max(version) FROM hubbub_schema_migrations', { uri })).trim()), known + 7);
});
