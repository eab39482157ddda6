// The documents that describe the server cannot drift from it:
//   - docs/openapi.yaml is a valid OpenAPI document (a real validator);
//   - its error codes, and docs/http-api.md's table (codes and statuses), are
//     exactly the server's table (the file in src/ that maps hb_err);
//   - every route of the server's router, with every method, is in
//     openapi.yaml, and every operation of openapi.yaml answers on a real
//     server (not 404, not 405);
//   - docs/operations.md lists every config key, and a HUBBUB_* variable for each.
// Reads the C sources as text: it finds them by content, not by path, so
// that files may move inside src/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { REPO, startServer } from '../e2e/harness.mjs';

const require = createRequire(path.join(REPO, 'package.json'));
const SwaggerParser = require('@apidevtools/swagger-parser');

const read = (rel) => readFileSync(path.join(REPO, rel), 'utf8');

/** The text of the one .c file under src/ that contains `marker`. */
function sourceWith(marker) {
  const found = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.c') && readFileSync(p, 'utf8').includes(marker)) found.push(p);
    }
  };
  walk(path.join(REPO, 'src'));
  assert.equal(found.length, 1, `exactly one file in src/ contains ${marker}: ${found.join(', ')}`);
  return readFileSync(found[0], 'utf8');
}

/** The server's error table: Map code -> HTTP status (without "ok"). */
function serverErrors() {
  const src = sourceWith('[HB_E__COUNT] = {');
  const table = new Map();
  for (const m of src.matchAll(/\[HB_E?_?\w+\]\s*=\s*\{\s*"(\w+)",\s*(\d{3})/g)) table.set(m[1], Number(m[2]));
  table.delete('ok');
  assert.ok(table.size >= 20, `parsed the error table (${table.size} codes)`);
  return table;
}

/** The router's table: [{ path, methods: ['get', ...], prefix }]. */
function serverRoutes() {
  const src = sourceWith('static const route routes[] = {');
  const body = src.slice(src.indexOf('static const route routes[] = {'));
  const block = body.slice(0, body.indexOf('};'));
  const routes = [];
  for (const m of block.matchAll(/\{"(\/[^"]*)",\s*([A-Z_| ]+),\s*([A-Z_| 0]+),/g)) {
    const methods = m[2].split('|').map((x) => x.trim().replace(/^M_/, '').toLowerCase());
    routes.push({ path: m[1], methods, prefix: m[3].includes('R_PREFIX') });
  }
  assert.ok(routes.length >= 10, `parsed the route table (${routes.length} routes)`);
  return routes;
}

let api;
before(async () => {
  // validate() throws with every problem listed when the document is invalid.
  api = await SwaggerParser.validate(path.join(REPO, 'docs/openapi.yaml'));
});

test('docs/openapi.yaml is a valid OpenAPI 3.1 document', () => {
  assert.equal(api.openapi, '3.1.0');
  assert.ok(Object.keys(api.paths).length > 10);
});

test('openapi.yaml lists exactly the server\'s error codes', () => {
  const codes = api.components.schemas.Error.properties.error.properties.code.enum;
  assert.equal(new Set(codes).size, codes.length, 'no duplicates');
  assert.deepEqual([...codes].sort(), [...serverErrors().keys()].sort());
});

test('docs/http-api.md\'s table lists exactly the server\'s error codes, with their statuses', () => {
  const md = read('docs/http-api.md');
  const start = md.indexOf('### Status codes and error codes');
  assert.ok(start > 0, 'the section exists');
  const section = md.slice(start, md.indexOf('\n## ', start) === -1 ? undefined : md.indexOf('\n## ', start));
  const rows = new Map();
  for (const m of section.matchAll(/^\| (\d{3}) \| `(\w+)` \|/gm)) {
    assert.ok(!rows.has(m[2]), `${m[2]} listed once`);
    rows.set(m[2], Number(m[1]));
  }
  assert.deepEqual(Object.fromEntries([...rows].sort()), Object.fromEntries([...serverErrors()].sort()));
});

test('every route and method of the router is in openapi.yaml', () => {
  for (const r of serverRoutes()) {
    const keys = Object.keys(api.paths).filter((k) => (r.prefix ? k.startsWith(r.path) : k === r.path));
    assert.ok(keys.length > 0, `${r.path} is documented`);
    for (const k of keys) for (const m of r.methods) assert.ok(api.paths[k][m], `${m.toUpperCase()} ${k} is documented`);
  }
});

test('docs/http-api.md documents the subscribe= parameter of the WebSocket URL', () => {
  const md = read('docs/http-api.md');
  const ws = md.slice(md.indexOf('## WebSocket upgrade'), md.indexOf('## Health'));
  assert.match(ws, /GET \/api\/v1\/ws\[\?subscribe=/);
  assert.match(ws, /\| `subscribe` \| optional/);
  assert.match(ws, /`too_many_subscriptions`/);
});

test('docs/operations.md lists every config key and its HUBBUB_* variable', () => {
  const src = sourceWith('static const field fields[] = {');
  const block = src.slice(src.indexOf('static const field fields[] = {'));
  const keys = new Set(['listen']);
  for (const m of block.slice(0, block.indexOf('};')).matchAll(/(?:STR|SIZE|INT|RATE|BOOL)\((\w+)|\{"(\w+)", F_/g)) keys.add(m[1] ?? m[2]);
  assert.ok(keys.size >= 20, `parsed the config keys (${keys.size})`);
  const md = read('docs/operations.md');
  const fileTable = new Set([...md.matchAll(/^\| `([a-z0-9_]+)` \| (?:string|int|size|number|bool) \|/gm)].map((m) => m[1]));
  assert.deepEqual([...fileTable].sort(), [...keys].sort(), 'the config file table');
  const envTable = new Set([...md.matchAll(/^\| `(HUBBUB_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]));
  for (const k of keys) assert.ok(envTable.has(`HUBBUB_${k.toUpperCase()}`), `HUBBUB_${k.toUpperCase()} is documented`);
});

// ---- every documented operation answers on a real server ----------------

let srv;
before(async () => {
  // The admin API on (any hash will do: no request here carries the token).
  srv = await startServer({ threads: 1, config: { admin_token_sha256: 'a'.repeat(64) } });
});
after(async () => {
  await srv?.stop();
});

/** A concrete URL for an OpenAPI path: each {param} its enum's first value, or a UUID. */
function concrete(p, op) {
  return p.replace(/\{(\w+)\}/g, (_, name) => {
    const param = (op.parameters ?? []).find((x) => x.name === name && x.in === 'path');
    return param?.schema?.enum?.[0] ?? '00000000-0000-4000-8000-000000000000';
  });
}

test('every operation in openapi.yaml exists on the server (no 404 for the path, no 405)', async () => {
  let n = 0;
  for (const [p, item] of Object.entries(api.paths)) {
    for (const method of ['get', 'head', 'post', 'delete', 'put', 'patch']) {
      if (!item[method]) continue;
      const url = concrete(p, item[method]);
      const r = await srv.http(method.toUpperCase(), url);
      assert.notEqual(r.status, 405, `${method.toUpperCase()} ${url}: 405`);
      // DELETE of an unknown token id is a documented 404, after the 401 for no token.
      assert.ok(r.status !== 404 || r.json?.error?.code !== 'not_found' || method === 'delete',
        `${method.toUpperCase()} ${url}: 404 ${r.text}`);
      n++;
    }
  }
  assert.ok(n >= 20, `${n} operations checked`);
});

test('docs/upgrading.md states the store\'s current schema version and the refusal as the store does', () => {
  // The credential store's migrations, one list per backend, numbered alike
  // (history.db has its own, in historydb.c).
  const latest = (file) => {
    const src = read(file);
    const block = src.slice(src.indexOf('static const char *const migrations[] = {'));
    const versions = [...block.slice(0, block.indexOf('};')).matchAll(/\/\* (\d+): /g)].map((m) => Number(m[1]));
    assert.ok(versions.length >= 1, `${file}: each migration opens with a /* N: ... */ comment`);
    return Math.max(...versions);
  };
  const v = latest('src/store/sqlite.c');
  assert.equal(latest('src/store/pg.c'), v, 'both backends have the same migrations');
  const md = read('docs/upgrading.md');
  assert.match(md, new RegExp(`\\(today: \\*\\*${v}\\*\\*`), 'the current schema version');
  assert.ok(read('src/store/store.c').includes('"database schema version %d is newer than this hubbub (%d): upgrade hubbub"'),
    'the refusal message in the store');
  assert.match(md, /database schema version N is newer than this hubbub \(M\): upgrade\s+hubbub/);
});
