// Helpers for the 30-redis-* suites, beyond harness.mjs: a redis-server that
// can be killed and restarted on the same port (with a password if asked), a
// tiny RESP client to look inside Redis (PUBSUB CHANNELS, command counts), and
// cluster helpers (n nodes on one data directory).
//
// Every wait is bounded, and every process started here is stopped by its owner.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, poll, withTimeout, startServer, mintJwt, publishBody, uuid } from './harness.mjs';

const REDIS_BIN = process.env.REDIS_SERVER_BIN || 'redis-server';
const REDIS_START_TIMEOUT_MS = 5000;
const REDIS_STOP_TIMEOUT_MS = 5000;
const RESP_TIMEOUT_MS = 3000;

/** Encode one command as RESP. */
function encode(args) {
  let s = `*${args.length}\r\n`;
  for (const a of args) {
    const b = Buffer.from(String(a));
    s += `$${b.length}\r\n${b.toString('latin1')}\r\n`;
  }
  return Buffer.from(s, 'latin1');
}

/** Parse one RESP reply from buf at off: [value, nextOffset] or null if incomplete. */
function parse(buf, off = 0) {
  const nl = buf.indexOf('\r\n', off);
  if (nl < 0) return null;
  const t = String.fromCharCode(buf[off]);
  const line = buf.subarray(off + 1, nl).toString('latin1');
  const next = nl + 2;
  if (t === '+') return [line, next];
  if (t === '-') return [new Error(line), next];
  if (t === ':') return [Number(line), next];
  if (t === '$') {
    const n = Number(line);
    if (n < 0) return [null, next];
    if (buf.length < next + n + 2) return null;
    return [buf.subarray(next, next + n).toString('utf8'), next + n + 2];
  }
  if (t === '*') {
    const n = Number(line);
    if (n < 0) return [null, next];
    const out = [];
    let o = next;
    for (let i = 0; i < n; i++) {
      const r = parse(buf, o);
      if (!r) return null;
      out.push(r[0]);
      o = r[1];
    }
    return [out, o];
  }
  throw new Error(`bad RESP type ${t}`);
}

/**
 * Run commands on a fresh connection and resolve with their replies (error
 * replies come back as Error values, not thrown).
 */
export function redisCmds(port, cmds, { password = null } = {}) {
  const all = password ? [['AUTH', password], ...cmds] : cmds;
  return withTimeout(
    new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      let buf = Buffer.alloc(0);
      sock.on('connect', () => sock.write(Buffer.concat(all.map(encode))));
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        const out = [];
        let off = 0;
        while (out.length < all.length) {
          const r = parse(buf, off);
          if (!r) return;
          out.push(r[0]);
          off = r[1];
        }
        sock.destroy();
        resolve(password ? out.slice(1) : out);
      });
      sock.on('error', reject);
    }),
    RESP_TIMEOUT_MS,
    `redis ${cmds.map((c) => c[0]).join(',')}`,
  );
}

export const redisCmd = async (port, args, opts) => (await redisCmds(port, [args], opts))[0];

/** Channels with at least one subscriber, sorted (PUBSUB CHANNELS). */
export async function pubsubChannels(port, pattern = 'hubbub:*', opts) {
  return (await redisCmd(port, ['PUBSUB', 'CHANNELS', pattern], opts)).sort();
}

/** How many PUBLISH commands Redis has executed since it started. */
export async function publishCalls(port, opts) {
  const info = await redisCmd(port, ['INFO', 'commandstats'], opts);
  const m = /cmdstat_publish:calls=(\d+)/.exec(info);
  return m ? Number(m[1]) : 0;
}

/**
 * A redis-server on 127.0.0.1 that can be stopped and started again on the
 * same port: { port, url, start(), stop(), kill() }. `password` adds
 * --requirepass; `args` are more redis-server arguments. No persistence, so a
 * restart loses every key.
 */
export async function redisServer({ port = null, password = null, args: extra = [] } = {}) {
  const p = port ?? (await freePort());
  let child = null;
  let exited = null;
  let out = '';
  const r = {
    port: p,
    url: password ? `redis://:${encodeURIComponent(password)}@127.0.0.1:${p}` : `redis://127.0.0.1:${p}`,
    password,
    get running() {
      return child !== null;
    },
    /** The process id while running (for SIGSTOP/SIGCONT). */
    get pid() {
      return child ? child.pid : null;
    },
    async start() {
      if (child) return r;
      const args = ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];
      if (password) args.push('--requirepass', password);
      args.push(...extra);
      out = '';
      child = spawn(REDIS_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('error', () => {});
      exited = new Promise((resolve) => child.on('exit', resolve));
      await poll(
        async () => {
          try {
            return (await redisCmd(p, ['PING'], { password })) === 'PONG';
          } catch {
            return false;
          }
        },
        REDIS_START_TIMEOUT_MS,
        `redis-server on port ${p} (${out.slice(-300)})`,
        50,
      );
      return r;
    },
    /** SIGTERM and wait for the exit (SIGKILL if it lingers). */
    async stop(signal = 'SIGTERM') {
      if (!child) return;
      const c = child;
      const e = exited;
      child = null;
      c.kill(signal);
      await withTimeout(e, REDIS_STOP_TIMEOUT_MS, 'redis-server exit').catch(async () => {
        c.kill('SIGKILL');
        await withTimeout(e, 2000, 'redis-server exit after SIGKILL').catch(() => {});
      });
    },
    kill() {
      return r.stop('SIGKILL');
    },
  };
  return r.start();
}

/** `n` nodes on one shared data directory, all pointed at `url`. */
export async function startCluster(n, url, { via = 'flag', password = null } = {}) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-e2e-redis-'));
  const nodes = [];
  try {
    for (let i = 0; i < n; i++) {
      if (via === 'config') {
        const config = { redis_url: url };
        if (password) config.redis_password = password;
        nodes.push(await startServer({ dataDir, config }));
      } else {
        nodes.push(await startServer({ dataDir, args: ['--redis', url] }));
      }
    }
  } catch (e) {
    for (const s of nodes) await s.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  return {
    nodes,
    dataDir,
    async stop() {
      try {
        for (const s of nodes) await s.stop();
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}

export const ALL_SCOPES = ['session', 'event', 'organization'];

/** Connect to `srv` in room `r` with a token allowing every scope and subscribe to `names`. */
export async function joinAll(srv, tenant, r, names = []) {
  const c = await srv.connect(mintJwt(tenant.signingSecret, srv.claims(tenant, r, { scopes: ALL_SCOPES })));
  for (const name of names) await c.subscribe(name);
  return c;
}

/** The scope object of a publish body for `scope` in room `r`. */
export function scopeOf(scope, r) {
  if (scope === 'session') return { type: 'session', ...r };
  if (scope === 'event') return { type: 'event', event_id: r.event_id };
  return { type: 'organization' };
}

/** How long one settle attempt watches for its marker before publishing another. */
const SETTLE_ATTEMPT_MS = 250;

/**
 * Wait until a publish through `via` reaches client `c` (a node's Redis
 * SUBSCRIBE is asynchronous: it settles a moment after the WebSocket ack).
 * Each attempt publishes a marker and waits for it; a marker published
 * before the subscription was in place is lost for good, so after
 * SETTLE_ATTEMPT_MS the next attempt publishes a new one.
 */
export async function settle(via, tenant, r, c, name, ms = 5000) {
  await poll(
    async () => {
      const marker = uuid();
      await via.publish(tenant.apiToken, publishBody({ type: 'session', ...r }, name, { settle: marker }));
      return c.waitFor((m) => m.data?.settle === marker, SETTLE_ATTEMPT_MS, `settle marker ${marker}`).then(
        () => true,
        () => false,
      );
    },
    ms,
    'cross-node delivery to start',
    0,
  );
}

/** Wait until Redis reports exactly `want` (sorted) hubbub channels. */
export async function waitChannels(port, want, ms = 3000, opts) {
  let got;
  await poll(
    async () => {
      got = await pubsubChannels(port, 'hubbub:*', opts);
      return JSON.stringify(got) === JSON.stringify([...want].sort());
    },
    ms,
    `Redis channels ${JSON.stringify(want)}`,
  ).catch((e) => {
    throw new Error(`${e.message}; got ${JSON.stringify(got)}`);
  });
}
