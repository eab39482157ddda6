// 21-port-in-use: a second server on a busy address refuses to start
// (SO_REUSEPORT is only for one server's own threads), and the first keeps
// every message (issue: "a second server on a busy port steals half the traffic").
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, startServer, room, publishBody, withTimeout } from './harness.mjs';

let srv;
after(async () => srv?.stop());

test('a second server on the same port exits non-zero with a clear message; the first keeps every message', async () => {
  srv = await startServer({ threads: 2 });
  const t = await srv.tenant();
  const r = room();
  const sub = await srv.join(t, r, { subscribe: ['p'] });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-second-'));
  try {
    const second = spawn(BIN, ['serve', '--listen', `127.0.0.1:${srv.port}`, '--data', dir, '--threads', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    second.stderr.on('data', (d) => (err += d));
    const code = await withTimeout(new Promise((res) => second.on('close', (c) => res(c))), 10000, 'the second server to exit');
    assert.notEqual(code, 0);
    assert.match(err, /already in use by another process/);
    assert.doesNotMatch(err, /listening on/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Every one of many new connections reaches the first server.
  for (let i = 0; i < 16; i++) {
    const res = await srv.publish(t.apiToken, publishBody({ type: 'session', ...r }, 'p', { i }));
    assert.equal(res.status, 202, res.text);
  }
  await sub.waitFor(() => sub.events('p').length === 16, 5000, 'all 16 events');
  await sub.close();
});

test('a port held by something else (a plain socket) is refused the same way', async () => {
  const net = await import('node:net');
  const holder = net.createServer();
  await new Promise((res) => holder.listen(0, '127.0.0.1', res));
  const port = holder.address().port;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hubbub-busy-'));
  try {
    const p = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const code = await withTimeout(new Promise((res) => p.on('close', (c) => res(c))), 10000, 'exit');
    assert.notEqual(code, 0);
    assert.match(err, /already in use/);
  } finally {
    holder.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
