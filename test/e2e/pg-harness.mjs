// A private PostgreSQL for the end-to-end tests, through test/pg-harness.sh
// (the same script the C unit tests use): initdb into a temporary directory,
// 127.0.0.1 and a unix socket inside that directory, a free port, a role
// that is not a superuser and owns its databases.
//
//   const pg = await startPostgres();
//   const uri = await pg.createDatabase();   // a fresh, empty database
//   ... startServer({ store: uri }) ... (two nodes: the same uri twice)
//   await pg.pause(); await pg.resume();     // an outage, same port and data
//   await pg.stop();                         // in an after() hook
//
// Every call is bounded in time; a process exit stops a server left running.
import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import crypto from 'node:crypto';

const here = path.dirname(fileURLToPath(import.meta.url));
export const PG_HARNESS = path.resolve(here, '../pg-harness.sh');

const START_TIMEOUT_MS = 60000; // initdb and the first start on a busy machine
const STEP_TIMEOUT_MS = 30000;
const PSQL_TIMEOUT_MS = 10000;

/** Whether Debian's PostgreSQL server is installed (else: skip the suite). */
export function postgresInstalled() {
  try {
    return execFileSync('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin/initdb'], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim().length > 0;
  } catch {
    return false;
  }
}

function run(args, timeout) {
  return new Promise((resolve, reject) => {
    execFile('bash', [PG_HARNESS, ...args], { timeout, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`pg-harness.sh ${args[0]} failed (${err.code ?? err.signal}): ${stderr}`));
      else resolve(stdout);
    });
  });
}

// Servers still running when the process exits (a test that threw before
// its after hook): stopped synchronously, by their own directory.
const running = new Set();
process.on('exit', () => {
  for (const dir of running) {
    try {
      execFileSync('bash', [PG_HARNESS, 'stop', dir], { timeout: 15000, stdio: 'ignore' });
    } catch {
      /* nothing more can be done at exit */
    }
  }
});

/**
 * Start a private PostgreSQL. Resolves to
 * { uri, port, dir, password, createDatabase(name?), psql(sql, {uri}), pause(), resume(), stop(), running }.
 */
export async function startPostgres() {
  const out = await run(['start'], START_TIMEOUT_MS);
  const vars = Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split(/=(.*)/s).slice(0, 2)),
  );
  const dir = vars.HB_PG_DIR;
  if (!dir || !vars.HB_PG_URI) throw new Error(`pg-harness.sh start printed no URI: ${out}`);
  running.add(dir);
  let up = true;
  const pg = {
    uri: vars.HB_PG_URI,
    port: Number(vars.HB_PG_PORT),
    dir,
    password: new URL(vars.HB_PG_URI).password,
    get running() {
      return up;
    },
    /** A fresh empty database owned by the test role; resolves to its URI. */
    async createDatabase(name = `e2e_${crypto.randomBytes(6).toString('hex')}`) {
      return (await run(['createdb', dir, name], STEP_TIMEOUT_MS)).trim();
    },
    /** Run SQL with psql (tab-separated rows, no headers); resolves to stdout. */
    psql(sql, { uri = pg.uri } = {}) {
      return new Promise((resolve, reject) => {
        execFile('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', uri, '-c', sql], { timeout: PSQL_TIMEOUT_MS },
          (err, stdout, stderr) => (err ? reject(new Error(`psql: ${stderr || err.message}`)) : resolve(stdout)));
      });
    },
    /** Stop the server (as an outage would), keeping its data and port. */
    async pause() {
      await run(['pause', dir], STEP_TIMEOUT_MS);
      up = false;
    },
    /** Start it again after pause(). */
    async resume() {
      await run(['resume', dir], STEP_TIMEOUT_MS);
      up = true;
    },
    /** Stop (immediate) and remove everything. Safe to call twice. */
    async stop() {
      if (!running.has(dir)) return;
      running.delete(dir);
      up = false;
      if (existsSync(dir)) await run(['stop', dir], STEP_TIMEOUT_MS);
    },
  };
  return pg;
}
