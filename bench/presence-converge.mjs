#!/usr/bin/env node
// bench/presence-converge.mjs: how long a join on one node takes to show in
// the presence count an observer on another node sees (two nodes, one
// redis-server, 127.0.0.1). Not a test: it prints one JSON line.
//
//   HUBBUB_BIN=build/hubbub node bench/presence-converge.mjs
//
// Environment: N joins (15), GAP ms between them (1100: each join after a
// quiet interval, so it goes out at the next tick) plus up to JIT ms at random
// (500); GAP=0 JIT=1000 joins into a busy room (a change waits for the
// interval). IV: presence_interval_ms (1000). The time includes the joining
// connection's own handshake and join.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, room, poll } from '../test/e2e/harness.mjs';
import { redisServer } from '../test/e2e/redis-harness.mjs';
import { member, observe, view } from '../test/e2e/presence-lib.mjs';

const N = Number(process.env.N ?? 15);
const GAP = Number(process.env.GAP ?? 1100);
const JIT = Number(process.env.JIT ?? 500);
const redis = await redisServer();
const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-converge-'));
const cfg = { redis_url: redis.url, presence_interval_ms: Number(process.env.IV ?? 1000) };
const nodes = [];
try {
  const A = await startServer({ dataDir: dir, config: cfg });
  nodes.push(A);
  const B = await startServer({ dataDir: dir, config: cfg });
  nodes.push(B);
  const t = await A.tenant();
  const r = room();
  const o = await member(A, t, r, 'observer');
  await observe(o);
  const times = [];
  const held = [];
  for (let i = 0; i < N; i++) {
    await new Promise((res) => setTimeout(res, GAP + Math.random() * JIT));
    const t0 = Date.now();
    held.push(await member(B, t, r, `u${i}`));
    await poll(() => view(o).count === i + 2, 30000, `count ${i + 2}`, 2);
    times.push(Date.now() - t0);
  }
  const s = [...times].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  console.log(JSON.stringify({ interval_ms: cfg.presence_interval_ms, gap_ms: GAP, jitter_ms: JIT, n: N, p50_ms: q(0.5), p90_ms: q(0.9), max_ms: s[s.length - 1], ms: times }));
  for (const c of [...held, o]) await c.close();
} finally {
  for (const n of nodes) await n.stop().catch(() => {});
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
